//! `POST /customers`.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use domain::{
    Aggregate, Cents, Name,
    customer::{Customer, CustomerCommand},
};
use http_kit::Problem;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AppState,
    auth::command_resource,
    command_request::{CommandAccepted, accepted, command_options, respond, run_command},
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
        &state.pool,
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

pub fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(command_resource("/customers", register_customer));
}
