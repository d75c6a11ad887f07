//! The relay: a subscription that publishes every public event of the log to NATS JetStream,
//! as an integration event (`integration_events`), in log order, and moves its checkpoint only
//! once the broker has acknowledged every publish of the batch. Enabled by `NATS_URL`; without
//! it the system runs with no broker.
//!
//! Nothing is lost: an event is behind the checkpoint only once JetStream has stored it. Nothing
//! is stored twice, although a crash between a publish and its checkpoint publishes again:
//! - every message carries its position as `Nats-Msg-Id`, which JetStream de-duplicates within
//!   the stream's duplicate window;
//! - every message also names the id of the message before it
//!   (`Nats-Expected-Last-Msg-Id`), so JetStream stores it only right after that one: the
//!   stream holds the events in log order, with no gap and no copy, even when a publish fails
//!   half-way through a batch and later ones got through;
//! - hence the stream's last message says how far the log was published, and after a failure or
//!   a restart the relay skips what the stream already holds, however long ago it was published
//!   (the duplicate window only matters when that last message has aged out).
//!
//! This holds as long as the stream is written by this system's relay alone (its own
//! `NATS_STREAM` and `NATS_SUBJECT_PREFIX`); a stream whose last message is not an event of this
//! log is refused.

mod public;
mod stream;

use std::{
    collections::VecDeque,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use async_nats::{HeaderMap, connection::State, jetstream};
use domain::StreamType;
use event_store::{Batch, PartitionKey, checkpoints, checkpoints::Lease};
use integration_events::{DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX, Envelope, headers, subjects};
use sqlx::PgPool;

pub use stream::StreamSettings;

use crate::{ProjectionError, subscription::Subscription};

/// The relay's name in `projector.checkpoints` and `/projections`.
pub const NAME: &str = "nats_relay";

/// Publishes in flight before the relay waits for the oldest acknowledgement.
const PUBLISHES_IN_FLIGHT: usize = 256;

/// How long a publish waits for JetStream's acknowledgement (and a stream request for its answer).
const BROKER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, clap::Args)]
pub struct RelayArgs {
    /// NATS server to publish the integration events to (e.g. nats://127.0.0.1:4222), with
    /// JetStream enabled. Unset or empty: no relay.
    #[arg(long, env = "NATS_URL")]
    pub nats_url: Option<String>,
    /// The JetStream stream the relay creates (or updates) at start and publishes to.
    #[arg(long, env = "NATS_STREAM", default_value = DEFAULT_STREAM)]
    pub nats_stream: String,
    /// The first token(s) of every subject: `<prefix>.events.<aggregate>.<event>`.
    #[arg(long, env = "NATS_SUBJECT_PREFIX", default_value = DEFAULT_SUBJECT_PREFIX)]
    pub nats_subject_prefix: String,
    /// How long the stream keeps an event, in hours (0: no age limit).
    #[arg(long, env = "NATS_STREAM_MAX_AGE_HOURS", default_value_t = 168)]
    pub nats_stream_max_age_hours: u64,
    /// Within this many seconds JetStream drops a message whose `Nats-Msg-Id` it already holds.
    #[arg(long, env = "NATS_DUPLICATE_WINDOW_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub nats_duplicate_window_secs: u64,
    /// Copies of the stream on a NATS cluster (1 on a single server).
    #[arg(long, env = "NATS_STREAM_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_stream_replicas: u8,
}

impl RelayArgs {
    /// The NATS URL, when the relay is enabled.
    pub fn url(&self) -> Option<&str> {
        self.nats_url
            .as_deref()
            .filter(|url| !url.trim().is_empty())
    }

