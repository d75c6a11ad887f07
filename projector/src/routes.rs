//! The projector's HTTP endpoints: `/healthz`, `/readyz` (PostgreSQL and Redis answer),
//! `/metrics`, and one operator action, `POST /dead-letters/retry`, which the dashboard's
//! retry button calls from the query-api's origin (CORS) with the operator's bearer token.

use actix_cors::Cors;
use actix_web::{
    HttpRequest, HttpResponse,
    http::{Method, StatusCode, header},
    web,
};
use http_kit::{Problem, bearer::Secret, operations, resource_for};
use serde::Serialize;

use crate::{Projector, Settings, saga};

async fn readyz(projector: web::Data<Projector>) -> Result<HttpResponse, Problem> {
    sqlx::query("SELECT 1")
        .execute(&projector.pool)
        .await
        .map_err(|error| Problem::unavailable("PostgreSQL does not answer").with_cause(error))?;
    let mut redis = projector.redis.clone();
    redis::cmd("PING")
        .query_async::<String>(&mut redis)
        .await
        .map_err(|error| Problem::unavailable("Redis does not answer").with_cause(error))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}

/// What the operator endpoints need: the token (`OPERATOR_TOKEN`), the origins the dashboard
/// calls from, and one retry at a time.
pub struct Operator {
    /// The tokens accepted (several, comma-separated, for rotation); none: disabled.
    tokens: Vec<Secret>,
    origins: Vec<String>,
    snapshot_every: i64,
    retrying: tokio::sync::Mutex<()>,
}

impl Operator {
    pub fn new(settings: &Settings) -> Self {
        let tokens = settings
            .operator_token
            .as_ref()
            .map(http_kit::bearer::tokens)
            .unwrap_or_default();
        if tokens.is_empty() {
            tracing::info!(
                "no OPERATOR_TOKEN: the operator endpoints (POST /dead-letters/retry) answer 403"
            );
        }
        Self {
            tokens,
            origins: settings.dashboard_origins(),
            snapshot_every: settings.snapshot_every,
            retrying: tokio::sync::Mutex::new(()),
        }
    }

    /// The refusal, unless the operator's bearer token is configured and presented.
    fn refusal(&self, req: &HttpRequest) -> Option<HttpResponse> {
        if self.tokens.is_empty() {
            return Some(actix_web::ResponseError::error_response(&Problem::new(
                StatusCode::FORBIDDEN,
                "operator actions are disabled: start the projector with OPERATOR_TOKEN set",
            )));
        }
        if http_kit::bearer::presents(req.headers(), &self.tokens) {
            return None;
        }
        let problem = Problem::new(
            StatusCode::UNAUTHORIZED,
            "send the operator token as `Authorization: Bearer <token>` (OPERATOR_TOKEN; ./scripts/run prints it)",
        );
        let mut response = actix_web::ResponseError::error_response(&problem);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        Some(response)
    }
}

#[derive(Debug, Serialize)]
struct Retried {
    /// Parked events that went through this time (and are no longer parked).
    processed: usize,
    /// Parked events that failed again (still parked, with their new error).
    still_failing: usize,
}

/// Runs every parked saga event through its handler again, as `projector retry-dead-letters`
/// does; one retry at a time.
async fn retry_dead_letters(
    req: HttpRequest,
    operator: web::Data<Operator>,
    projector: web::Data<Projector>,
) -> HttpResponse {
    if let Some(refused) = operator.refusal(&req) {
        return refused;
    }
    let _one_at_a_time = operator.retrying.lock().await;
    match saga::retry_dead_letters(&projector.pool, operator.snapshot_every).await {
        Ok((processed, still_failing)) => {
            tracing::info!(
                processed,
                still_failing,
                "dead letters retried (operator request)"
            );
            HttpResponse::Ok().json(Retried {
                processed,
                still_failing,
            })
        }
        Err(error) => {
            let transient = error
                .downcast_ref::<sqlx::Error>()
                .is_some_and(database::is_transient);
            let problem = if transient {
                Problem::unavailable("PostgreSQL is unavailable; retry shortly").with_cause(&error)
            } else {
                Problem::internal(format!("{error:#}"))
            };
            tracing::error!(%problem, "retrying dead letters failed");
            actix_web::ResponseError::error_response(&problem)
        }
    }
}

/// CORS for the operator endpoints: the dashboard's origins may POST with a bearer token.
fn operator_cors(origins: &[String]) -> Cors {
    origins
        .iter()
        .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin))
        .allowed_methods([Method::POST])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(600)
}

pub fn router(cfg: &mut web::ServiceConfig, operator: web::Data<Operator>) {
    let cors = operator_cors(&operator.origins);
    cfg.app_data(operator)
        .service(resource_for("/healthz", Method::GET, operations::healthz))
        .service(resource_for("/readyz", Method::GET, readyz))
        .service(resource_for("/metrics", Method::GET, operations::metrics))
        .service(resource_for("/dead-letters/retry", Method::POST, retry_dead_letters).wrap(cors));
}

#[cfg(test)]
mod tests {
    use actix_web::{http::StatusCode, test::TestRequest};
    use clap::Parser;

    use super::*;

    fn operator(token: Option<&str>) -> Operator {
        Operator {
            tokens: token
                .map(|token| vec![Secret::new(token)])
                .unwrap_or_default(),
            origins: Vec::new(),
            snapshot_every: 0,
            retrying: tokio::sync::Mutex::new(()),
        }
    }

    #[test]
    fn without_an_operator_token_the_operator_endpoints_are_forbidden() {
        let request = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Bearer anything"))
            .to_http_request();
        let refusal = operator(None).refusal(&request).expect("refused");
        assert_eq!(refusal.status(), StatusCode::FORBIDDEN);
        let refusal = operator(Some("s3cret")).refusal(&request).expect("refused");
        assert_eq!(refusal.status(), StatusCode::UNAUTHORIZED);
        let request = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Bearer s3cret"))
            .to_http_request();
        assert!(operator(Some("s3cret")).refusal(&request).is_none());
    }

    #[test]
    fn the_dashboard_origin_follows_the_query_apis_address_unless_given() {
        let origins = |args: &[&str]| {
            let mut argv = vec!["projector"];
            argv.extend_from_slice(args);
            crate::cli::Cli::try_parse_from(argv)
                .expect("settings")
                .settings
                .dashboard_origins()
        };
        assert_eq!(
            origins(&["--query-api-addr", "0.0.0.0:9001"]),
            ["http://127.0.0.1:9001", "http://localhost:9001"]
        );
        assert_eq!(
            origins(&["--query-api-addr", "shop.internal:8081"]),
            ["http://shop.internal:8081"]
        );
        assert_eq!(
            origins(&["--dashboard-origins", "https://ops.example/,http://a:1"]),
            ["https://ops.example", "http://a:1"]
        );
    }
}
