//! `POST /orders`, `POST /orders/{id}/cancel`, `POST /orders/{id}/ship`.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use domain::{
    Aggregate,
    order::{Order, OrderCommand, OrderStatus, RequestedLines},
};
use http_kit::Problem;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::{
    AppState,
    auth::command_resource,
    command_request::{CommandAccepted, IdPath, accepted, command_options, respond, run_command},
    error::ApiError,
};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"customer_id": "0193a5c4-8f00-7000-8000-000000000001",
    "lines": [{"product_id": "0193a5c4-8f00-7000-8000-000000000002", "quantity": 2}]}))]
pub struct PlaceOrder {
    pub customer_id: Uuid,
    /// 1 to 50 lines, each product at most once.
    #[schema(min_items = 1, max_items = 50)]
    pub lines: Vec<RequestedLine>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestedLine {
    pub product_id: Uuid,
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    #[serde(deserialize_with = "http_kit::json_integer::deserialize")]
    pub quantity: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "ordered by mistake"}))]
pub struct CancelOrder {
    /// Why the order is cancelled; at most 500 characters, no control characters but newlines
    /// and tabs.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// Place an order
///
/// The order is accepted as `pending`; the saga then reserves stock and credit and approves or
/// rejects it. Unit prices are captured from the catalog now.
#[utoipa::path(
    post, path = "/orders", tag = "orders",
    request_body = PlaceOrder,
    params(crate::openapi::IdempotencyKey, crate::openapi::RequestIdHeader),
    responses(
        (status = 202, description = "Accepted as pending; `Location` is the query-api path", body = CommandAccepted,
            headers(("Location" = String, description = "The query-api path of the order"),
                    ("ETag" = String, description = "The order's version, quoted")),
            links(
                ("CancelOrder" = (operation_id = "cancel_order", parameters(("id" = "$response.body#/id")),
                    description = "Cancel the order just placed")),
                ("ShipOrder" = (operation_id = "ship_order", parameters(("id" = "$response.body#/id")),
                    description = "Ship the order once the saga has approved it")),
            )),
        (status = 400, description = "Not JSON, or the wrong shape", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid lines, an unknown customer or product, or an Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable, or (with `MAX_SAGA_LAG_EVENTS`) the saga has more events left to handle than the service admits orders at (`/problems/overloaded`); retry after `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ),
    security(("bearer" = []))
)]
pub async fn place_order(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<PlaceOrder>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    state.admission.admit_order()?;
    let mut options = command_options(&req, &state, &body)?;
    options.new_stream = true;
    let requested: Vec<(Uuid, i64)> = body
        .lines
        .iter()
        .map(|line| (line.product_id, line.quantity))
        .collect();
    let lines = RequestedLines::parse(&requested)?;
    let catalog = state
        .catalog
        .answer(&state.pool, body.customer_id, &lines)
        .await?;
    let id = Uuid::now_v7();
    let reply = run_command::<Order, _, _>(
        &state,
        id,
        &options,
        |order| {
            order.decide(OrderCommand::Place {
                customer_id: body.customer_id,
                lines: lines.clone(),
                catalog: catalog.clone(),
            })
        },
        |executed| {
            let location = Some(format!("/orders/{id}"));
            accepted(
                id,
                executed,
                StatusCode::ACCEPTED,
                Some(OrderStatus::Pending),
                location,
            )
        },
    )
    .await?;
    Ok(respond(reply))
}

/// Cancel an order
///
/// A pending or approved order is cancelled and the saga releases whatever stock and credit it
/// holds. The body is optional.
#[utoipa::path(
    post, path = "/orders/{id}/cancel", tag = "orders",
    request_body(content = Option<CancelOrder>, description = "Optional", content_type = "application/json"),
    params(("id" = Uuid, Path, description = "The order's id"), crate::openapi::IfMatch,
           crate::openapi::IdempotencyKey, crate::openapi::RequestIdHeader),
    responses(
        (status = 202, description = "Cancelled; stock and credit are released by the saga", body = CommandAccepted,
            headers(("ETag" = String, description = "The order's new version, quoted"))),
        (status = 400, description = "Not JSON, the wrong shape, or a malformed If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No order has this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is shipped, rejected or already cancelled, or a concurrent write won", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match the order's version", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Reason too long, or an Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn cancel_order(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: IdPath,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    // No body, or `null`, is a cancel without a reason.
    let body: CancelOrder = optional_json::<Option<CancelOrder>>(&req, &body)?
        .flatten()
        .unwrap_or_default();
    let options = command_options(&req, &state, &body)?;
    let reply = run_command::<Order, _, _>(
        &state,
        id,
        &options,
        |order| {
            order.decide(OrderCommand::Cancel {
                reason: body.reason.clone(),
            })
        },
        |executed| {
            accepted(
                id,
                executed,
                StatusCode::ACCEPTED,
                Some(executed.loaded.state.status),
                None,
            )
        },
    )
    .await?;
    Ok(respond(reply))
}

/// Ship an approved order
#[utoipa::path(
    post, path = "/orders/{id}/ship", tag = "orders",
    params(("id" = Uuid, Path, description = "The order's id"), crate::openapi::IfMatch,
           crate::openapi::IdempotencyKey, crate::openapi::RequestIdHeader),
    responses(
        (status = 200, description = "Shipped; its reserved stock leaves the shop", body = CommandAccepted,
            headers(("ETag" = String, description = "The order's new version, quoted"))),
        (status = 400, description = "A malformed If-Match or Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No order has this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is not approved, or a concurrent write won", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match the order's version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An Idempotency-Key reused with another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn ship_order(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: IdPath,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let options = command_options(&req, &state, &serde_json::Value::Null)?;
    let reply = run_command::<Order, _, _>(
        &state,
        id,
        &options,
        |order| order.decide(OrderCommand::Ship),
        |executed| {
            accepted(
                id,
                executed,
                StatusCode::OK,
                Some(executed.loaded.state.status),
                None,
            )
        },
    )
    .await?;
    Ok(respond(reply))
}

/// An optional JSON body: empty is `None`; anything else must be `application/json` and valid.
fn optional_json<T: DeserializeOwned>(
    req: &HttpRequest,
    body: &[u8],
) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let is_json = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<mime::Mime>().ok())
        .is_some_and(|mime| mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_json::from_slice(body).map(Some).map_err(|error| {
        ApiError::BadRequest(format!("the body is not valid for this request: {error}"))
    })
}

pub fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(command_resource("/orders", place_order))
        .service(command_resource("/orders/{id}/cancel", cancel_order))
        .service(command_resource("/orders/{id}/ship", ship_order));
}
