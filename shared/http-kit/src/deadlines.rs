//! How long a client may take, and how many connections a process holds, so that slow or
//! abusive clients (a slowloris sending its headers a byte at a time, a body that trickles in,
//! thousands of idle connections) cost a few sockets for a few seconds and never keep other
//! clients from being answered:
//!
//! - the request head must arrive within `REQUEST_HEAD_TIMEOUT` (actix answers 408 and closes);
//! - the body within `REQUEST_BODY_TIMEOUT` of the head (`body_deadline`: 408, connection closed);
//! - an idle keep-alive connection is closed after `KEEP_ALIVE`;
//! - the process raises its open-files limit to the hard limit, and accepts connections only up
//!   to that limit less a reserve, so a flood of connections can never take the descriptors its
//!   PostgreSQL and Redis connections need;
//! - a burst of new connections queues in a listen backlog of `LISTEN_BACKLOG`, not Rust's 128.

use std::{
    cell::Cell,
    future::Future,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
    time::Duration,
};

use actix_web::{
    Error, HttpMessage,
    body::{BoxBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    error::PayloadError,
    http::{ConnectionType, StatusCode, header},
    middleware::Next,
    web::Bytes,
};
use futures_util::{Stream, StreamExt};
use tokio::time::Sleep;

use crate::Problem;

/// The request line and headers must arrive within this.
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// The body must arrive within this of the head (64 KiB at most: seconds even on a slow link).
pub const REQUEST_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// An idle keep-alive connection is closed after this.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Connections the kernel queues before the server accepts them. A burst beyond it is dropped
/// half-open (the client believes it is connected, the server never sees it): Rust's own
/// listeners queue only 128. The kernel caps it at net.core.somaxconn (4096 by default).
pub const LISTEN_BACKLOG: u32 = 4096;
/// Open files kept for everything but client connections: database and Redis connections, logs.
const RESERVED_DESCRIPTORS: u64 = 256;
/// actix's own default per worker.
const MAX_CONNECTIONS_PER_WORKER: u64 = 25_000;

/// Raises the soft open-files limit to the hard one and returns how many client connections each
/// of `workers` may hold within it.
pub fn connections_per_worker(workers: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            let fallback =
                rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1_024, |(soft, _)| soft);
            tracing::warn!(%error, limit = fallback, "cannot raise the open-files limit");
            fallback
        }
    };
    let per_worker = limit.saturating_sub(RESERVED_DESCRIPTORS) / workers.max(1) as u64;
    let per_worker = per_worker.clamp(64, MAX_CONNECTIONS_PER_WORKER);
    tracing::debug!(open_files = limit, per_worker, "connection limits");
    usize::try_from(per_worker).unwrap_or(64)
}

/// Bounds the time the body may take to arrive. A request that announces a body gets it through
/// a stream that fails once `REQUEST_BODY_TIMEOUT` has passed; whatever the handler then
/// answers, the client gets a 408 and the connection is closed.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let has_body = req.headers().contains_key(header::CONTENT_LENGTH)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    if !has_body {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let expired = Rc::new(Cell::new(false));
    let payload = DeadlinePayload {
        inner: req.take_payload(),
        sleep: None,
        expired: expired.clone(),
    };
    req.set_payload(Payload::from(
        Box::pin(payload) as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>
    ));
    let response = next.call(req).await?.map_into_boxed_body();
    if !expired.get() {
        return Ok(response);
    }
    let detail = format!(
        "the body did not arrive within {} s of the request head",
        REQUEST_BODY_TIMEOUT.as_secs()
    );
    let mut timed_out = actix_web::ResponseError::error_response(&Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        detail,
    ));
    timed_out
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    let (request, _) = response.into_parts();
    Ok(ServiceResponse::new(request, timed_out))
}

/// The request's payload, failing with a timeout once the deadline has passed. The timer starts
/// at the first read that has to wait, which the extractors make as soon as the route is chosen.
struct DeadlinePayload {
    inner: Payload,
    sleep: Option<Pin<Box<Sleep>>>,
    expired: Rc<Cell<bool>>,
}

impl Stream for DeadlinePayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired.get() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = self.inner.poll_next_unpin(cx) {
            return Poll::Ready(item);
        }
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(REQUEST_BODY_TIMEOUT)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.expired.set(true);
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the body did not arrive in time",
        )))))
    }
}