    pub fn stream_settings(&self) -> anyhow::Result<StreamSettings> {
        stream::check_stream_name(&self.nats_stream).map_err(anyhow::Error::msg)?;
        subjects::check_prefix(&self.nats_subject_prefix).map_err(anyhow::Error::msg)?;
        let max_age = Duration::from_secs(self.nats_stream_max_age_hours.saturating_mul(3_600));
        let duplicate_window = Duration::from_secs(self.nats_duplicate_window_secs);
        if !max_age.is_zero() && duplicate_window > max_age {
            anyhow::bail!(
                "NATS_DUPLICATE_WINDOW_SECS ({}) is longer than NATS_STREAM_MAX_AGE_HOURS ({} h): shorten the window",
                self.nats_duplicate_window_secs,
                self.nats_stream_max_age_hours
            );
        }
        Ok(StreamSettings {
            name: self.nats_stream.clone(),
            subject_prefix: self.nats_subject_prefix.clone(),
            max_age,
            duplicate_window,
            replicas: usize::from(self.nats_stream_replicas),
        })
    }
}

pub struct NatsRelay {
    pool: PgPool,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    settings: StreamSettings,
    url: String,
    /// What the relay knows of the stream: `None` until the stream has been set up and read
    /// (at start, and again after any broker failure, since the stream may then hold more or
    /// less than the relay saw acknowledged).
    stream_head: tokio::sync::Mutex<Option<StreamHead>>,
    /// When the lag gauge was last refreshed.
    lag_measured: Mutex<Option<Instant>>,
}

#[derive(Debug, Clone, Copy)]
struct StreamHead {
    /// The position of the last event the stream holds (`None`: none, or it aged out).
    last_published: Option<i64>,
}

impl NatsRelay {
    /// The relay, when `args` enable it. Connecting goes on in the background (the projector
    /// starts, and its read models advance, whether the broker is up or not); until NATS
    /// answers, the relay's batches fail and `/projections` shows it failing.
    pub async fn connect(args: &RelayArgs, pool: PgPool) -> anyhow::Result<Option<Self>> {
        let Some(url) = args.url() else {
            tracing::info!("NATS_URL is not set: the relay to NATS JetStream is off");
            return Ok(None);
        };
        let settings = args.stream_settings()?;
        let shown = redact(url);
        let events_url = shown.clone();
        let client = async_nats::ConnectOptions::new()
            .name("cqrs-shop projector (relay)")
            .retry_on_initial_connect()
            .connection_timeout(BROKER_TIMEOUT)
            .event_callback(move |event| {
                let url = events_url.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!(%url, "relay connected to NATS")
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!(%url, "relay lost its NATS connection; reconnecting")
                        }
                        other => tracing::debug!(%url, event = %other, "NATS connection event"),
                    }
                }
            })
            .connect(url)
            .await
            .with_context(|| format!("NATS_URL is not a usable NATS URL: {shown}"))?;
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(BROKER_TIMEOUT)
            .build(client.clone());
        describe_metrics();
        tracing::info!(url = %shown, stream = %settings.name, subjects = %subjects::all(&settings.subject_prefix), "relay to NATS JetStream enabled");
        Ok(Some(Self {
            pool,
            client,
            jetstream,
            settings,
            url: shown,
            stream_head: tokio::sync::Mutex::new(None),
            lag_measured: Mutex::new(None),
        }))
    }

    fn broker_error(&self, error: impl std::fmt::Display) -> ProjectionError {
        metrics::counter!("relay_broker_errors_total").increment(1);
        ProjectionError::Broker(format!("{error} ({})", self.url))
    }

    /// Sets the stream up and reads how far it holds the log, unless already known.
    async fn stream_head(
        &self,
        known: &mut Option<StreamHead>,
    ) -> Result<StreamHead, ProjectionError> {
        if let Some(head) = *known {
            return Ok(head);
        }
        let last_published = stream::prepare(&self.jetstream, &self.settings)
            .await
            .map_err(|error| self.broker_error(error))?;
        if let Some(position) = last_published
            && event_store::read_positions(&mut *self.pool.acquire().await?, &[position])
                .await?
                .is_empty()
        {
            return Err(ProjectionError::Corrupt(format!(
                "the last message of the stream {} is event {position}, which this event log does not hold: \
                 another system publishes to it; give each system its own NATS_STREAM and NATS_SUBJECT_PREFIX",
                self.settings.name
            )));
        }
        let head = StreamHead { last_published };
        *known = Some(head);
        Ok(head)
    }

    /// Publishes `envelopes` in order, each naming the one before it, and waits until JetStream
    /// has acknowledged them all.
    async fn publish(
        &self,
        envelopes: &[Envelope],
        mut previous: Option<i64>,
    ) -> Result<(), ProjectionError> {
        let mut in_flight = VecDeque::with_capacity(PUBLISHES_IN_FLIGHT);
        for envelope in envelopes {
            let payload = serde_json::to_vec(envelope)?;
            let mut header_map = HeaderMap::new();
            for (name, value) in headers::of(envelope) {
                header_map.insert(name, value.as_str());
            }
            let mut message = jetstream::message::PublishMessage::build()
                .payload(payload.into())
                .headers(header_map);
            if let Some(previous) = previous {
                message = message.expected_last_message_id(previous.to_string());
            }
            let subject = subjects::of_type(&self.settings.subject_prefix, &envelope.event_type);
            let ack = self
                .jetstream
                .send_publish(subject, message)
                .await
                .map_err(|error| self.broker_error(format!("publish: {error}")))?;
            in_flight.push_back((ack, envelope));
            if in_flight.len() >= PUBLISHES_IN_FLIGHT
                && let Some((ack, envelope)) = in_flight.pop_front()
            {
                self.acknowledged(ack, envelope).await?;
            }
            previous = envelope.id.parse().ok();
        }
        while let Some((ack, envelope)) = in_flight.pop_front() {
            self.acknowledged(ack, envelope).await?;
        }
        Ok(())
    }

    async fn acknowledged(
        &self,
        ack: jetstream::context::PublishAckFuture,
        envelope: &Envelope,
    ) -> Result<(), ProjectionError> {
        let ack = ack.await.map_err(|error| {
            self.broker_error(format!(
                "event {} ({}) was not acknowledged: {error}",
                envelope.id, envelope.event_type
            ))
        })?;
        if ack.duplicate {
            metrics::counter!("relay_duplicates_dropped_total").increment(1);
        } else {
            metrics::counter!("relay_events_published_total", "type" => envelope.event_type.clone())
                .increment(1);
        }
        Ok(())
    }

    /// Moves the checkpoint from `from` to `to` under the lease; false when it is no longer
    /// at `from` (or the lease was taken over).
    async fn advance(&self, lease: &Lease, from: i64, to: i64) -> Result<bool, ProjectionError> {
        Ok(checkpoints::advance_fenced(&self.pool, lease, from, to).await?)
    }

    /// Refreshes `relay_lag_events` at most once a second (it counts rows).
    async fn measure_lag(&self, position: i64) {
        {
            let Ok(mut measured) = self.lag_measured.lock() else {
                return;
            };
            if measured.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
                return;
            }
            *measured = Some(Instant::now());
        }
        if let Ok(lag) = event_store::count_events_after(&self.pool, position).await {
            metrics::gauge!("relay_lag_events").set(lag as f64);
        }
    }
}

