//! The command-api's own metrics, beside the HTTP ones every service records: each command's
//! outcome, idempotent replays, and the events appended by type. Events are counted only once
//! their transaction has committed, so a command that fails or races counts nothing twice.

use actix_web::{
    Error,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::StatusCode,
    middleware::Next,
};
use domain::{Aggregate, DomainError, DomainEvent};
use event_store::{CommandError, StoreError};
use metrics::Unit;

use crate::error::ApiError;

pub const COMMANDS: &str = "command_api_commands_total";
pub const IDEMPOTENT_REPLAYS: &str = "command_api_idempotent_replays_total";
pub const EVENTS_APPENDED: &str = "command_api_events_appended_total";

/// Gives the command-api's metrics their `# HELP` lines (after the recorder is installed).
pub fn describe() {
    metrics::describe_counter!(
        COMMANDS,
        Unit::Count,
        "Commands handled, by route and outcome: accepted, replayed (Idempotent-Replayed), \
         unauthorized, malformed, invalid, not_found, rule_violated, version_mismatch, conflict, \
         idempotency_key_reused, outcome_unknown, unavailable, overloaded (MAX_SAGA_LAG_EVENTS), error"
    );
    metrics::describe_counter!(
        IDEMPOTENT_REPLAYS,
        Unit::Count,
        "Commands answered from an earlier request's stored response (same Idempotency-Key and body), by route"
    );
    metrics::describe_gauge!(
        crate::admission::SAGA_BACKLOG,
        Unit::Count,
        "Events the saga has yet to handle, counted up to MAX_SAGA_LAG_EVENTS + 1 (only with that bound set)"
    );
    metrics::describe_counter!(
        EVENTS_APPENDED,
        Unit::Count,
        "Events the command-api appended and committed, by stream_type and type (the saga's are not included)"
    );
}

/// Counts the committed events of one command.
pub fn events_appended<A: Aggregate>(events: &[A::Event]) {
    for event in events {
        metrics::counter!(EVENTS_APPENDED, "stream_type" => A::STREAM_TYPE.as_str(), "type" => event.event_type())
            .increment(1);
    }
}

/// Middleware around every command endpoint (outside the token check, so refusals count too):
/// records the command's outcome once its response is known.
pub async fn observe_commands(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.call(req).await?.map_into_boxed_body();
    let replayed = response.headers().contains_key("idempotent-replayed");
    let outcome = match response.response().error() {
        _ if replayed => "replayed",
        Some(error) => match error.as_error::<ApiError>() {
            Some(error) => error_outcome(error),
            None => status_outcome(response.status()),
        },
        None => status_outcome(response.status()),
    };
    if replayed {
        metrics::counter!(IDEMPOTENT_REPLAYS, "route" => route.clone()).increment(1);
    }
    metrics::counter!(COMMANDS, "route" => route, "outcome" => outcome).increment(1);
    Ok(response)
}

fn status_outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=299 => "accepted",
        401 => "unauthorized",
        400 | 413 | 415 => "malformed",
        404 => "not_found",
        422 => "invalid",
        503 => "unavailable",
        _ => "error",
    }
}

fn error_outcome(error: &ApiError) -> &'static str {
    match error {
        ApiError::BadRequest(_) | ApiError::UnsupportedMediaType => "malformed",
        ApiError::Command(error) => match error {
            CommandError::Rejected(DomainError::Invalid(_)) => "invalid",
            CommandError::Rejected(DomainError::RuleViolated(_)) => "rule_violated",
            CommandError::Rejected(DomainError::NotFound(_)) => "not_found",
            CommandError::VersionMismatch { .. } => "version_mismatch",
            CommandError::Conflict(_) => "conflict",
            CommandError::IdempotencyKeyReused => "idempotency_key_reused",
            CommandError::OutcomeUnknown => "outcome_unknown",
            CommandError::Store(error) => store_outcome(error),
        },
        ApiError::Store(error) => store_outcome(error),
        ApiError::Overloaded { .. } => "overloaded",
    }
}

fn store_outcome(error: &StoreError) -> &'static str {
    match error {
        StoreError::VersionConflict { .. } | StoreError::IdempotencyKeyTaken => "conflict",
        error if error.is_transient() => "unavailable",
        _ => "error",
    }
}
