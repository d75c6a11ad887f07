//! A wake-up signal fed by a notification stream that may drop: PostgreSQL `LISTEN` in the
//! projector (events appended), Redis pub/sub in the query-api (projections advanced). Only a
//! hint in both: whoever waits also re-checks on a timer, so a lost notification or a dropped
//! connection delays, never loses. The listener reconnects by itself, forever, until every
//! receiver is gone.

use std::{future::Future, time::Duration};

use futures_util::{Stream, StreamExt};
use tokio::sync::watch;

/// Pause between reconnection attempts.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// Spawns a task that keeps `connect`ing and counts every notification of the stream it
/// yields; the receiver changes on every notification. An error in the stream ends it (and a
/// new connection is made). `what` names the source in log lines.
pub fn spawn_reconnecting_listener<C, F, S, T, E>(
    what: &'static str,
    connect: C,
) -> watch::Receiver<u64>
where
    C: Fn() -> F + Send + Sync + 'static,
    F: Future<Output = Result<S, E>> + Send,
    S: Stream<Item = Result<T, E>> + Send,
    T: Send,
    E: std::fmt::Display + Send,
{
    let (sender, receiver) = watch::channel(0u64);
    tokio::spawn(async move {
        // Ends as soon as nobody listens any more, so that its connection closes with the rest.
        tokio::select! {
            () = listen(what, &connect, &sender) => {}
            () = sender.closed() => {}
        }
    });
    receiver
}

async fn listen<C, F, S, T, E>(what: &'static str, connect: &C, sender: &watch::Sender<u64>)
where
    C: Fn() -> F + Sync,
    F: Future<Output = Result<S, E>> + Send,
    S: Stream<Item = Result<T, E>> + Send,
    T: Send,
    E: std::fmt::Display + Send,
{
    loop {
        match connect().await {
            Ok(stream) => {
                let mut stream = std::pin::pin!(stream);
                loop {
                    match stream.next().await {
                        Some(Ok(_)) => {
                            sender.send_modify(|count| *count = count.wrapping_add(1));
                        }
                        Some(Err(error)) => {
                            tracing::warn!(source = what, %error, "lost the notification stream; reconnecting");
                            break;
                        }
                        None => {
                            tracing::warn!(
                                source = what,
                                "the notification stream ended; reconnecting"
                            );
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(source = what, %error, "cannot listen for notifications; re-checking on a timer")
            }
        }
        tokio::time::sleep(RECONNECT_PAUSE).await;
    }
}
