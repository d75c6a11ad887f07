//! Bearer tokens, as the command-api's commands and the projector's operator endpoints take
//! them: `Authorization: Bearer <token>`. A setting may hold several tokens, comma-separated, so
//! a token can be rotated without downtime (add the new one, move the clients over, drop the old
//! one). A presented token is compared with every configured one, each comparison taking the
//! same time whatever the guess, so no token can be found byte by byte; and a token is never
//! logged (`Secret` hides it from `Debug`, and the request log records no headers).

use actix_web::http::header::{self, HeaderMap};

/// A secret setting: shown as `[redacted]` by `Debug`, so no log of the settings reveals it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(value.to_owned()))
    }
}

/// The tokens of a setting: comma-separated, surrounding spaces trimmed, empty entries ignored.
pub fn tokens(value: &Secret) -> Vec<Secret> {
    value
        .expose()
        .split(',')
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .map(Secret::new)
        .collect()
}

/// True when the request carries `Authorization: Bearer <t>` for one of `accepted`. Every
/// token is compared, whichever matches.
pub fn presents(headers: &HeaderMap, accepted: &[Secret]) -> bool {
    let Some(presented) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim)
    else {
        return false;
    };
    accepted.iter().fold(false, |found, token| {
        found | constant_time_eq(presented.as_bytes(), token.expose().as_bytes())
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn with(value: &str, accepted: &[Secret]) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        presents(&headers, accepted)
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }

    #[test]
    fn only_the_bearer_scheme_with_a_token_passes() {
        let accepted = [Secret::new("s3cret")];
        assert!(with("Bearer s3cret", &accepted));
        assert!(with("bearer s3cret ", &accepted));
        assert!(!with("Basic s3cret", &accepted));
        assert!(!with("Bearer s3cre", &accepted));
        assert!(!presents(&HeaderMap::new(), &accepted));
    }

    #[test]
    fn any_of_several_tokens_is_accepted_and_none_other() {
        let accepted = tokens(&Secret::new(" old-token , new-token,,"));
        assert_eq!(accepted.len(), 2);
        assert!(with("Bearer old-token", &accepted));
        assert!(with("Bearer new-token", &accepted));
        assert!(!with("Bearer old-token,new-token", &accepted));
        assert!(!with("Bearer ", &accepted));
        assert!(tokens(&Secret::new(" , ")).is_empty());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert!(!format!("{:?}", Some(&secret)).contains("hunter2"));
    }
}
