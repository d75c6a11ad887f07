//! The API documentation every HTTP API serves: its OpenAPI document at
//! `/api-docs/openapi.json` and Swagger UI (bundled, no download) at `/swagger-ui/`.

use actix_web::{HttpResponse, web};
use utoipa_swagger_ui::SwaggerUi;

pub fn configure_api_docs(cfg: &mut web::ServiceConfig, openapi: utoipa::openapi::OpenApi) {
    cfg.service(SwaggerUi::new("/swagger-ui/{_:.*}").url("/api-docs/openapi.json", openapi))
        .route("/swagger-ui", web::get().to(redirect_to_swagger_ui));
}

async fn redirect_to_swagger_ui() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/swagger-ui/"))
        .finish()
}
