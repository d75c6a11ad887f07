//! The operator dashboard: a page at `/dashboard` (HTML, CSS and JavaScript built into the
//! binary, charts drawn as hand-written SVG: no CDN, no build step) that polls two JSON
//! endpoints every second: `GET /projections` (each subscription's position, lag and status)
//! and `GET /dashboard/summary` (below). Its retry button calls the projector's
//! `POST /dead-letters/retry` with the operator token the user types in; the projector allows
//! the dashboard's origin (CORS).
//!
//! `GET /dashboard/summary` reads only `read_model` views, like every query-api read: the
//! event rate and the newest events come from the `event_feed` read model (the query-api cannot
//! read the event table), the order counts from `orders`, the parked events from `dead_letters`.

use actix_web::{
    HttpResponse,
    http::{Method, header},
    web,
};
use chrono::{DateTime, Utc};
use http_kit::{Problem, resource_for};
use read_models::names;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Consistent, min_position, with_position};
use crate::{AppState, error::ApiError};

const PAGE: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/dashboard.js");
const STYLE: &str = include_str!("dashboard/dashboard.css");

/// The event rate covers this many seconds, one bucket per second.
pub const RATE_WINDOW_SECONDS: i64 = 120;
/// How many of the newest events the summary lists.
pub const RECENT_EVENTS: i64 = 25;
/// How many parked events the summary lists (the oldest first; the count is complete).
pub const DEAD_LETTERS_LISTED: i64 = 100;

/// The subscriptions that decide orders, whose lag the command-api's admission compares with
/// `MAX_SAGA_LAG_EVENTS` (the same list as the event store's, which a test checks: the
/// query-api reads only read models and does not link the event store).
pub const SAGA_SUBSCRIPTIONS: [&str; 4] = [
    "order_saga",
    "stock_handler",
    "credit_handler",
    "order_handler",
];

/// The page, with the projector's URL filled in, and the policy that lets it call only this
/// origin and the projector.
pub struct DashboardPage {
    html: String,
    content_security_policy: String,
}

impl DashboardPage {
    pub fn new(projector_url: &str) -> anyhow::Result<Self> {
        let origin = url_origin(projector_url).ok_or_else(|| {
            anyhow::anyhow!(
                "PROJECTOR_URL must be an http:// or https:// URL such as http://127.0.0.1:8082, not {projector_url:?}"
            )
        })?;
        Ok(Self {
            html: PAGE.replace("{{PROJECTOR_URL}}", &escape_html(projector_url)),
            content_security_policy: format!(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 connect-src 'self' {origin}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            ),
        })
    }
}