/// One partition: the order every message names (the one before it) runs through the whole
/// stream, so one process publishes at a time.
impl Subscription for NatsRelay {
    fn name(&self) -> &'static str {
        NAME
    }

    fn stream_types(&self) -> Vec<StreamType> {
        Vec::new()
    }

    fn partition_key(&self) -> PartitionKey {
        PartitionKey::Stream
    }

    fn fixed_partitions(&self) -> Option<i32> {
        Some(1)
    }

    async fn position(&self, lease: &Lease) -> Result<i64, ProjectionError> {
        // A new subscription publishes the log from its beginning.
        let position = checkpoints::position(&self.pool, NAME, lease.partition)
            .await?
            .unwrap_or(0);
        self.measure_lag(position).await;
        Ok(position)
    }

    async fn apply(
        &self,
        lease: &Lease,
        from: i64,
        batch: &Batch,
    ) -> Result<bool, ProjectionError> {
        let events = &batch.events;
        if events.is_empty() {
            return self.advance(lease, from, batch.read_to).await;
        }
        if self.client.connection_state() != State::Connected {
            return Err(self.broker_error("not connected; reconnecting"));
        }
        let envelopes = public::envelopes(&self.pool, events).await?;
        let not_public = events.len() - envelopes.len();
        // One batch at a time: the stream head is read and moved under this lock.
        let mut known = self.stream_head.lock().await;
        let head = self.stream_head(&mut known).await?;
        // What the stream already holds was published before a crash or a failed batch.
        let pending: Vec<Envelope> = envelopes
            .into_iter()
            .filter(|envelope| {
                head.last_published
                    .is_none_or(|published| envelope.id.parse().is_ok_and(|p: i64| p > published))
            })
            .collect();
        if let Err(error) = self.publish(&pending, head.last_published).await {
            // Some of the batch may be stored: read the stream again before the next attempt.
            *known = None;
            return Err(error);
        }
        if let Some(published) = pending.last().and_then(|e| e.id.parse().ok()) {
            *known = Some(StreamHead {
                last_published: Some(published),
            });
        }
        drop(known);
        let moved = self.advance(lease, from, batch.read_to).await?;
        if moved {
            metrics::counter!("relay_events_not_public_total").increment(not_public as u64);
        }
        Ok(moved)
    }
}

