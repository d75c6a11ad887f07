//! The API documentation every HTTP API serves: its OpenAPI document at
//! `/api-docs/openapi.json` and Swagger UI (bundled, no download) at `/swagger-ui/`.
//!
//! The document is served as JSON after one correction: utoipa 5 writes the fields of a
//! response's Link Object in snake case (`operation_id`, `operation_ref`, `request_body`), which
//! the OpenAPI specification spells `operationId`, `operationRef` and `requestBody`; tools that
//! follow links (schemathesis' stateful phase, generated clients) reject the snake-case ones.

use actix_web::{HttpResponse, web};
use serde_json::Value;
use utoipa_swagger_ui::SwaggerUi;

pub fn configure_api_docs(cfg: &mut web::ServiceConfig, openapi: utoipa::openapi::OpenApi) {
    let document = openapi_document(&openapi);
    cfg.service(
        SwaggerUi::new("/swagger-ui/{_:.*}")
            .external_url_unchecked("/api-docs/openapi.json", document),
    )
    .route("/swagger-ui", web::get().to(redirect_to_swagger_ui));
}

/// The document as served: `openapi` as JSON, with every link's fields spelled as OpenAPI does.
pub fn openapi_document(openapi: &utoipa::openapi::OpenApi) -> Value {
    let mut document = serde_json::to_value(openapi).unwrap_or(Value::Null);
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for operation in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in operation.values_mut() {
                let responses = operation
                    .get_mut("responses")
                    .and_then(Value::as_object_mut);
                for response in responses.into_iter().flat_map(|r| r.values_mut()) {
                    let links = response.get_mut("links").and_then(Value::as_object_mut);
                    for link in links.into_iter().flat_map(|l| l.values_mut()) {
                        respell_link(link);
                    }
                }
            }
        }
    }
    document
}

fn respell_link(link: &mut Value) {
    let Some(link) = link.as_object_mut() else {
        return;
    };
    for (snake, camel) in [
        ("operation_id", "operationId"),
        ("operation_ref", "operationRef"),
        ("request_body", "requestBody"),
    ] {
        if let Some(value) = link.remove(snake) {
            link.insert(camel.to_owned(), value);
        }
    }
}

async fn redirect_to_swagger_ui() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/swagger-ui/"))
        .finish()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn links_are_spelled_as_openapi_spells_them() {
        let link = utoipa::openapi::link::LinkBuilder::new()
            .operation_id("cancel_order")
            .parameter("id", "$response.body#/id")
            .request_body(Some(json!({"reason": "x"})))
            .build();
        let response = utoipa::openapi::ResponseBuilder::new()
            .description("Accepted")
            .link("CancelOrder", link)
            .build();
        let operation = utoipa::openapi::path::OperationBuilder::new()
            .response("202", response)
            .build();
        let paths = utoipa::openapi::path::PathsBuilder::new()
            .path(
                "/orders",
                utoipa::openapi::PathItem::new(utoipa::openapi::HttpMethod::Post, operation),
            )
            .build();
        let openapi = utoipa::openapi::OpenApiBuilder::new().paths(paths).build();
        let served = openapi_document(&openapi);
        assert_eq!(
            served["paths"]["/orders"]["post"]["responses"]["202"]["links"]["CancelOrder"],
            json!({"operationId": "cancel_order", "parameters": {"id": "$response.body#/id"},
                   "requestBody": {"reason": "x"}})
        );
    }
}
