//! How a rebuild shows its progress: a bar on a terminal, a log line every two seconds
//! otherwise, and events per second at the end.

use std::{io::IsTerminal, time::Instant};

use indicatif::{ProgressBar, ProgressStyle};
use sqlx::PgPool;

/// A progress bar on a terminal, a log line every two seconds otherwise; events/s at the end.
pub(super) struct Progress {
    name: &'static str,
    bar: Option<ProgressBar>,
    started: Instant,
    last_log: Instant,
    done: u64,
    total: u64,
}

impl Progress {
    pub(super) async fn start(name: &'static str, pool: &PgPool) -> anyhow::Result<Self> {
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(pool)
            .await?;
        let total = total.max(0) as u64;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{msg:>16} [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(name);
            bar
        });
        tracing::info!(read_model = name, events = total, "rebuild started");
        Ok(Self {
            name,
            bar,
            started: Instant::now(),
            last_log: Instant::now(),
            done: 0,
            total,
        })
    }

    pub(super) fn advance(&mut self, events: usize) {
        self.done += events as u64;
        match &self.bar {
            Some(bar) => bar.set_position(self.done.min(self.total.max(self.done))),
            None if self.last_log.elapsed().as_secs() >= 2 => {
                self.last_log = Instant::now();
                tracing::info!(
                    read_model = self.name,
                    done = self.done,
                    total = self.total,
                    "rebuilding"
                );
            }
            None => {}
        }
    }

    pub(super) fn finish(self, position: i64) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = if seconds > 0.0 {
            self.done as f64 / seconds
        } else {
            self.done as f64
        };
        tracing::info!(
            read_model = self.name,
            events = self.done,
            position,
            seconds,
            events_per_second = rate,
            "rebuild switched over"
        );
        eprintln!(
            "rebuilt {}: {} events in {seconds:.2} s ({rate:.0} events/s), live at position {position}",
            self.name, self.done
        );
    }
}
