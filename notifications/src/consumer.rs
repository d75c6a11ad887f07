//! The durable JetStream pull consumer: JetStream keeps the service's place in the stream (the
//! consumer's ack floor), so a restarted service resumes where it stopped; every message is
//! acknowledged explicitly, and only after its inbox transaction committed. A message not
//! acknowledged (the service died, PostgreSQL failed) comes again after `ack_wait`, and the inbox
//! drops it if it was in fact handled.

use std::time::Duration;

use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
};
use futures_util::StreamExt;
use integration_events::{
    DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX, Envelope, IntegrationEvent, subjects,
};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::inbox::{self, Outcome};

#[derive(Debug, Clone, clap::Args)]
pub struct ConsumerArgs {
    /// The NATS server (JetStream) the shop's relay publishes to.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// The stream of the shop's integration events.
    #[arg(long, env = "NATS_STREAM", default_value = DEFAULT_STREAM)]
    pub nats_stream: String,
    /// The shop's subject prefix: this service reads `<prefix>.events.order.>`.
    #[arg(long, env = "NATS_SUBJECT_PREFIX", default_value = DEFAULT_SUBJECT_PREFIX)]
    pub nats_subject_prefix: String,
    /// The durable consumer's name: JetStream keeps this service's place in the stream under it.
    #[arg(long, env = "NOTIFICATIONS_CONSUMER", default_value = "notifications")]
    pub consumer: String,
    /// Seconds JetStream waits for an acknowledgement before it delivers a message again.
    #[arg(long, env = "NOTIFICATIONS_ACK_WAIT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub ack_wait_secs: u64,
    /// Messages fetched per request.
    #[arg(long, env = "NOTIFICATIONS_BATCH_SIZE", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub batch_size: u64,
}

impl ConsumerArgs {
    /// The consumer's JetStream configuration (created, or brought to this, at start).
    pub fn config(&self) -> pull::Config {
        pull::Config {
            durable_name: Some(self.consumer.clone()),
            description: Some(
                "cqrs-shop notifications: tells customers about their orders".to_owned(),
            ),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(self.ack_wait_secs),
            filter_subject: subjects::of_aggregate(&self.nats_subject_prefix, "order"),
            max_deliver: -1,
            ..pull::Config::default()
        }
    }
}

/// Why a round of the consumer loop failed; it backs off and tries again.
#[derive(Debug, thiserror::Error)]
enum ConsumeError {
    #[error("NATS: {0}")]
    Broker(String),
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
}

pub struct Consumer {
    pool: PgPool,
    jetstream: jetstream::Context,
    args: ConsumerArgs,
}

impl Consumer {
    pub fn new(pool: PgPool, client: async_nats::Client, args: ConsumerArgs) -> Self {
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .build(client);
        Self {
            pool,
            jetstream,
            args,
        }
    }

