//! Bearer tokens, as the command-api's commands and the projector's operator endpoints take
//! them: `Authorization: Bearer <token>`, compared in a time that does not depend on where a
//! guess goes wrong, so a token cannot be found byte by byte.

use actix_web::http::header::{self, HeaderMap};

/// True when the request carries `Authorization: Bearer <expected>`.
pub fn presents(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim)
        .is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }

    #[test]
    fn only_the_bearer_scheme_with_the_token_passes() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(value).expect("header"),
            );
            presents(&headers, "s3cret")
        };
        assert!(with("Bearer s3cret"));
        assert!(with("bearer s3cret "));
        assert!(!with("Basic s3cret"));
        assert!(!with("Bearer s3cre"));
        assert!(!presents(&HeaderMap::new(), "s3cret"));
    }
}
