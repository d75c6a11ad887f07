//! Bearer-token authentication for every command. The tokens come from COMMAND_API_TOKEN, a
//! comma-separated list (rotation without downtime); `http_kit::bearer` compares them in a time
//! that does not depend on the guess, and keeps them out of every log.

use std::sync::Arc;

use actix_web::{
    Error, HttpResponse,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{StatusCode, header},
    middleware::Next,
    web,
};
use http_kit::{Problem, bearer::Secret};

/// The tokens a command may carry (any one of them), or none when auth was explicitly disabled.
#[derive(Clone)]
pub struct CommandTokens(pub Option<Arc<[Secret]>>);

impl CommandTokens {
    /// The tokens of a COMMAND_API_TOKEN value; none when it holds none.
    pub fn parse(value: &Secret) -> Option<Self> {
        let tokens = http_kit::bearer::tokens(value);
        (!tokens.is_empty()).then(|| Self(Some(tokens.into())))
    }
}

pub async fn require_bearer_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let expected = req
        .app_data::<web::Data<CommandTokens>>()
        .and_then(|token| token.0.clone());
    if let Some(expected) = expected
        && !http_kit::bearer::presents(req.headers(), &expected)
    {
        let detail = "send the command API token as `Authorization: Bearer <token>` (./scripts/run prints it)";
        let problem = Problem::new(StatusCode::UNAUTHORIZED, detail);
        let response = HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .content_type(http_kit::PROBLEM_CONTENT_TYPE)
            .json(problem);
        return Ok(req.into_response(response));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// A command endpoint: POST only (405 with `Allow` otherwise), behind the bearer token, its
/// outcome counted (`metrics::observe_commands`).
pub fn command_resource<F, Args>(
    path: &str,
    handler: F,
) -> impl actix_web::dev::HttpServiceFactory + 'static
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    command_resource_for(path, actix_web::http::Method::POST, handler)
}

/// `command_resource` for a command sent with another method (`DELETE`).
pub fn command_resource_for<F, Args>(
    path: &str,
    method: actix_web::http::Method,
    handler: F,
) -> impl actix_web::dev::HttpServiceFactory + 'static
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    http_kit::resource_for(path, method, handler)
        .wrap(actix_web::middleware::from_fn(require_bearer_token))
        .wrap(actix_web::middleware::from_fn(
            crate::metrics::observe_commands,
        ))
}
