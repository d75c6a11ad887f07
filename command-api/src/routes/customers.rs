//! `POST /customers`, `DELETE /customers/{id}/personal-data`.

use actix_web::{
    HttpRequest, HttpResponse,
    http::{Method, StatusCode},
    web,
};
use domain::{
    Aggregate, Cents, Name,
    customer::{Customer, CustomerCommand},
};
use http_kit::Problem;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AppState,
    auth::{command_resource, command_resource_for},
    command_request::{CommandAccepted, IdPath, accepted, command_options, respond, run_command},
    error::ApiError,
};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Ada Lovelace", "credit_limit_cents": 100000}))]
pub struct RegisterCustomer {
    /// 1 to 200 characters (surrounding spaces are trimmed), no control characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The most credit the customer's open orders may hold, in cents.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    #[serde(deserialize_with = "http_kit::json_integer::deserialize")]
    pub credit_limit_cents: i64,
}

/// Register a customer
#[utoipa::path(
    post, path = "/customers", tag = "customers",
    request_body = RegisterCustomer,
    params(crate::openapi::IdempotencyKey, crate::openapi::RequestIdHeader),
    responses(
        (status = 201, description = "Registered; `Location` is the query-api path", body = CommandAccepted,
            headers(("Location" = String, description = "The query-api path of the customer"),
                    ("ETag" = String, description = "The customer's version, quoted")),
            links(
                ("PlaceOrder" = (operation_id = "place_order",
                    request_body = json!({"customer_id": "$response.body#/id"}),
                    description = "Place an order for the customer just registered (its lines are yours to fill in)")),
            )),
        (status = 400, description = "Not JSON, or the wrong shape", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or an Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn register_customer(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RegisterCustomer>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut options = command_options(&req, &state, &body)?;
    options.new_stream = true;
    let (name, credit_limit) = match (
        Name::parse("name", &body.name),
        Cents::parse("credit_limit_cents", body.credit_limit_cents),
    ) {
        (Ok(name), Ok(limit)) => (name, limit),
        (name, limit) => {
            return Err(ApiError::invalid(
                [name.err(), limit.err()].into_iter().flatten().collect(),
            ));
        }
    };
    let id = Uuid::now_v7();
    let reply = run_command::<Customer, _, _>(
        &state,
        id,
        &options,
        |customer| {
            customer.decide(CustomerCommand::Register {
                name: name.clone(),
                credit_limit,
            })
        },
        |executed| {
            accepted(
                id,
                executed,
                StatusCode::CREATED,
                None,
                Some(format!("/customers/{id}")),
            )
        },
    )
    .await?;
    Ok(respond(reply))
}

/// Erase a customer's personal data
///
/// The right to erasure, by crypto-shredding: the key their personal data (today the name) is
/// encrypted with in the event log is destroyed, and a `CustomerForgotten` event recorded. From
/// then on every read model, history, feed, rebuild, time-travel answer and relayed message
/// shows `[erased]` in its place; their credit, orders, stock and totals stay as they were.
/// Idempotent: erasing again changes nothing and answers the current version.
#[utoipa::path(
    delete, path = "/customers/{id}/personal-data", tag = "customers",
    params(("id" = Uuid, Path, description = "The customer's id"), crate::openapi::IfMatch,
           crate::openapi::IdempotencyKey, crate::openapi::RequestIdHeader),
    responses(
        (status = 200, description = "Erased (now, or before); `position` is the CustomerForgotten event's (0 when it was erased before)", body = CommandAccepted,
            headers(("ETag" = String, description = "The customer's version, quoted"))),
        (status = 400, description = "A malformed If-Match or Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No customer has this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A concurrent write won", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match the customer's version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An Idempotency-Key reused with another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn forget_personal_data(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: IdPath,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut options = command_options(&req, &state, &serde_json::Value::Null)?;
    options.forget_personal_data_of = Some(id);
    let reply = run_command::<Customer, _, _>(
        &state,
        id,
        &options,
        |customer| customer.decide(CustomerCommand::ForgetPersonalData),
        |executed| accepted(id, executed, StatusCode::OK, None, None),
    )
    .await?;
    Ok(respond(reply))
}

pub fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(command_resource("/customers", register_customer))
        .service(command_resource_for(
            "/customers/{id}/personal-data",
            Method::DELETE,
            forget_personal_data,
        ));
}
