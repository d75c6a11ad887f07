//! The middleware every request passes: it gives the request an id (echoing a sane
//! `X-Request-Id`), runs it inside a tracing span carrying that id, counts and times it for
//! Prometheus, and turns any error response that is not yet problem+json (actix's own 404s,
//! 405s, payload errors) into one, so no client ever sees a plain-text error.
//!
//! Every request is counted and timed, but not every one is logged at `info`: a log line per
//! fast lookup cost about a third of the lookup. A request that succeeds within
//! `SLOW_REQUEST_MS` is logged at `debug`; one that fails (4xx at `info`, 5xx at `error`) or
//! takes longer (`warn`) always is.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use actix_web::{
    Error, HttpMessage, ResponseError,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{
        StatusCode,
        header::{self, HeaderValue},
    },
    middleware::Next,
};
use tracing::Instrument;

use crate::{PROBLEM_CONTENT_TYPE, Problem};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// `SLOW_REQUEST_MS`'s default: a request slower than this is logged at `warn`.
pub const DEFAULT_SLOW_REQUEST_MS: u64 = 500;

/// Set once from the settings (`telemetry::init_tracing`); one value for the whole process,
/// like the log subscriber itself.
static SLOW_REQUEST_MS: AtomicU64 = AtomicU64::new(DEFAULT_SLOW_REQUEST_MS);

/// From now on a request that takes longer than `threshold` is logged as slow.
pub fn set_slow_request_threshold(threshold: Duration) {
    let millis = u64::try_from(threshold.as_millis()).unwrap_or(u64::MAX);
    SLOW_REQUEST_MS.store(millis, Ordering::Relaxed);
}

fn is_slow(elapsed: Duration) -> bool {
    elapsed.as_millis() > u128::from(SLOW_REQUEST_MS.load(Ordering::Relaxed))
}

/// The request's id, available to handlers as an extension (it becomes the correlation id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

fn incoming_request_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?.trim();
    let sane =
        !value.is_empty() && value.len() <= 200 && value.bytes().all(|b| b.is_ascii_graphic());
    sane.then(|| value.to_owned())
}

pub async fn observe_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let request_id = incoming_request_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = req.method().to_string();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let span =
        tracing::info_span!("request", request_id = %request_id, %method, path = %req.path());
    let started = Instant::now();

    let response = next.call(req).instrument(span.clone()).await?;
    let mut response = ensure_problem_body(response.map_into_boxed_body());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static(REQUEST_ID_HEADER), value);
    }

    let status = response.status();
    let elapsed = started.elapsed();
    let labels = [
        ("method", method),
        ("route", route),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!(crate::telemetry::HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(crate::telemetry::HTTP_REQUEST_DURATION, &labels)
        .record(elapsed.as_secs_f64());
    span.in_scope(|| {
        let latency_ms = elapsed.as_secs_f64() * 1e3;
        if status.is_server_error() {
            let error = response.response().error().map(ToString::to_string);
            tracing::error!(
                status = status.as_u16(),
                latency_ms,
                error,
                "request failed"
            );
        } else if is_slow(elapsed) {
            tracing::warn!(status = status.as_u16(), latency_ms, "slow request served");
        } else if status.is_client_error() {
            tracing::info!(status = status.as_u16(), latency_ms, "request refused");
        } else {
            tracing::debug!(status = status.as_u16(), latency_ms, "request served");
        }
    });
    Ok(response)
}

fn ensure_problem_body(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| {
            value
                .as_bytes()
                .starts_with(PROBLEM_CONTENT_TYPE.as_bytes())
        });
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    // Actix's own error messages are safe to show for client errors; server errors never
    // reveal their cause.
    let detail = match response.response().error() {
        Some(error) if status.is_client_error() => error.to_string(),
        _ if status == StatusCode::NOT_FOUND => {
            format!("no resource at {}", response.request().path())
        }
        _ if status == StatusCode::METHOD_NOT_ALLOWED => {
            format!(
                "{} is not allowed on {}",
                response.request().method(),
                response.request().path()
            )
        }
        _ if status.is_client_error() => "the request was refused".to_owned(),
        _ => "an internal error occurred; it has been logged".to_owned(),
    };
    let problem = Problem::new(status, detail);
    let (request, _) = response.into_parts();
    ServiceResponse::new(request, problem.error_response())
}
