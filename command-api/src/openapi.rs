//! The command-api's OpenAPI 3.1 document, generated from the handlers' annotations. The
//! committed copy in `openapi/command-api.json` is checked against it by a test.

use utoipa::{
    IntoParams, Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{
    command_request::CommandAccepted,
    routes::{customers, health, orders, products},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "command-api",
        description = "The write side of the CQRS order system: commands become events in an append-only \
            PostgreSQL log. Every command needs `Authorization: Bearer <COMMAND_API_TOKEN>`. Read your writes \
            from the query-api with `min_position=<position>`.",
        license(name = "MIT", identifier = "MIT")
    ),
    paths(
        customers::register_customer,
        customers::forget_personal_data,
        products::add_product,
        products::restock_product,
        orders::place_order,
        orders::cancel_order,
        orders::ship_order,
        http_kit::operations::healthz,
        health::readyz,
        http_kit::operations::metrics,
    ),
    components(schemas(CommandAccepted, http_kit::Problem, http_kit::ProblemField)),
    modifiers(&BearerAuth),
    tags(
        (name = "customers", description = "Customers and their credit"),
        (name = "products", description = "The catalog and its stock"),
        (name = "orders", description = "Orders; the saga approves or rejects them"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The COMMAND_API_TOKEN the service was started with"))
                    .build(),
            ),
        );
    }
}

/// `Idempotency-Key`: a retry with the same key and body replays the first response.
///
/// Each header is documented as an optional `string`: utoipa would describe an `Option` header as
/// `type: [string, "null"]`, which no header can be and which generated clients (progenitor) take
/// as a doubly optional value.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // only describes the header
pub struct IdempotencyKey {
    /// Up to 200 characters. The first response is stored with the events it appended; a retry
    /// with the same key and body gets it back with `Idempotent-Replayed: true` and appends
    /// nothing; the same key with another body gets 422.
    /// Kept 24 hours (IDEMPOTENCY_KEY_TTL_HOURS); then the key is new again.
    #[param(rename = "Idempotency-Key", value_type = String, required = false, min_length = 1, max_length = 200)]
    idempotency_key: Option<String>,
}

/// `If-Match`: append only if the aggregate is still at this version.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // only describes the header
pub struct IfMatch {
    /// The version as an ETag, e.g. `"3"`; a different current version gives 412.
    #[param(rename = "If-Match", value_type = String, required = false, pattern = r#"^(\*|(W/)?"?[0-9]{1,18}"?)$"#)]
    if_match: Option<String>,
}

/// `X-Request-Id`: echoed on the response and stored as the events' correlation id.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // only describes the header
pub struct RequestIdHeader {
    /// Echoed when it is 1 to 200 visible ASCII characters; otherwise (or when absent) one is
    /// generated.
    #[param(rename = "X-Request-Id", value_type = String, required = false)]
    x_request_id: Option<String>,
}
