//! One module per resource; `health` holds the operational endpoints.

pub mod customers;
pub mod dashboard;
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

use crate::{AppState, error::ApiError};

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
    query: &Consistent,
) -> Result<HttpResponse, ApiError> {
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
