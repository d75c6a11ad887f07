//! Shutdown on SIGTERM or SIGINT, for services whose main loop owns its shutdown (the
//! projector, the notifications consumer) rather than leaving it to the HTTP server.

use tokio::{sync::watch, task::JoinHandle};

/// A signal that becomes true on SIGTERM or SIGINT, and the task that waits for them (abort it
/// once the service has stopped for another reason). `finishing` says in the log what the
/// service finishes before it stops.
pub fn on_signal(finishing: &'static str) -> (watch::Receiver<bool>, JoinHandle<()>) {
    let (stop, shutdown) = watch::channel(false);
    let waiter = tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: {finishing}");
        let _ = stop.send(true);
    });
    (shutdown, waiter)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
