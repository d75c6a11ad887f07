//! The notifications service against the real thing: the shop (command-api, projector with its
//! relay, query-api) on the test's database, the real nats-server with a stream and subject
//! prefix of the test's own (deleted at the end), and the service on the same database in its
//! own schema. The service reads only its own schema; the tests look at both sides.

mod delivery;
mod faults;
mod openapi;

use std::time::Duration;

use actix_web::dev::ServerHandle;
use clap::Parser;
use sqlx::{PgPool, postgres::PgConnectOptions};
use testkit::{TestSystem, eventually, nats::TestStream};
use tokio::{sync::watch, task::JoinHandle};
use uuid::Uuid;

/// Seconds JetStream waits for an ack in these tests (30 in production).
pub const ACK_WAIT_SECS: &str = "2";

/// The service, running in the test's process as `main` runs it.
pub struct RunningService {
    pub base: String,
    task: JoinHandle<()>,
    server: ServerHandle,
    stop: watch::Sender<bool>,
    application_name: String,
}

impl RunningService {
    pub async fn start(connect: &PgConnectOptions, stream: &TestStream) -> Self {
        let application_name = format!("test-notifications-{}", Uuid::new_v4().simple());
        let url = testkit::database_url(connect, Some(&application_name));
        let settings = notifications::Settings::try_parse_from([
            "notifications",
            "--database-url",
            &url,
            "--addr",
            "127.0.0.1:0",
            "--nats-url",
            &stream.url,
            "--nats-stream",
            &stream.name,
            "--nats-subject-prefix",
            &stream.prefix,
            "--ack-wait-secs",
            ACK_WAIT_SECS,
        ])
        .expect("notifications settings");
        let application = notifications::Application::build(settings)
            .await
            .expect("notifications starts");
        let base = format!("http://{}", application.address());
        let server = application.server_handle();
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(application.run_until(shutdown));
        Self {
            base,
            task,
            server,
            stop,
            application_name,
        }
    }

    pub async fn get(&self, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        let response = reqwest::get(format!("{}{path}", self.base))
            .await
            .expect("request sent");
        let status = response.status();
        (status, response.json().await.unwrap_or_default())
    }

    /// Stops it as `kill -9` would: its tasks end where they are, its database sessions are
    /// ended (so open transactions roll back) and its NATS connection closes; whatever it had
    /// not acknowledged is delivered again.
    pub async fn kill(self, pool: &PgPool) {
        self.task.abort();
        let _ = self.task.await;
        self.server.stop(false).await;
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(&self.application_name)
        .execute(pool)
        .await
        .expect("end the killed service's sessions");
    }

    /// Stops it as SIGTERM does: the batch in hand is finished.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }
}

/// The shop with its relay publishing to `stream`.
pub async fn shop(connect: PgConnectOptions, stream: &TestStream) -> TestSystem {
    TestSystem::builder()
        .projector_args(stream.projector_args())
        .start(connect)
        .await
}

/// The ids of the shop's events a customer must be told about, in log order: read from the
/// shop's log by the test, to check the service (which never reads it).
pub async fn events_to_notify(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar::<_, i64>(
        "SELECT position FROM events
         WHERE event_type IN ('OrderApproved', 'OrderRejected', 'OrderCancelled', 'OrderShipped')
         ORDER BY position",
    )
    .fetch_all(pool)
    .await
    .expect("the shop's log")
    .into_iter()
    .map(|position| position.to_string())
    .collect()
}

/// The event ids of the notifications the service recorded, in order.
pub async fn notified_events(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT event_id FROM notifications.notifications ORDER BY position")
        .fetch_all(pool)
        .await
        .unwrap_or_default()
}

/// How many deliveries the inbox dropped as copies of an event it had handled.
pub async fn dropped_copies(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT coalesce(sum(redeliveries), 0)::bigint FROM notifications.inbox")
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

/// Waits until every outcome in the shop's log has been notified, and returns them.
pub async fn wait_until_all_notified(pool: &PgPool) -> Vec<String> {
    let caught_up = eventually(Duration::from_secs(60), || async {
        let expected = events_to_notify(pool).await;
        !expected.is_empty() && notified_events(pool).await.len() >= expected.len()
    })
    .await;
    let expected = events_to_notify(pool).await;
    assert!(
        caught_up,
        "only {} of {} outcomes were notified",
        notified_events(pool).await.len(),
        expected.len()
    );
    expected
}
