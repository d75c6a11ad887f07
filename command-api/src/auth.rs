//! Bearer-token authentication for every command. The token comes from COMMAND_API_TOKEN; the
//! comparison takes the same time whatever the guess, so the token cannot be found byte by byte.

use std::sync::Arc;

use actix_web::{
    Error, HttpResponse,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{StatusCode, header},
    middleware::Next,
    web,
};
use http_kit::Problem;

/// The token every command must carry, or none when auth was explicitly disabled.
#[derive(Clone)]
pub struct CommandTokens(pub Option<Arc<str>>);

pub async fn require_bearer_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let expected = req
        .app_data::<web::Data<CommandTokens>>()
        .and_then(|token| token.0.clone());
    if let Some(expected) = expected {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim);
        if !presented.is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes())) {
            let detail = "send the command API token as `Authorization: Bearer <token>` (./scripts/run prints it)";
            let problem = Problem::new(StatusCode::UNAUTHORIZED, detail);
            let response = HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
                .content_type(http_kit::PROBLEM_CONTENT_TYPE)
                .json(problem);
            return Ok(req.into_response(response));
        }
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
    http_kit::resource_for(path, actix_web::http::Method::POST, handler)
        .wrap(actix_web::middleware::from_fn(require_bearer_token))
        .wrap(actix_web::middleware::from_fn(
            crate::metrics::observe_commands,
        ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
