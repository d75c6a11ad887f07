//! `GET /projections`: where every subscription stands.

use actix_web::{HttpResponse, http::Method, web};
use http_kit::{Problem, resource_for};
use read_models::names;
use serde::Serialize;

use super::{Consistent, min_position};
use crate::{AppState, error::ApiError};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Projections {
    /// The position of the newest event in the log.
    pub head_position: i64,
    pub items: Vec<ProjectionStatus>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectionStatus {
    pub name: String,
    /// Which partition of the subscription this item is (0 to `partitions` - 1).
    pub partition: i32,
    /// How many partitions the subscription is split into.
    pub partitions: i32,
    /// The projector process that holds this partition now (host:pid:id), or null while none
    /// does (between owners, or no projector running).
    pub owner: Option<String>,
    /// The last position applied.
    pub position: i64,
    /// Events in the log not applied yet (a count, not a difference of positions).
    pub lag_events: i64,
    /// `live` (caught up), `catching_up`, or `failing` (see `last_error`; it retries).
    pub status: String,
    pub last_error: Option<String>,
    /// Saga events of this subscription (all its partitions) parked after failing repeatedly;
    /// `projector retry-dead-letters` retries them.
    pub dead_letters: i64,
}

#[derive(sqlx::FromRow)]
struct StatusRow {
    name: String,
    partition: i32,
    partitions: i32,
    position: i64,
    lag_events: i64,
    last_error: Option<String>,
    owner: Option<String>,
    dead_letters: i64,
}

/// Where every projection and saga subscription stands
///
/// One item per partition of each subscription, with the projector process that holds it.
/// With `min_position`, answers once every read model has reached it.
#[utoipa::path(get, path = "/projections", tag = "operations",
    params(Consistent),
    responses(
        (status = 200, description = "Each subscription's position and lag", body = Projections),
        (status = 400, description = "A malformed query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "PostgreSQL is down, or min_position was not reached in time", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds"))),
    ))]
pub async fn projections(
    state: web::Data<AppState>,
    query: web::Query<Consistent>,
) -> Result<HttpResponse, ApiError> {
    if let Some(wanted) = min_position(query.min_position)? {
        // Together, so that the whole wait stays within one timeout.
        let waits = names::READ_MODELS.map(|name| state.consistency.reach(name, Some(wanted)));
        futures_util::future::try_join_all(waits).await?;
    }
    let head_position: i64 =
        sqlx::query_scalar("SELECT head_position FROM read_model.event_log_head")
            .fetch_one(&state.pool)
            .await?;
    let rows: Vec<StatusRow> = sqlx::query_as(
        "SELECT name, partition, partitions, position, lag_events, last_error, owner, dead_letters
         FROM read_model.projection_status ORDER BY name, partition",
    )
    .fetch_all(&state.pool)
    .await?;
    let items = rows
        .into_iter()
        .map(|row| {
            let StatusRow {
                name,
                partition,
                partitions,
                position,
                lag_events,
                last_error,
                owner,
                dead_letters,
            } = row;
            let status = match (&last_error, lag_events) {
                (Some(_), _) => "failing",
                (None, 0) => "live",
                (None, _) => "catching_up",
            };
            ProjectionStatus {
                name,
                partition,
                partitions,
                owner,
                position,
                lag_events,
                status: status.to_owned(),
                last_error,
                dead_letters,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(Projections {
        head_position,
        items,
    }))
}

pub fn router(cfg: &mut web::ServiceConfig) {
    cfg.service(resource_for("/projections", Method::GET, projections));
}