/// `scheme://host[:port]` of an http(s) URL, if it is one.
fn url_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let sane = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    sane.then(|| format!("{scheme}://{authority}"))
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Everything the dashboard shows besides `/projections`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DashboardSummary {
    /// When this summary was read.
    pub generated_at: DateTime<Utc>,
    /// Events per second over the last `window_seconds`, from the `event_feed` read model.
    pub event_rate: EventRate,
    /// Orders by status (from the `order_list` read model); `rejected` split by reason.
    pub orders: OrderCounts,
    /// Saga events parked after failing repeatedly; the retry button retries them all.
    pub dead_letters: DeadLetters,
    /// The newest events, newest first (from the `event_feed` read model).
    pub recent_events: Vec<FeedEvent>,
    /// The command-api's admission bound: new orders are refused while one of these
    /// subscriptions lags more events than the bound (compare with `/projections`).
    pub admission: AdmissionBound,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AdmissionBound {
    /// `MAX_SAGA_LAG_EVENTS`; absent when every order is accepted however far the saga lags.
    pub max_saga_lag_events: Option<u64>,
    /// The saga subscriptions whose lag is compared with the bound.
    pub saga_subscriptions: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventRate {
    pub window_seconds: i64,
    /// One entry per second that saw events, oldest first; seconds without events are left out.
    pub seconds: Vec<RateSecond>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct RateSecond {
    /// The start of the second (when the events' transactions began).
    pub at: DateTime<Utc>,
    /// Events appended in that second.
    pub events: i64,
    /// Orders placed (`OrderPlaced`).
    pub placed: i64,
    /// Orders decided by the saga (`OrderApproved` or `OrderRejected`).
    pub decided: i64,
}

#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderCounts {
    pub total: i64,
    pub pending: i64,
    pub approved: i64,
    pub rejected: i64,
    pub cancelled: i64,
    pub shipped: i64,
    /// Rejected orders by `rejection_reason`.
    pub rejected_by_reason: RejectionCounts,
}

#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RejectionCounts {
    pub insufficient_stock: i64,
    pub credit_limit_exceeded: i64,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetters {
    /// How many events are parked in all.
    pub count: i64,
    /// The oldest parked events (at most 100).
    pub items: Vec<DeadLetter>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct DeadLetter {
    /// The saga subscription that parked it.
    pub subscription: String,
    /// The parked event's position.
    pub position: i64,
    pub stream_id: Uuid,
    pub event_type: String,
    /// Why it failed the last time.
    pub error: String,
    /// How often it has been tried.
    pub attempts: i32,
    pub parked_at: DateTime<Utc>,
}

/// One event of the log, as the `event_feed` read model keeps it (data upcast, no metadata).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct FeedEvent {
    pub position: i64,
    /// `order`, `product` or `customer`.
    pub stream_type: String,
    pub stream_id: Uuid,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub event_type: String,
    /// The event's version in its own stream.
    pub version: i64,
    pub recorded_at: DateTime<Utc>,
    pub data: serde_json::Value,
}

/// What the operator dashboard shows
///
/// The event rate, saga outcomes and throughput, dead letters and the newest events, read from
/// the `event_feed`, `orders` and `dead_letters` read models. With `min_position`, answers once
/// `event_feed` and `order_list` have reached it. Each subscription's status is `/projections`.
#[utoipa::path(get, path = "/dashboard/summary", tag = "operations",
    params(Consistent),
    responses(
        (status = 200, description = "The dashboard's data", body = DashboardSummary,
            headers(("X-Position" = i64, description = "The position of the event feed"))),
        (status = 400, description = "A malformed query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL is down, or min_position was not reached in time", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds"))),
    ))]
pub async fn summary(
    state: web::Data<AppState>,
    query: web::Query<Consistent>,
) -> Result<HttpResponse, ApiError> {
    let wanted = min_position(query.min_position)?;
    let (position, _) = futures_util::future::try_join(
        state.consistency.reach(names::EVENT_FEED, wanted),
        state.consistency.reach(names::ORDER_LIST, wanted),
    )
    .await?;
    let pool = &state.pool;
    let seconds: Vec<RateSecond> = sqlx::query_as(
        "SELECT date_trunc('second', recorded_at) AS at,
                count(*) AS events,
                count(*) FILTER (WHERE type = 'OrderPlaced') AS placed,
                count(*) FILTER (WHERE type IN ('OrderApproved', 'OrderRejected')) AS decided
         FROM read_model.event_feed
         WHERE recorded_at > now() - make_interval(secs => $1)
         GROUP BY 1 ORDER BY 1",
    )
    .bind(RATE_WINDOW_SECONDS as f64)
    .fetch_all(pool)
    .await?;
    let by_status: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT status, doc ->> 'rejection_reason', count(*) FROM read_model.orders GROUP BY 1, 2",
    )
    .fetch_all(pool)
    .await?;
    let mut orders = OrderCounts::default();
    for (status, reason, count) in by_status {
        orders.total += count;
        match status.as_str() {
            "pending" => orders.pending += count,
            "approved" => orders.approved += count,
            "rejected" => orders.rejected += count,
            "cancelled" => orders.cancelled += count,
            "shipped" => orders.shipped += count,
            _ => {}
        }
        match (status.as_str(), reason.as_deref()) {
            ("rejected", Some("insufficient_stock")) => {
                orders.rejected_by_reason.insufficient_stock += count;
            }
            ("rejected", Some("credit_limit_exceeded")) => {
                orders.rejected_by_reason.credit_limit_exceeded += count;
            }
            _ => {}
        }
    }
    let dead_letter_count: i64 = sqlx::query_scalar("SELECT count(*) FROM read_model.dead_letters")
        .fetch_one(pool)
        .await?;
    let dead_letters: Vec<DeadLetter> = sqlx::query_as(
        "SELECT subscription, position, stream_id, event_type, error, attempts, parked_at
         FROM read_model.dead_letters ORDER BY position, subscription LIMIT $1",
    )
    .bind(DEAD_LETTERS_LISTED)
    .fetch_all(pool)
    .await?;
    let recent_events: Vec<FeedEvent> = sqlx::query_as(
        "SELECT position, stream_type, stream_id, type, version, recorded_at, data
         FROM read_model.event_feed ORDER BY position DESC LIMIT $1",
    )
    .bind(RECENT_EVENTS)
    .fetch_all(pool)
    .await?;
    let summary = DashboardSummary {
        generated_at: Utc::now(),
        event_rate: EventRate {
            window_seconds: RATE_WINDOW_SECONDS,
            seconds,
        },
        orders,
        dead_letters: DeadLetters {
            count: dead_letter_count,
            items: dead_letters,
        },
        recent_events,
        admission: AdmissionBound {
            max_saga_lag_events: state.max_saga_lag_events,
            saga_subscriptions: SAGA_SUBSCRIPTIONS
                .iter()
                .map(|name| (*name).to_owned())
                .collect(),
        },
    };
    Ok(with_position(&summary, position))
}

/// The operator dashboard (HTML)
///
/// A page that polls `/projections` and `/dashboard/summary` every second.
#[utoipa::path(get, path = "/dashboard", tag = "operations",
    responses((status = 200, description = "The dashboard page", body = String, content_type = "text/html")))]
pub async fn page(page: web::Data<DashboardPage>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            page.content_security_policy.as_str(),
        ))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(page.html.clone())
}

async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

pub fn router(cfg: &mut web::ServiceConfig, page: web::Data<DashboardPage>) {
    cfg.app_data(page)
        .service(resource_for("/dashboard", Method::GET, self::page))
        .service(resource_for("/dashboard/summary", Method::GET, summary))
        .service(resource_for("/dashboard/dashboard.js", Method::GET, script))
        .service(resource_for("/dashboard/dashboard.css", Method::GET, style));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_watches_the_subscriptions_admission_watches() {
        assert_eq!(
            SAGA_SUBSCRIPTIONS,
            event_store::subscriptions::SAGA_SUBSCRIPTIONS
        );
    }

    #[test]
    fn the_projector_url_must_be_http_and_lands_escaped_in_the_page() {
        assert_eq!(
            url_origin("http://127.0.0.1:8082/x").as_deref(),
            Some("http://127.0.0.1:8082")
        );
        assert_eq!(
            url_origin("https://ops.example").as_deref(),
            Some("https://ops.example")
        );
        assert_eq!(url_origin("javascript:alert(1)"), None);
        assert_eq!(url_origin("http://a b"), None);
        assert!(DashboardPage::new("ftp://x").is_err());
        let page = DashboardPage::new("http://127.0.0.1:8082/?a=\"<b>\"").expect("page");
        assert!(
            page.html
                .contains("http://127.0.0.1:8082/?a=&quot;&lt;b&gt;&quot;")
        );
        assert!(
            page.content_security_policy
                .contains("connect-src 'self' http://127.0.0.1:8082;")
        );
    }
}
