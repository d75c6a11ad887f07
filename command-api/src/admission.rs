//! Admission under overload (`MAX_SAGA_LAG_EVENTS`): when the saga has more events left to
//! handle than the bound, `POST /orders` answers 503 with `Retry-After` instead of accepting an
//! order whose decision would wait behind all of them. Without a bound (the default) every order
//! is accepted, however far behind the saga is.
//!
//! The backlog is read by a task of its own, four times a second, and counted only up to the
//! bound, so a request looks at a number in memory and the count costs the same however large
//! the backlog grows. Only new orders are refused: cancelling, shipping and the catalog's
//! commands add no saga work worth holding back, and cancels let customers out of the queue.
//! While the backlog cannot be read (the database is away), orders are admitted: the command
//! itself then says what is wrong.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use sqlx::PgPool;

use crate::error::ApiError;

/// The gauge of the backlog as last read (only with a bound).
pub const SAGA_BACKLOG: &str = "command_api_saga_backlog_events";

/// How often the backlog is read.
const EVERY: Duration = Duration::from_millis(250);

/// Not read yet, or not readable.
const UNKNOWN: i64 = -1;

#[derive(Clone)]
pub struct Admission {
    bound: Option<u64>,
    backlog: Arc<AtomicI64>,
}

impl Admission {
    /// Admits every order.
    pub fn open() -> Self {
        Self {
            bound: None,
            backlog: Arc::new(AtomicI64::new(UNKNOWN)),
        }
    }

    /// Refuses orders while the saga's backlog exceeds `bound` events; the returned task keeps
    /// the backlog up to date (abort it when the service stops).
    pub fn bounded(pool: PgPool, bound: u64) -> (Self, tokio::task::JoinHandle<()>) {
        let admission = Self {
            bound: Some(bound),
            backlog: Arc::new(AtomicI64::new(UNKNOWN)),
        };
        let watching = tokio::spawn(watch_backlog(pool, bound, Arc::clone(&admission.backlog)));
        (admission, watching)
    }

    /// Whether a new order may be accepted now.
    pub fn admit_order(&self) -> Result<(), ApiError> {
        let Some(bound) = self.bound else {
            return Ok(());
        };
        let backlog = self.backlog.load(Ordering::Relaxed);
        match u64::try_from(backlog) {
            Ok(events) if events > bound => Err(ApiError::Overloaded {
                backlog: events,
                bound,
            }),
            _ => Ok(()),
        }
    }
}

async fn watch_backlog(pool: PgPool, bound: u64, backlog: Arc<AtomicI64>) {
    let at_most = i64::try_from(bound).unwrap_or(i64::MAX - 1) + 1;
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        every.tick().await;
        match event_store::subscriptions::saga_backlog(&pool, at_most).await {
            Ok(events) => {
                backlog.store(events, Ordering::Relaxed);
                metrics::gauge!(SAGA_BACKLOG).set(events as f64);
                if failing {
                    tracing::info!(events, "the saga's backlog can be read again");
                    failing = false;
                }
            }
            Err(error) => {
                backlog.store(UNKNOWN, Ordering::Relaxed);
                if !failing {
                    tracing::warn!(%error, "cannot read the saga's backlog; admitting every order meanwhile");
                    failing = true;
                }
            }
        }
    }
}
