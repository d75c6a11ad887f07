//! Opaque keyset-pagination cursors: URL-safe base64 of the sort key of the last item served.
//! A cursor that does not decode is a 400, never silently ignored.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::ApiError;

pub fn encode(key: &impl Serialize) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

pub fn decode<K: DeserializeOwned>(cursor: &str) -> Result<K, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        // PostgreSQL text cannot hold NUL: such a cursor was never handed out.
        .filter(|bytes| !bytes.windows(6).any(|window| window == b"\\u0000"))
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            ApiError::BadRequest(
                "cursor is not one this API handed out; start again without it".into(),
            )
        })
}

/// `limit`: 1 to 100, 20 when absent.
pub fn limit(value: Option<i64>) -> Result<i64, ApiError> {
    match value {
        None => Ok(20),
        Some(limit @ 1..=100) => Ok(limit),
        Some(other) => Err(ApiError::BadRequest(format!(
            "limit must be from 1 to 100, not {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = encode(&(42i64, "tea"));
        let decoded: (i64, String) = decode(&cursor).expect("decodes");
        assert_eq!(decoded, (42, "tea".to_owned()));
        assert!(decode::<(i64, String)>("not-a-cursor!").is_err());
        assert!(limit(Some(0)).is_err() && limit(Some(101)).is_err());
        assert_eq!(limit(None).expect("default"), 20);
    }
}
