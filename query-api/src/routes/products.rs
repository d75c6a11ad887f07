//! `GET /products/{id}` (Redis) and `GET /products` (PostgreSQL, name search).

use actix_web::{HttpResponse, http::Method, web};
use domain::StreamType;
use http_kit::{Problem, resource_for};
use read_models::names;
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::{PointInTime, lookup, min_position, with_position};
use crate::{AppState, cursor, error::ApiError};

/// A product and its stock (the `lookups` and `product_catalog` document, answered as stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ProductView)]
pub struct ProductResponse {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub stock_on_hand: i64,
    /// Held by approved orders.
    pub stock_reserved: i64,
    pub stock_available: i64,
    pub version: i64,
}

const MAX_SEARCH_CHARS: usize = 200;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductSearch {
    /// Case-insensitive substring of the name (at most 200 characters, no control characters).
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProductPage {
    pub items: Vec<ProductResponse>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// A product
#[utoipa::path(get, path = "/products/{id}", tag = "products",
    params(("id" = Uuid, Path, description = "The product's id"), PointInTime),
    responses(
        (status = 200, description = "The product", body = ProductResponse,
            headers(("X-Position" = i64, description = "The position the data reflects"))),
        (status = 400, description = "A malformed query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No product has this id (yet: see min_position), or it did not exist yet at as_of", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Redis is down, or min_position was not reached in time", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds"))),
    ))]
pub async fn get_product(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<PointInTime>,
) -> Result<HttpResponse, ApiError> {
    lookup(&state, StreamType::Product, id.into_inner(), &query).await
}

/// Products by name
#[utoipa::path(get, path = "/products", tag = "products",
    params(ProductSearch),
    responses(
        (status = 200, description = "A page of products in name order", body = ProductPage,
            headers(("X-Position" = i64, description = "The position the data reflects"))),
        (status = 400, description = "A malformed or out-of-range parameter (limit, cursor, q)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL is down, or min_position was not reached in time", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds"))),
    ))]
pub async fn search_products(
    state: web::Data<AppState>,
    query: web::Query<ProductSearch>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let limit = cursor::limit(query.limit)?;
    if query
        .q
        .as_ref()
        .is_some_and(|q| q.chars().count() > MAX_SEARCH_CHARS || q.chars().any(char::is_control))
    {
        return Err(ApiError::BadRequest(format!(
            "q must be at most {MAX_SEARCH_CHARS} characters, without control characters"
        )));
    }
    let after: Option<(String, Uuid)> = query.cursor.as_deref().map(cursor::decode).transpose()?;
    let position = state
        .consistency
        .reach(names::PRODUCT_CATALOG, min_position(query.min_position)?)
        .await?;

    let mut sql = QueryBuilder::new("SELECT doc, name_key, id FROM read_model.products WHERE true");
    if let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let escaped = q
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        sql.push(" AND name_key LIKE ")
            .push_bind(format!("%{escaped}%"));
    }
    if let Some((name_key, id)) = after {
        sql.push(" AND (name_key, id) > (")
            .push_bind(name_key)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    sql.push(" ORDER BY name_key, id LIMIT ")
        .push_bind(limit + 1);
    let rows: Vec<(sqlx::types::Json<ProductResponse>, String, Uuid)> =
        sql.build_query_as().fetch_all(&state.pool).await?;

    let next_cursor = (rows.len() as i64 > limit).then(|| {
        let (_, name_key, id) = &rows[limit as usize - 1];
        cursor::encode(&(name_key, id))
    });
    let items = rows
        .into_iter()
        .take(limit as usize)
        .map(|(doc, _, _)| doc.0)
        .collect();
    Ok(with_position(&ProductPage { items, next_cursor }, position))
}

pub fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(resource_for("/products", Method::GET, search_products))
        .service(resource_for("/products/{id}", Method::GET, get_product));
}
