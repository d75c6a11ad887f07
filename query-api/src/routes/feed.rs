//! `GET /feed` and `GET /orders/{id}/feed`: live change feeds as server-sent events (see
//! `crate::feed` for what they promise).

use actix_web::{HttpRequest, HttpResponse, http::Method, web};
use http_kit::{Problem, resource_for};
use read_models::names;
use serde::Deserialize;
use uuid::Uuid;

use super::min_position;
use crate::{
    AppState,
    error::ApiError,
    feed::{Change, Scope},
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Send the changes after this position (default 0: from the first event). A
    /// `Last-Event-ID` header, which browsers send when they reconnect, takes precedence.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Wait (up to 5 s, then 503) until the feed's read model has reached this position before
    /// answering: for a per-order feed of an order just placed.
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

/// `Last-Event-ID`: where a reconnecting client resumes (browsers send it by themselves).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // only describes the header
pub struct ResumeHeader {
    /// The id (a position) of the last message received: the feed resumes after it, and takes
    /// it over `after`.
    #[param(rename = "Last-Event-ID", value_type = String, required = false, pattern = "^[0-9]{1,19}$")]
    last_event_id: Option<String>,
}

/// Where the feed starts: `Last-Event-ID` when present, else `after`, else 0.
fn start_after(request: &HttpRequest, query: &FeedQuery) -> Result<i64, ApiError> {
    if let Some(header) = request.headers().get("Last-Event-ID") {
        return header
            .to_str()
            .ok()
            .and_then(|value| value.trim().parse::<i64>().ok())
            .filter(|position| *position >= 0)
            .ok_or_else(|| {
                ApiError::BadRequest(
                    "Last-Event-ID must be the id (a position) of an event this feed sent".into(),
                )
            });
    }
    match query.after {
        Some(negative) if negative < 0 => {
            Err(ApiError::BadRequest("after must not be negative".into()))
        }
        after => Ok(after.unwrap_or(0)),
    }
}

fn event_stream(state: &AppState, scope: Scope, after: i64) -> Result<HttpResponse, ApiError> {
    let changes = state.feeds.open(scope, after)?;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        // Tells nginx-like proxies not to buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(changes))
}

/// Every change, live
///
/// Server-sent events: one message per event of the log after `after` (or `Last-Event-ID`), in
/// position order, then new ones as they happen. Each message has `id` (the position: resume
/// with it), `event` (the event type) and `data` (a `Change` as JSON). Nothing is missed or
/// repeated across a reconnect that sends the last id seen. Idle feeds get a `: heartbeat`
/// comment every `FEED_HEARTBEAT_MS` (15 s by default). Personal data a customer had erased
/// shows as `[erased]`.
#[utoipa::path(get, path = "/feed", tag = "feed",
    params(FeedQuery, ResumeHeader),
    responses(
        (status = 200, description = "A stream of server-sent events, each `data` a Change", content_type = "text/event-stream", body = Change),
        (status = 400, description = "A malformed `after`, `min_position` or `Last-Event-ID`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Every live-feed connection allowed is open (FEED_MAX_CONNECTIONS), PostgreSQL is down, or min_position was not reached in time", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds"))),
    ))]
pub async fn feed(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let after = start(&state, &request, &query).await?;
    event_stream(&state, Scope::Everything, after)
}

/// One order's changes, live
///
/// Like `/feed`, for the events of one order's stream (placed, approved or rejected,
/// cancelled, shipped). For the saga's steps on products and customers see its history.
#[utoipa::path(get, path = "/orders/{id}/feed", tag = "feed",
    params(("id" = Uuid, Path, description = "The order's id"), FeedQuery, ResumeHeader),
    responses(
        (status = 200, description = "A stream of server-sent events, each `data` a Change", content_type = "text/event-stream", body = Change),
        (status = 400, description = "A malformed `after`, `min_position` or `Last-Event-ID`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No order has this id (yet: see min_position)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Every live-feed connection allowed is open (FEED_MAX_CONNECTIONS), PostgreSQL is down, or min_position was not reached in time", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds"))),
    ))]
pub async fn order_feed(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<Uuid>,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let order = id.into_inner();
    let after = start(&state, &request, &query).await?;
    if !state.feeds.order_exists(order).await? {
        return Err(ApiError::NotFound("no order has this id".into()));
    }
    event_stream(&state, Scope::Order(order), after)
}

/// Where a feed starts (`Last-Event-ID` or `after`), once `event_feed` has reached
/// `min_position` when one is asked for.
async fn start(
    state: &AppState,
    request: &HttpRequest,
    query: &FeedQuery,
) -> Result<i64, ApiError> {
    let after = start_after(request, query)?;
    if let Some(wanted) = min_position(query.min_position)? {
        state
            .consistency
            .reach(names::EVENT_FEED, Some(wanted))
            .await?;
    }
    Ok(after)
}

pub fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(resource_for("/feed", Method::GET, feed))
        .service(resource_for("/orders/{id}/feed", Method::GET, order_feed));
}
