//! RFC 9457 problem details: the one body every error response has. The configs here make
//! actix's own extractor failures (bad JSON, wrong content type, oversized body, bad path or
//! query) answer in the same shape.

use actix_web::{
    HttpRequest, HttpResponse, ResponseError,
    error::{JsonPayloadError, PathError, QueryPayloadError},
    http::{StatusCode, header},
    web,
};
use serde::{Deserialize, Serialize};

use crate::MAX_BODY_BYTES;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// One validation failure, as it appears in a problem's `errors` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = FieldError)]
pub struct ProblemField {
    /// Where in the body, e.g. `lines[0].quantity`.
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"type": "/problems/validation-failed", "title": "Unprocessable Entity", "status": 422,
    "detail": "the request is invalid", "errors": [{"field": "lines[0].quantity", "message": "must be between 1 and 1000000000"}]}))]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/problems/version-mismatch`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Per-field validation failures (422 only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    /// Seconds for the `Retry-After` header (503 only).
    #[serde(skip)]
    pub retry_after_seconds: Option<u32>,
    /// What really went wrong, for the log only: a server error never shows its cause.
    #[serde(skip)]
    pub cause: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        let title = status.canonical_reason().unwrap_or("Error").to_owned();
        let slug = title.to_ascii_lowercase().replace(' ', "-");
        Self {
            problem_type: format!("/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_seconds: None,
            cause: None,
        }
    }
    /// A 500: a bug. The client learns nothing of `cause`; the log does.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "an internal error occurred; it has been logged",
        )
        .with_cause(cause)
    }
    /// A 503 with `Retry-After: 1`: a dependency is down or busy.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail).with_retry_after(1)
    }
    pub fn with_cause(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }
    pub fn with_type(mut self, slug: &str) -> Self {
        self.problem_type = format!("/problems/{slug}");
        self
    }
    pub fn with_errors(mut self, errors: Vec<ProblemField>) -> Self {
        self.errors = errors;
        self
    }
    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)?;
        match &self.cause {
            Some(cause) => write!(f, " ({cause})"),
            None => Ok(()),
        }
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        Problem::status_code(self)
    }
    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(Problem::status_code(self));
        response.content_type(PROBLEM_CONTENT_TYPE);
        if let Some(seconds) = self.retry_after_seconds {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(self)
    }
}

/// JSON bodies: at most 64 KiB, `application/json` (or `+json`), and problem+json on failure.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .content_type(|mime| {
            mime.type_() == mime::APPLICATION
                && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
        })
        .content_type_required(true)
        .error_handler(|error, _req| json_problem(&error).into())
}

fn json_problem(error: &JsonPayloadError) -> Problem {
    match error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {} KiB", MAX_BODY_BYTES / 1024),
            )
        }
        JsonPayloadError::ContentType => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as Content-Type: application/json",
        ),
        JsonPayloadError::Deserialize(error) => Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid for this request: {error}"),
        ),
        other => Problem::new(
            StatusCode::BAD_REQUEST,
            format!("the body could not be read: {other}"),
        ),
    }
}

/// Raw bodies (optional JSON bodies are read this way): at most 64 KiB.
pub fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(MAX_BODY_BYTES)
}

/// A path segment that does not parse (e.g. a malformed UUID) names no resource: 404.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error: PathError, req: &HttpRequest| {
        Problem::new(
            StatusCode::NOT_FOUND,
            format!("nothing exists at {}: {error}", req.path()),
        )
        .into()
    })
}

/// A malformed or unknown query parameter is a 400, never silently ignored or clamped.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error: QueryPayloadError, _req| {
        let detail = match &error {
            QueryPayloadError::Deserialize(error) => format!("invalid query parameters: {error}"),
            other => format!("invalid query parameters: {other}"),
        };
        Problem::new(StatusCode::BAD_REQUEST, detail).into()
    })
}

/// The default service: no route matches the path.
pub async fn route_not_found(req: HttpRequest) -> HttpResponse {
    Problem::new(
        StatusCode::NOT_FOUND,
        format!("no resource at {}", req.path()),
    )
    .error_response()
}

/// A resource that answers `method` with `handler` and every other method with 405 and `Allow`.
pub fn resource_for<F, Args>(
    path: &str,
    method: actix_web::http::Method,
    handler: F,
) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let allow = method.to_string();
    web::resource(path)
        .route(web::method(method).to(handler))
        .default_service(web::to(move |req: HttpRequest| {
            let allow = allow.clone();
            async move {
                let detail = format!(
                    "{} is not allowed on {}; use {allow}",
                    req.method(),
                    req.path()
                );
                let mut response =
                    Problem::new(StatusCode::METHOD_NOT_ALLOWED, detail).error_response();
                if let Ok(value) = header::HeaderValue::from_str(&allow) {
                    response.headers_mut().insert(header::ALLOW, value);
                }
                response
            }
        }))
}
