//! `POST /products` and `POST /products/{id}/restock`.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use domain::{
    Aggregate, Cents, Name, Quantity, Sku,
    product::{Product, ProductCommand},
};
use event_store::UniqueClaim;
use http_kit::Problem;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AppState,
    auth::command_resource,
    command_request::{CommandAccepted, IdPath, accepted, command_options, respond, run_command},
    error::ApiError,
};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"sku": "TEA-001", "name": "Green tea", "price_cents": 450, "stock": 100}))]
pub struct AddProduct {
    /// 1 to 64 of `A-Z a-z 0-9 . _ -`; unique across products, ignoring case.
    #[schema(pattern = r"^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    /// 1 to 200 characters (surrounding spaces are trimmed), no control characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(minimum = 0, maximum = 1_000_000_000_000_000_i64)]
    #[serde(deserialize_with = "http_kit::json_integer::deserialize")]
    pub price_cents: i64,
    /// Initial stock on hand.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    #[serde(deserialize_with = "http_kit::json_integer::deserialize")]
    pub stock: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"quantity": 25}))]
pub struct Restock {
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    #[serde(deserialize_with = "http_kit::json_integer::deserialize")]
    pub quantity: i64,
}

/// Add a product to the catalog
#[utoipa::path(
    post, path = "/products", tag = "products",
    request_body = AddProduct,
    params(crate::openapi::IdempotencyKey, crate::openapi::RequestIdHeader),
    responses(
        (status = 201, description = "Added; `Location` is the query-api path", body = CommandAccepted,
            headers(("Location" = String, description = "The query-api path of the product"),
                    ("ETag" = String, description = "The product's version, quoted")),
            links(
                ("RestockProduct" = (operation_id = "restock_product", parameters(("id" = "$response.body#/id")),
                    description = "Restock the product just added")),
            )),
        (status = 400, description = "Not JSON, or the wrong shape", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another product has this SKU", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or an Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn add_product(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<AddProduct>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut options = command_options(&req, &state, &body)?;
    options.new_stream = true;
    let sku = Sku::parse("sku", &body.sku);
    let name = Name::parse("name", &body.name);
    let price = Cents::parse("price_cents", body.price_cents);
    let (sku, name, price) = match (sku, name, price) {
        (Ok(sku), Ok(name), Ok(price)) => (sku, name, price),
        (sku, name, price) => {
            return Err(ApiError::invalid(
                [sku.err(), name.err(), price.err()]
                    .into_iter()
                    .flatten()
                    .collect(),
            ));
        }
    };
    options.claims.push(UniqueClaim {
        kind: "sku",
        value: sku.unique_key(),
        taken_message: format!("a product with SKU '{}' already exists", sku.as_str()),
    });
    let id = Uuid::now_v7();
    let reply = run_command::<Product, _, _>(
        &state,
        id,
        &options,
        |product| {
            product.decide(ProductCommand::Add {
                sku: sku.clone(),
                name: name.clone(),
                price,
                stock: body.stock,
            })
        },
        |executed| {
            accepted(
                id,
                executed,
                StatusCode::CREATED,
                None,
                Some(format!("/products/{id}")),
            )
        },
    )
    .await?;
    Ok(respond(reply))
}

/// Add stock to a product
#[utoipa::path(
    post, path = "/products/{id}/restock", tag = "products",
    request_body = Restock,
    params(("id" = Uuid, Path, description = "The product's id"), crate::openapi::IfMatch,
           crate::openapi::IdempotencyKey, crate::openapi::RequestIdHeader),
    responses(
        (status = 200, description = "Restocked", body = CommandAccepted,
            headers(("ETag" = String, description = "The product's new version, quoted"))),
        (status = 400, description = "Not JSON, the wrong shape, or a malformed If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No product has this id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A concurrent write won, or the stock would exceed its maximum", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match the product's version", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid quantity, or an Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn restock_product(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: IdPath,
    body: web::Json<Restock>,
) -> Result<HttpResponse, ApiError> {
    let (id, body) = (id.into_inner(), body.into_inner());
    let options = command_options(&req, &state, &body)?;
    let quantity = Quantity::parse("quantity", body.quantity)
        .map_err(|error| ApiError::invalid(vec![error]))?;
    let reply = run_command::<Product, _, _>(
        &state,
        id,
        &options,
        |product| product.decide(ProductCommand::Restock { quantity }),
        |executed| accepted(id, executed, StatusCode::OK, None, None),
    )
    .await?;
    Ok(respond(reply))
}

pub fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(command_resource("/products", add_product))
        .service(command_resource("/products/{id}/restock", restock_product));
}
