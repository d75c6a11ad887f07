//! Time travel: `as_of` on the single-resource lookups. Answered from the `document_versions`
//! read model (every version of every document, with the position and time each was valid
//! from), never from the log: the query-api cannot read it.
//!
//! `as_of=<position>` answers the version that was current once every event at or below that
//! position had happened: the request waits (like `min_position`) until the read model has
//! reached the position, so the answer is never a half-applied past. `as_of=<RFC 3339 time>`
//! answers the newest version recorded at or before that time among the events the read model
//! has applied (add `min_position` to be sure a recent write is among them).

use chrono::{DateTime, Utc};
use read_models::{DocumentKind, names};
use uuid::Uuid;

use crate::{AppState, error::ApiError};

/// A point in the log's past: a position, or a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Position(i64),
    Time(DateTime<Utc>),
}

impl AsOf {
    /// Digits are a position; anything else must be an RFC 3339 time.
    pub fn parse(value: &str) -> Result<Self, ApiError> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
            return value.parse().map(Self::Position).map_err(|_| {
                ApiError::BadRequest(format!("as_of {value} is not a position (too large)"))
            });
        }
        DateTime::parse_from_rfc3339(value)
            .map(|time| Self::Time(time.with_timezone(&Utc)))
            .map_err(|_| {
                ApiError::BadRequest(format!(
                    "as_of must be a position (digits) or an RFC 3339 time such as 2026-12-01T12:00:00Z; got {value:?}"
                ))
            })
    }
}

/// The document of `kind` with this id as it was at `as_of`, and the position the answer
/// reflects: the `as_of` position itself, or for a time the position of the event that made
/// the version answered. 404 when the document did not exist yet (or never).
pub async fn document_as_of(
    state: &AppState,
    kind: DocumentKind,
    id: Uuid,
    as_of: AsOf,
    min_position: Option<i64>,
) -> Result<(serde_json::Value, i64), ApiError> {
    let found: Option<(serde_json::Value, i64)> = match as_of {
        AsOf::Position(position) => {
            let wanted = min_position.map_or(position, |min| min.max(position));
            state
                .consistency
                .reach(names::DOCUMENT_VERSIONS, Some(wanted))
                .await
                .map_err(|error| match error {
                    // The position beyond the newest event is the as_of one: say so.
                    ApiError::BadRequest(_) if wanted == position => ApiError::BadRequest(format!(
                        "as_of {position} is beyond the newest event: pass a position a command answered, or a time"
                    )),
                    other => other,
                })?;
            sqlx::query_as(
                "SELECT document, $3::bigint FROM read_model.document_versions
                 WHERE kind = $1 AND id = $2 AND valid_from_position <= $3
                 ORDER BY version DESC LIMIT 1",
            )
            .bind(kind.as_str())
            .bind(id)
            .bind(position)
            .fetch_optional(&state.pool)
            .await?
        }
        AsOf::Time(time) => {
            // Without min_position there is nothing to wait for, and the position is not needed.
            if min_position.is_some() {
                state
                    .consistency
                    .reach(names::DOCUMENT_VERSIONS, min_position)
                    .await?;
            }
            sqlx::query_as(
                "SELECT document, valid_from_position FROM read_model.document_versions
                 WHERE kind = $1 AND id = $2 AND valid_from <= $3
                 ORDER BY version DESC LIMIT 1",
            )
            .bind(kind.as_str())
            .bind(id)
            .bind(time)
            .fetch_optional(&state.pool)
            .await?
        }
    };
    found.ok_or_else(|| {
        ApiError::NotFound(match as_of {
            AsOf::Position(position) => format!("no {kind} had this id at position {position}"),
            AsOf::Time(time) => format!("no {kind} had this id at {}", time.to_rfc3339()),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_a_position_and_rfc3339_a_time() {
        assert_eq!(AsOf::parse("42").ok(), Some(AsOf::Position(42)));
        assert!(matches!(
            AsOf::parse("2026-12-01T12:00:00+01:00"),
            Ok(AsOf::Time(time)) if time.to_rfc3339() == "2026-12-01T11:00:00+00:00"
        ));
        for bad in [
            "",
            "-1",
            "yesterday",
            "2026-12-01",
            "99999999999999999999",
            "1.5",
        ] {
            assert!(AsOf::parse(bad).is_err(), "{bad} should be refused");
        }
    }
}
