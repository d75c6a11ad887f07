//! The service's HTTP interface: the notifications of a customer and of an order, and the
//! operational endpoints (`/readyz` checks PostgreSQL and the NATS connection).

use actix_web::{HttpResponse, http::Method, web};
use async_nats::connection::State;
use chrono::{DateTime, Utc};
use http_kit::{Problem, operations, resource_for};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{AppState, error::ApiError};

/// A message a customer was sent about one of their orders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Notification {
    /// The id of the shop's event that caused it (one notification per event).
    pub id: String,
    pub order_id: Uuid,
    pub customer_id: Uuid,
    /// `approved`, `rejected`, `cancelled` or `shipped`.
    pub kind: String,
    pub subject: String,
    pub body: String,
    /// When the shop recorded the event.
    pub occurred_at: DateTime<Utc>,
    /// When this service recorded the notification.
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderNotifications {
    pub items: Vec<Notification>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NoParameters {}

const COLUMNS: &str =
    "event_id AS id, order_id, customer_id, kind, subject, body, occurred_at, created_at";

/// A customer's notifications, newest first
#[utoipa::path(get, path = "/customers/{id}/notifications", tag = "notifications",
    params(("id" = Uuid, Path, description = "The customer's id"), Page),
    responses(
        (status = 200, description = "A page of the customer's notifications (none for a customer it knows nothing of)", body = NotificationPage),
        (status = 400, description = "A malformed or out-of-range parameter (limit, cursor)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL is down", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds"))),
    ))]
pub async fn customer_notifications(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let limit = match query.limit {
        None => 20,
        Some(limit @ 1..=100) => limit,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "limit must be from 1 to 100, not {other}"
            )));
        }
    };
    let before = match query.cursor.as_deref() {
        None => i64::MAX,
        Some(cursor) => cursor
            .parse::<i64>()
            .ok()
            .filter(|position| *position > 0)
            .ok_or_else(|| {
                ApiError::BadRequest(
                    "cursor is not one this API handed out; start again without it".into(),
                )
            })?,
    };
    let rows: Vec<(i64, Notification)> = sqlx::query_as::<_, PositionedRow>(&format!(
        "SELECT position, {COLUMNS} FROM notifications.notifications
         WHERE customer_id = $1 AND position < $2
         ORDER BY position DESC LIMIT $3"
    ))
    .bind(id.into_inner())
    .bind(before)
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|row| (row.position, row.notification))
    .collect();
    let next_cursor = (rows.len() as i64 > limit).then(|| rows[limit as usize - 1].0.to_string());
    let items = rows
        .into_iter()
        .take(limit as usize)
        .map(|(_, notification)| notification)
        .collect();
    Ok(HttpResponse::Ok().json(NotificationPage { items, next_cursor }))
}

#[derive(sqlx::FromRow)]
struct PositionedRow {
    position: i64,
    #[sqlx(flatten)]
    notification: Notification,
}

/// An order's notifications, in the order they were sent
#[utoipa::path(get, path = "/orders/{id}/notifications", tag = "notifications",
    params(("id" = Uuid, Path, description = "The order's id"), NoParameters),
    responses(
        (status = 200, description = "The order's notifications (none for an order it knows nothing of)", body = OrderNotifications),
        (status = 400, description = "A query parameter (this endpoint takes none)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL is down", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds"))),
    ))]
pub async fn order_notifications(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    _query: web::Query<NoParameters>,
) -> Result<HttpResponse, ApiError> {
    let items: Vec<Notification> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications.notifications WHERE order_id = $1 ORDER BY position"
    ))
    .bind(id.into_inner())
    .fetch_all(&state.pool)
    .await?;
    Ok(HttpResponse::Ok().json(OrderNotifications { items }))
}

/// Dependencies are reachable
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "PostgreSQL answers and NATS is connected", body = Object, example = json!({"status": "ready"})),
        (status = 503, description = "PostgreSQL does not answer, or NATS is not connected", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    sqlx::query("SELECT 1").execute(&state.pool).await?;
    if state.nats.connection_state() != State::Connected {
        return Err(ApiError::BrokerDown);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}

pub fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(resource_for(
        "/customers/{id}/notifications",
        Method::GET,
        customer_notifications,
    ))
    .service(resource_for(
        "/orders/{id}/notifications",
        Method::GET,
        order_notifications,
    ))
    .service(resource_for("/healthz", Method::GET, operations::healthz))
    .service(resource_for("/readyz", Method::GET, readyz))
    .service(resource_for("/metrics", Method::GET, operations::metrics));
}