/// HELP lines for the relay's metrics.
fn describe_metrics() {
    metrics::describe_counter!(
        "relay_events_published_total",
        "Integration events JetStream stored, by type"
    );
    metrics::describe_counter!(
        "relay_duplicates_dropped_total",
        "Publishes JetStream acknowledged as duplicates of a stored message (a republish after a failure)"
    );
    metrics::describe_counter!(
        "relay_events_not_public_total",
        "Events of the log the relay passed over because they are not public (the saga's steps)"
    );
    metrics::describe_counter!(
        "relay_broker_errors_total",
        "Batches the relay could not publish: NATS down, unreachable, slow or refusing"
    );
    metrics::describe_gauge!(
        "relay_lag_events",
        metrics::Unit::Count,
        "Events in the log after the relay's checkpoint (not yet published)"
    );
    // Shown from the start (at zero), not only once something happened.
    for counter in [
        "relay_duplicates_dropped_total",
        "relay_events_not_public_total",
        "relay_broker_errors_total",
    ] {
        metrics::counter!(counter).increment(0);
    }
}

/// The URL without its password, for logs and errors.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        relay: RelayArgs,
    }

    fn parse(args: &[&str]) -> RelayArgs {
        Cli::try_parse_from(std::iter::once("relay").chain(args.iter().copied()))
            .expect("parses")
            .relay
    }

    // Every value is given: the settings also read the environment (NATS_URL, ...), which a
    // developer's shell or scripts/test may set. The defaults are checked on a real stream in
    // tests/relay.
    #[test]
    fn the_relay_is_off_without_a_url_and_checks_its_settings() {
        assert_eq!(parse(&["--nats-url", ""]).url(), None);
        assert_eq!(parse(&["--nats-url", " "]).url(), None);
        let valid = [
            "--nats-url",
            "nats://127.0.0.1:4222",
            "--nats-stream",
            "SHOP_EVENTS",
            "--nats-subject-prefix",
            "acme.shop",
            "--nats-stream-max-age-hours",
            "1",
            "--nats-duplicate-window-secs",
            "60",
        ];
        let args = parse(&valid);
        assert_eq!(args.url(), Some("nats://127.0.0.1:4222"));
        let settings = args.stream_settings().expect("valid");
        assert_eq!(
            settings.config().subjects,
            vec!["acme.shop.events.>".to_owned()]
        );
        assert_eq!(settings.duplicate_window, Duration::from_secs(60));
        assert_eq!(settings.max_age, Duration::from_secs(3_600));
        for (flag, bad) in [
            ("--nats-stream", "SHOP.EVENTS"),
            ("--nats-subject-prefix", "shop.*"),
            ("--nats-duplicate-window-secs", "7200"),
        ] {
            let mut args = valid;
            let at = args
                .iter()
                .position(|arg| *arg == flag)
                .expect("a flag of `valid`");
            args[at + 1] = bad;
            assert!(parse(&args).stream_settings().is_err(), "{flag} {bad}");
        }
    }

    #[test]
    fn passwords_stay_out_of_logs() {
        assert_eq!(
            redact("nats://user:secret@broker:4222"),
            "nats://***@broker:4222"
        );
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}
