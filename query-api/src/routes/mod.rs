//! One module per resource; `health` holds the operational endpoints.

pub mod customers;
pub mod dashboard;
pub mod feed;
pub mod health;
pub mod orders;
pub mod products;
pub mod projections;

#[cfg(test)]
mod document_shapes;

use actix_web::HttpResponse;
use read_models::{DocumentKind, names};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    AppState,
    as_of::{AsOf, document_as_of},
    error::ApiError,
};

pub const POSITION_HEADER: &str = "X-Position";

/// `min_position`, taken by every GET.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Consistent {
    /// Wait (up to 5 s, then 503) until the read model has applied every event at or below
    /// this position: pass the `position` a command answered to read your own write. While
    /// as many requests as allowed already wait (`MAX_CONSISTENCY_WAITS`), one that would wait
    /// gets 503 at once.
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

/// The query of a single-resource lookup: `min_position`, and `as_of` for time travel.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PointInTime {
    /// Wait (up to 5 s, then 503) until the read model has applied every event at or below
    /// this position: pass the `position` a command answered to read your own write.
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
    /// Time travel: answer the state as it was at this point of the log, either a position
    /// (digits: the state once every event at or below it had happened; waits until the
    /// temporal read model has reached it, a position beyond the newest event is a 400) or an
    /// RFC 3339 time (the newest version recorded at or before it). 404 when the resource did
    /// not exist yet. `X-Position` then names the position the answer reflects: the position
    /// asked for, or for a time the position of the event that made the version answered.
    #[param(value_type = Option<String>, example = "2026-12-01T12:00:00Z",
        pattern = r"^([0-9]{1,19}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))$")]
    pub as_of: Option<String>,
}

/// Checks a `min_position` value's range.
pub fn min_position(value: Option<i64>) -> Result<Option<i64>, ApiError> {
    match value {
        Some(negative) if negative < 0 => Err(ApiError::BadRequest(
            "min_position must not be negative".into(),
        )),
        other => Ok(other),
    }
}

/// A 200 with the body and `X-Position`: the position the data reflects.
pub fn with_position(body: &impl Serialize, position: i64) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((POSITION_HEADER, position.to_string()))
        .json(body)
}

/// A single-resource lookup from Redis: waits for `min_position`, then answers the stored
/// document of `kind` with this id, as stored, or 404.
pub async fn lookup(
    state: &AppState,
    kind: DocumentKind,
    id: Uuid,
    query: &PointInTime,
) -> Result<HttpResponse, ApiError> {
    if let Some(as_of) = query.as_of.as_deref() {
        let as_of = AsOf::parse(as_of)?;
        let wanted = min_position(query.min_position)?;
        let (document, position) = document_as_of(state, kind, id, as_of, wanted).await?;
        return Ok(with_position(&document, position));
    }
    // The lookup itself reports the position it reflects, so only a wait needs the checkpoint.
    if let Some(wanted) = min_position(query.min_position)? {
        state
            .consistency
            .reach(names::LOOKUPS, Some(wanted))
            .await?;
    }
    match state.lookups.find(kind, id).await? {
        (Some(document), position) => Ok(HttpResponse::Ok()
            .insert_header((POSITION_HEADER, position.to_string()))
            .content_type(mime::APPLICATION_JSON)
            .body(document)),
        (None, _) => Err(ApiError::NotFound(format!("no {kind} has this id"))),
    }
}
