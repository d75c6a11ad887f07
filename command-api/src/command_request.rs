//! What every command request carries besides its body (`X-Request-Id`, `If-Match`,
//! `Idempotency-Key`), and how a command's outcome becomes the HTTP response, whether it was
//! just produced or replayed from an idempotency record.

use actix_web::{HttpMessage, HttpRequest, HttpResponse, http::StatusCode, web};
use std::sync::{Mutex, PoisonError};

use domain::{Aggregate, DomainError, order::OrderStatus};
use event_store::{
    CommandError, CommandOptions, CommandReply, Executed, IdempotencyRequest, Metadata,
    StoredResponse,
};
use http_kit::RequestId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{AppState, error::ApiError};

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 200;

/// The answer to every successful command.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandAccepted {
    /// The aggregate's id.
    pub id: Uuid,
    /// The aggregate's version after the command (its first event is version 1).
    pub version: i64,
    /// The global position of the last event appended; pass it as `min_position` to the
    /// query-api to read your own write.
    pub position: i64,
    /// Orders only: `pending` until the saga decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OrderStatusAfterCommand>,
}

/// An order's status as a command leaves it: placed orders are `pending` until the saga
/// decides (read the decision from the query-api).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = OrderStatus)]
pub enum OrderStatusAfterCommand {
    Pending,
    Cancelled,
    Shipped,
}

impl OrderStatusAfterCommand {
    /// The status of the order a command just changed; a command never leaves an order
    /// approved or rejected (only the saga does).
    pub fn of(status: OrderStatus) -> Option<Self> {
        match status {
            OrderStatus::Pending => Some(Self::Pending),
            OrderStatus::Cancelled => Some(Self::Cancelled),
            OrderStatus::Shipped => Some(Self::Shipped),
            OrderStatus::Approved | OrderStatus::Rejected => None,
        }
    }
}

/// Builds the command options for this request; `body` identifies it for idempotency.
pub fn command_options(
    req: &HttpRequest,
    state: &AppState,
    body: &impl Serialize,
) -> Result<CommandOptions, ApiError> {
    let correlation_id = req.extensions().get::<RequestId>().map(|id| id.0.clone());
    let idempotency_key = idempotency_key(req)?;
    let idempotency = idempotency_key.clone().map(|key| IdempotencyRequest {
        key,
        fingerprint: serde_json::json!({
            "method": req.method().as_str(),
            "path": req.path(),
            "body": serde_json::to_value(body).unwrap_or_default(),
        }),
        retention: state.idempotency_retention,
    });
    Ok(CommandOptions {
        metadata: Metadata {
            correlation_id,
            causation_id: None,
            idempotency_key,
        },
        expected_version: if_match_version(req)?,
        idempotency,
        claims: Vec::new(),
        snapshot_every: state.snapshot_every,
        forget_personal_data_of: None,
        new_stream: false,
    })
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into()))?
        .trim();
    if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters"
        )));
    }
    Ok(Some(key.to_owned()))
}

/// `If-Match: "7"` (an ETag as this API sends it; `W/"7"` and `7` are accepted too; `*` means
/// any version).
fn if_match_version(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(value) = req.headers().get(actix_web::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = value.to_str().unwrap_or_default().trim();
    if raw == "*" {
        return Ok(None);
    }
    let unquoted = raw.trim_start_matches("W/").trim_matches('"');
    unquoted
        .parse::<i64>()
        .ok()
        .filter(|version| *version >= 0)
        .map(Some)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "If-Match must be a version ETag such as \"3\", not {raw:?}"
            ))
        })
}

/// The stored form of a successful command's response.
pub fn accepted<A: Aggregate>(
    id: Uuid,
    executed: &Executed<A>,
    status: StatusCode,
    order_status: Option<OrderStatus>,
    location: Option<String>,
) -> StoredResponse {
    let body = CommandAccepted {
        id,
        version: executed.loaded.version,
        position: executed.last_position.unwrap_or_default(),
        status: order_status.and_then(OrderStatusAfterCommand::of),
    };
    StoredResponse {
        status: status.as_u16(),
        body: serde_json::to_value(body).unwrap_or_default(),
        location,
    }
}

/// `event_store::run_command`, counting the events it appended once they are committed (a
/// replay appended none).
pub async fn run_command<A, D, R>(
    state: &AppState,
    stream_id: Uuid,
    options: &CommandOptions,
    decide: D,
    respond: R,
) -> Result<CommandReply, CommandError>
where
    A: Aggregate,
    D: Fn(&A) -> Result<Vec<A::Event>, DomainError>,
    R: Fn(&Executed<A>) -> StoredResponse,
{
    // The last attempt that got as far as responding is the one that committed.
    let appended = Mutex::new(Vec::new());
    let reply =
        event_store::run_command::<A, _, _>(&state.pool, stream_id, options, decide, |executed| {
            *appended.lock().unwrap_or_else(PoisonError::into_inner) = executed.events.clone();
            respond(executed)
        })
        .await?;
    if !reply.replayed {
        let appended = appended
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        if !appended.is_empty() {
            state.announcer.announce();
        }
        crate::metrics::events_appended::<A>(&appended);
    }
    Ok(reply)
}

/// Turns a command's reply into the HTTP response: status, body, `ETag`, `Location`, and
/// `Idempotent-Replayed` when it comes from an earlier request with the same key.
pub fn respond(reply: CommandReply) -> HttpResponse {
    let CommandReply { response, replayed } = reply;
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
    let mut builder = HttpResponse::build(status);
    if let Some(version) = response
        .body
        .get("version")
        .and_then(serde_json::Value::as_i64)
    {
        builder.insert_header((actix_web::http::header::ETAG, format!("\"{version}\"")));
    }
    if let Some(location) = response.location {
        builder.insert_header((actix_web::http::header::LOCATION, location));
    }
    if replayed {
        builder.insert_header(("Idempotent-Replayed", "true"));
    }
    builder.json(response.body)
}

/// Shorthand for handlers' path ids.
pub type IdPath = web::Path<Uuid>;
