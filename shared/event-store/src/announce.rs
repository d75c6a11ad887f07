//! Telling tailing readers that events were appended, after the appending transaction has
//! committed, with one `NOTIFY` for any number of appends.
//!
//! A `NOTIFY` inside the appending transaction (the event table used to have a trigger for it)
//! makes PostgreSQL take a lock for the whole cluster at that transaction's commit and hold it
//! through the commit's WAL flush, so every append of every database on the server committed one
//! at a time: pgbench inserting single rows made 1,757 transactions/s with the trigger and 7,458
//! without it. The announcer sends its `NOTIFY` from a transaction of its own, after the
//! appends, and while one is on its way every further announcement folds into the next one: the
//! appends commit in parallel again, and readers still wake within one `NOTIFY`'s round trip.
//!
//! It is only a hint, as the trigger was: readers also poll (`PROJECTOR_POLL_INTERVAL_MS`), so
//! an append made without an announcer (a script with `psql`, a test appending directly) is read
//! on the next poll, and a lost `NOTIFY` costs latency, never an event.

use sqlx::PgPool;
use tokio::sync::watch;

/// The channel tailing readers `LISTEN` on.
pub const CHANNEL: &str = "events_appended";

/// A handle that wakes the readers; cheap to clone. Its task ends when every handle is gone.
#[derive(Clone)]
pub struct Announcer {
    pending: watch::Sender<()>,
}

impl Announcer {
    /// Starts the task that sends the `NOTIFY`s on connections of `pool`.
    pub fn spawn(pool: PgPool) -> Self {
        let (pending, mut announced) = watch::channel(());
        tokio::spawn(async move {
            // A watch channel marks itself changed once however often it is sent to: the
            // announcements made while a NOTIFY is on its way make exactly one more.
            while announced.changed().await.is_ok() {
                announced.mark_unchanged();
                if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
                    .bind(CHANNEL)
                    .execute(&pool)
                    .await
                {
                    // Readers poll: the events are read a little later, not lost.
                    tracing::debug!(%error, "could not announce appended events");
                }
            }
        });
        Self { pending }
    }

    /// Wakes the readers soon: call it after the transaction that appended has committed.
    pub fn announce(&self) {
        self.pending.send_replace(());
    }
}
