//! The JetStream stream the relay publishes to: its settings, created or updated at start, and
//! how far it already holds the log.
//!
//! | setting | value | why |
//! |---|---|---|
//! | subjects | `<prefix>.events.>` | every integration event, and nothing else |
//! | retention | limits, discard old | a log: consumers come and go, messages stay until too old |
//! | max age | `NATS_STREAM_MAX_AGE_HOURS` (7 days) | how long a consumer may be away and still catch up |
//! | duplicate window | `NATS_DUPLICATE_WINDOW_SECS` (2 min) | a republished message (same `Nats-Msg-Id`) within it is dropped |
//! | storage | file | survives a broker restart |
//! | replicas | `NATS_STREAM_REPLICAS` (1) | 3 on a cluster |
//! | deny delete | yes | nobody deletes single messages out of the log (purging stays possible) |

use std::time::Duration;

use async_nats::jetstream::{
    self,
    stream::{Config, DiscardPolicy, LastRawMessageErrorKind, RetentionPolicy, StorageType},
};
use integration_events::{headers, subjects};

/// Where and how the relay publishes.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub name: String,
    pub subject_prefix: String,
    /// Zero keeps messages without an age limit.
    pub max_age: Duration,
    pub duplicate_window: Duration,
    pub replicas: usize,
}

impl StreamSettings {
    pub fn config(&self) -> Config {
        Config {
            name: self.name.clone(),
            description: Some(
                "cqrs-shop integration events: one message per public event, in log order (docs/integration.md)"
                    .to_owned(),
            ),
            subjects: vec![subjects::all(&self.subject_prefix)],
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::Old,
            max_age: self.max_age,
            max_messages: -1,
            max_bytes: -1,
            duplicate_window: self.duplicate_window,
            storage: StorageType::File,
            num_replicas: self.replicas,
            deny_delete: true,
            ..Config::default()
        }
    }
}

/// Checks a stream name as JetStream does: no spaces, dots, wildcards or path separators.
pub fn check_stream_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '.' | '*' | '>' | '/' | '\\'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a usable JetStream stream name: use letters, digits, '-' and '_' (e.g. SHOP_EVENTS)"
        ))
    }
}

/// Creates the stream or brings an existing one to `settings`, and answers the position (the
/// `Nats-Msg-Id`) of the last event it holds: `None` when it holds none, or when the last one
/// has aged out.
pub async fn prepare(
    jetstream: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<Option<i64>, String> {
    let info = jetstream
        .create_or_update_stream(settings.config())
        .await
        .map_err(|error| {
            format!(
                "cannot create or update the stream {}: {error}",
                settings.name
            )
        })?;
    if info.state.messages == 0 {
        return Ok(None);
    }
    let stream = jetstream
        .get_stream_no_info(&settings.name)
        .await
        .map_err(|error| format!("cannot open the stream {}: {error}", settings.name))?;
    match stream.get_raw_message(info.state.last_sequence).await {
        Ok(message) => {
            let id = message
                .headers
                .get(headers::MESSAGE_ID)
                .map(|value| value.as_str().to_owned())
                .unwrap_or_default();
            id.parse().map(Some).map_err(|_| {
                format!(
                    "the last message of the stream {} (sequence {}) has the Nats-Msg-Id {id:?}, not an event position: \
                     something else publishes to {}; give this system a stream and subject prefix of its own \
                     (NATS_STREAM, NATS_SUBJECT_PREFIX)",
                    settings.name,
                    info.state.last_sequence,
                    subjects::all(&settings.subject_prefix)
                )
            })
        }
        Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(error) => Err(format!(
            "cannot read the last message of the stream {}: {error}",
            settings.name
        )),
    }
}
