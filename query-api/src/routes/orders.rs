//! `GET /orders/{id}` (Redis), `GET /orders` and `GET /orders/{id}/history` (PostgreSQL).

use actix_web::{HttpResponse, http::Method, web};
use chrono::{DateTime, Utc};
use domain::{StreamType, order::OrderStatus};
use http_kit::{Problem, resource_for};
use read_models::names;
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::{Consistent, PointInTime, lookup, min_position, with_position};
use crate::{AppState, cursor, error::ApiError};

/// An order (the `lookups` and `order_list` document, answered as stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = OrderView)]
pub struct OrderResponse {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub status: OrderStatusName,
    pub lines: Vec<OrderLineResponse>,
    pub total_cents: i64,
    pub rejection_reason: Option<RejectionReasonName>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = OrderLine)]
pub struct OrderLineResponse {
    pub product_id: Uuid,
    pub quantity: i64,
    /// The catalog price when the order was placed.
    pub unit_price_cents: i64,
}

/// `pending` until the saga decides; then `approved` or `rejected`; `cancelled` or `shipped`
/// by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = OrderStatus)]
pub enum OrderStatusName {
    Pending,
    Approved,
    Rejected,
    Cancelled,
    Shipped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RejectionReason)]
pub enum RejectionReasonName {
    InsufficientStock,
    CreditLimitExceeded,
}

/// One line of an order's history: its own events and the saga's steps on other aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct HistoryEntry {
    pub position: i64,
    /// The version of the stream the event belongs to (`stream_type`).
    pub version: i64,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub event_type: String,
    /// `order`, `product` or `customer`.
    pub stream_type: String,
    pub recorded_at: DateTime<Utc>,
    pub data: serde_json::Value,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderFilter {
    /// Only this customer's orders.
    pub customer_id: Option<Uuid>,
    /// Only orders in this status.
    pub status: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
    /// See the other endpoints.
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderPage {
    pub items: Vec<OrderResponse>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderHistory {
    pub items: Vec<HistoryEntry>,
}

/// An order
#[utoipa::path(get, path = "/orders/{id}", tag = "orders",
    params(("id" = Uuid, Path, description = "The order's id"), PointInTime),
    responses(
        (status = 200, description = "The order", body = OrderResponse,
            headers(("X-Position" = i64, description = "The position the data reflects"))),
        (status = 400, description = "A malformed query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No order has this id (yet: see min_position), or it did not exist yet at as_of", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis is down, or min_position was not reached in time", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds"))),
    ))]
pub async fn get_order(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<PointInTime>,
) -> Result<HttpResponse, ApiError> {
    lookup(&state, StreamType::Order, id.into_inner(), &query).await
}

/// Orders, newest first
#[utoipa::path(get, path = "/orders", tag = "orders",
    params(OrderFilter),
    responses(
        (status = 200, description = "A page of orders", body = OrderPage,
            headers(("X-Position" = i64, description = "The position the data reflects"))),
        (status = 400, description = "A malformed or out-of-range parameter (limit, cursor, status, customer_id)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL is down, or min_position was not reached in time", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds"))),
    ))]
pub async fn list_orders(
    state: web::Data<AppState>,
    query: web::Query<OrderFilter>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = cursor::limit(query.limit)?;
    let status = match query.status.as_deref() {
        None => None,
        Some(value) => Some(OrderStatus::parse(value).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "status must be one of pending, approved, rejected, cancelled, shipped; not {value:?}"
            ))
        })?),
    };
    let before: Option<i64> = query.cursor.as_deref().map(cursor::decode).transpose()?;
    let position = state
        .consistency
        .reach(names::ORDER_LIST, min_position(query.min_position)?)
        .await?;

    let mut sql =
        QueryBuilder::new("SELECT doc, placed_position FROM read_model.orders WHERE true");
    if let Some(customer_id) = query.customer_id {
        sql.push(" AND customer_id = ").push_bind(customer_id);
    }
    if let Some(status) = status {
        sql.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(before) = before {
        sql.push(" AND placed_position < ").push_bind(before);
    }
    sql.push(" ORDER BY placed_position DESC LIMIT ")
        .push_bind(limit + 1);
    let rows: Vec<(sqlx::types::Json<OrderResponse>, i64)> =
        sql.build_query_as().fetch_all(&state.pool).await?;

    let next_cursor =
        (rows.len() as i64 > limit).then(|| cursor::encode(&rows[limit as usize - 1].1));
    let items = rows
        .into_iter()
        .take(limit as usize)
        .map(|(doc, _)| doc.0)
        .collect();
    Ok(with_position(&OrderPage { items, next_cursor }, position))
}

/// An order's history
///
/// The order's events and the saga's steps on products and customers, in position order.
#[utoipa::path(get, path = "/orders/{id}/history", tag = "orders",
    params(("id" = Uuid, Path, description = "The order's id"), Consistent),
    responses(
        (status = 200, description = "The order's events, in order", body = OrderHistory,
            headers(("X-Position" = i64, description = "The position the data reflects"))),
        (status = 400, description = "A malformed query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No order has this id (yet: see min_position)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL is down, or min_position was not reached in time", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds"))),
    ))]
pub async fn order_history(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<Consistent>,
) -> Result<HttpResponse, ApiError> {
    let position = state
        .consistency
        .reach(names::ORDER_HISTORY, min_position(query.min_position)?)
        .await?;
    let items: Vec<HistoryEntry> = sqlx::query_as(
        "SELECT position, version, type, stream_type, recorded_at, data FROM read_model.order_history
         WHERE order_id = $1 ORDER BY position",
    )
    .bind(id.into_inner())
    .fetch_all(&state.pool)
    .await?;
    if items.is_empty() {
        return Err(ApiError::NotFound("no order has this id".into()));
    }
    Ok(with_position(&OrderHistory { items }, position))
}

pub fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(resource_for("/orders", Method::GET, list_orders))
        .service(resource_for("/orders/{id}", Method::GET, get_order))
        .service(resource_for(
            "/orders/{id}/history",
            Method::GET,
            order_history,
        ));
}