    /// Consumes until `shutdown` becomes true, backing off while NATS or PostgreSQL fail.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut consumer: Option<PullConsumer> = None;
        let mut failures = 0u32;
        tracing::info!(stream = %self.args.nats_stream, consumer = %self.args.consumer, "consumer started");
        while !*shutdown.borrow() {
            let round = match &consumer {
                Some(open) => self.fetch_and_handle(open).await,
                None => match self.open().await {
                    Ok(open) => {
                        consumer = Some(open);
                        Ok(())
                    }
                    Err(error) => Err(error),
                },
            };
            match round {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!("consumer recovered");
                        failures = 0;
                    }
                }
                Err(error) => {
                    failures += 1;
                    if matches!(error, ConsumeError::Broker(_)) {
                        metrics::counter!("notifications_broker_errors_total").increment(1);
                        consumer = None;
                    }
                    tracing::warn!(%error, failures, "cannot consume; retrying");
                    let pause = Duration::from_millis(100 * 2u64.pow(failures.min(6)))
                        .min(Duration::from_secs(5));
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.changed() => {}
                    }
                }
            }
        }
        // Acknowledgements are sent in the background: let them leave before stopping.
        let _ = self.jetstream.client().flush().await;
        tracing::info!("consumer stopped");
    }

    /// Creates the durable consumer, or brings an existing one to `config`.
    async fn open(&self) -> Result<PullConsumer, ConsumeError> {
        let stream = self
            .jetstream
            .get_stream(&self.args.nats_stream)
            .await
            .map_err(|error| {
                ConsumeError::Broker(format!(
                    "cannot open the stream {} (the shop's relay creates it): {error}",
                    self.args.nats_stream
                ))
            })?;
        let consumer = stream
            .create_consumer(self.args.config())
            .await
            .map_err(|error| {
                ConsumeError::Broker(format!(
                    "cannot create the durable consumer {} on {}: {error}",
                    self.args.consumer, self.args.nats_stream
                ))
            })?;
        tracing::info!(stream = %self.args.nats_stream, consumer = %self.args.consumer, "durable consumer ready");
        Ok(consumer)
    }

    /// Fetches one batch (waiting up to a second for the first message) and handles it.
    async fn fetch_and_handle(&self, consumer: &PullConsumer) -> Result<(), ConsumeError> {
        let broker = |error: &dyn std::fmt::Display| ConsumeError::Broker(error.to_string());
        let mut messages = consumer
            .batch()
            .max_messages(usize::try_from(self.args.batch_size).unwrap_or(100))
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .map_err(|error| broker(&error))?;
        let mut received = 0;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|error| broker(&error))?;
            received += 1;
            self.handle(message).await?;
        }
        if received == 0 {
            metrics::gauge!("notifications_consumer_lag_messages").set(0.0);
        }
        Ok(())
    }

    async fn handle(&self, message: jetstream::Message) -> Result<(), ConsumeError> {
        let (stream_sequence, delivered, pending) = {
            let info = message.info().map_err(|error| {
                ConsumeError::Broker(format!("a message without JetStream info: {error}"))
            })?;
            (info.stream_sequence, info.delivered, info.pending)
        };
        metrics::gauge!("notifications_consumer_lag_messages").set(pending as f64);
        if delivered > 1 {
            metrics::counter!("notifications_redeliveries_total").increment(1);
        }
        let decoded = serde_json::from_slice::<Envelope>(&message.payload)
            .map_err(|error| error.to_string())
            .and_then(|envelope| {
                let event =
                    IntegrationEvent::decode(&envelope).map_err(|error| error.to_string())?;
                Ok((envelope, event))
            });
        let (envelope, event) = match decoded {
            Ok(decoded) => decoded,
            Err(error) => {
                // It will never decode: a redelivery would only fail again, forever.
                tracing::error!(stream_sequence, %error, "dropping a message that is not an integration event");
                metrics::counter!("notifications_events_rejected_total").increment(1);
                return message
                    .ack_with(AckKind::Term)
                    .await
                    .map_err(|error| ConsumeError::Broker(error.to_string()));
            }
        };
        match inbox::handle(&self.pool, &envelope, event.as_ref(), stream_sequence).await {
            Ok(outcome) => {
                let outcome_label = match outcome {
                    Outcome::Notified => "notified",
                    Outcome::Nothing => "nothing_to_say",
                    Outcome::AlreadyHandled => "already_handled",
                };
                if outcome == Outcome::AlreadyHandled {
                    metrics::counter!("notifications_duplicates_dropped_total").increment(1);
                    tracing::info!(event_id = %envelope.id, delivered, "dropped an event the inbox has already handled");
                }
                metrics::counter!("notifications_events_handled_total", "type" => envelope.event_type.clone(), "outcome" => outcome_label)
                    .increment(1);
                message
                    .ack()
                    .await
                    .map_err(|error| ConsumeError::Broker(error.to_string()))
            }
            Err(error) => {
                // Come back to it shortly; the batch stops here and the loop backs off.
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
                Err(ConsumeError::Database(error))
            }
        }
    }
}

/// HELP lines for the consumer's metrics.
pub fn describe_metrics() {
    metrics::describe_counter!(
        "notifications_events_handled_total",
        "Deliveries handled, by event type and outcome (notified, nothing_to_say, already_handled)"
    );
    metrics::describe_counter!(
        "notifications_duplicates_dropped_total",
        "Deliveries of an event the inbox had already handled (dropped)"
    );
    metrics::describe_counter!(
        "notifications_redeliveries_total",
        "Messages JetStream delivered more than once (not acknowledged in time)"
    );
    metrics::describe_counter!(
        "notifications_events_rejected_total",
        "Messages that are not integration events (terminated, never redelivered)"
    );
    metrics::describe_counter!(
        "notifications_broker_errors_total",
        "Rounds of the consumer that failed on NATS (down, unreachable, no stream yet)"
    );
    metrics::describe_gauge!(
        "notifications_consumer_lag_messages",
        metrics::Unit::Count,
        "Messages of the stream not yet delivered to this consumer"
    );
    // Shown from the start (at zero), not only once something happened.
    for counter in [
        "notifications_duplicates_dropped_total",
        "notifications_redeliveries_total",
        "notifications_events_rejected_total",
        "notifications_broker_errors_total",
    ] {
        metrics::counter!(counter).increment(0);
    }
}
