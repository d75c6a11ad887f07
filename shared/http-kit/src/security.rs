//! What every answer carries for browsers, and which other sites' pages may call the API.
//!
//! - Security headers on every answer (errors included): `X-Content-Type-Options: nosniff`,
//!   `X-Frame-Options: DENY` and a Content-Security-Policy with `frame-ancestors 'none'` (no
//!   page may frame ours), `Referrer-Policy: no-referrer`. The API's JSON needs nothing, so its
//!   policy allows nothing (`default-src 'none'`); Swagger UI's pages get what that page needs
//!   from its own origin (its bundled scripts and styles, inline styles, data: images) and no
//!   more; a page that sets its own policy (the operator dashboard) keeps it. No HSTS: the services speak plain HTTP behind whatever terminates TLS, which sets it.
//! - CORS is closed by default: no `Access-Control-*` header, so a browser lets no other
//!   origin's page read an answer. `CORS_ALLOWED_ORIGINS` (comma-separated origins, e.g.
//!   `https://shop.example,http://localhost:3000`) opens it to exactly those origins, for the
//!   methods, request headers and response headers the API uses; no credentials (the bearer
//!   token is sent explicitly, never by cookie).

use actix_cors::Cors;
use actix_web::{
    Error,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{
        Method, Uri,
        header::{self, HeaderName, HeaderValue},
    },
    middleware::Next,
};

/// Swagger UI's page loads its bundled script and styles from its own origin, sets inline styles
/// and shows data: images; nothing else.
const SWAGGER_UI_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/// Everything else is JSON or text that no browser should run, style or frame.
const API_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The HTTP settings both APIs share.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HttpArgs {
    /// Origins whose pages may call the API from a browser (CORS), comma-separated, e.g.
    /// `https://shop.example,http://localhost:3000`. None by default: CORS is closed.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_parser = parse_origins, default_value = "")]
    pub cors_allowed_origins: CorsOrigins,
}

/// The origins CORS lets in, each `scheme://host[:port]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins(pub Vec<String>);

/// Parses a comma-separated list of origins, refusing anything a browser never sends as an
/// `Origin` (a path, a query, another scheme, a wildcard).
pub fn parse_origins(value: &str) -> Result<CorsOrigins, String> {
    let mut origins = Vec::new();
    for origin in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let origin = origin.trim_end_matches('/');
        let uri: Uri = origin
            .parse()
            .map_err(|_| format!("{origin:?} is not an origin (scheme://host[:port])"))?;
        let valid = matches!(uri.scheme_str(), Some("http" | "https"))
            && uri
                .authority()
                .is_some_and(|a| !a.host().is_empty() && a.host() != "*")
            && uri.path() == "/"
            && uri.query().is_none()
            && !origin.contains('@');
        if !valid {
            return Err(format!(
                "{origin:?} is not an origin: write scheme://host[:port], e.g. https://shop.example"
            ));
        }
        origins.push(origin.to_owned());
    }
    Ok(CorsOrigins(origins))
}

/// The CORS middleware for `origins` (none: every cross-origin request is refused).
pub fn cors(origins: &CorsOrigins) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::DELETE])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::LOCATION,
            header::ETAG,
            header::RETRY_AFTER,
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("x-position"),
            HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(3_600);
    for origin in &origins.0 {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Adds the security headers to every answer.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let swagger_ui = req.path().starts_with("/swagger-ui");
    let mut response = next.call(req).await?.map_into_boxed_body();
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A page that sets its own policy (the operator dashboard names the projector it calls)
    // keeps it; everything else gets the policy of what it is.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(if swagger_ui {
                SWAGGER_UI_POLICY
            } else {
                API_POLICY
            }),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(parse_origins(""), Ok(CorsOrigins::default()));
        assert_eq!(
            parse_origins(" https://shop.example/ , http://localhost:3000"),
            Ok(CorsOrigins(vec![
                "https://shop.example".into(),
                "http://localhost:3000".into()
            ]))
        );
        for wrong in [
            "*",
            "shop.example",
            "ftp://shop.example",
            "https://shop.example/path",
            "https://shop.example?x=1",
            "https://user@shop.example",
        ] {
            assert!(parse_origins(wrong).is_err(), "{wrong}");
        }
    }
}
