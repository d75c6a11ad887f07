//! Wakes the subscriptions when events are appended (PostgreSQL NOTIFY at commit). Only a hint:
//! subscriptions also poll, so a lost notification or a dropped listener delays, never loses.

use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::watch;

/// Spawns the listener; the receiver's value changes on every notification. Abort the task
/// when the subscriptions stop.
pub fn spawn_listener(pool: PgPool) -> (watch::Receiver<u64>, tokio::task::JoinHandle<()>) {
    let (sender, receiver) = watch::channel(0u64);
    let task = tokio::spawn(async move {
        loop {
            match PgListener::connect_with(&pool).await {
                Ok(mut listener) => {
                    if let Err(error) = listener.listen("events_appended").await {
                        tracing::warn!(%error, "cannot LISTEN for appended events; polling only");
                    } else {
                        // recv reconnects by itself after a connection loss.
                        while listener.recv().await.is_ok() {
                            sender.send_modify(|count| *count = count.wrapping_add(1));
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot connect the event listener; polling only")
                }
            }
            if sender.is_closed() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
    (receiver, task)
}
