//! The progress line on stderr while a run goes: redrawn in place every second on a terminal, a plain line every
//! ten seconds otherwise (CI logs), nothing with `--quiet`.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Live counts the sessions update.
#[derive(Debug, Default)]
pub struct Counters {
    /// Calls started (claimed against `--calls`).
    pub started: AtomicU64,
    pub done: AtomicU64,
    pub errors: AtomicU64,
}

/// Draws progress until `stop` fires; returns the task.
pub fn spawn(
    counters: Arc<Counters>,
    duration: Duration,
    calls: Option<u64>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let tty = std::io::stderr().is_terminal();
        let every = if tty {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(10)
        };
        let start = Instant::now();
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
            let elapsed = start.elapsed();
            let done = counters.done.load(Ordering::Relaxed);
            let errors = counters.errors.load(Ordering::Relaxed);
            let mut fraction = elapsed.as_secs_f64() / duration.as_secs_f64();
            if let Some(limit) = calls {
                fraction = fraction.max(done as f64 / limit.max(1) as f64);
            }
            let fraction = fraction.min(1.0);
            let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
            let text = format!(
                "{:>5.0}s / {:.0}s  {done} calls  {errors} errors  {rate:.1}/s",
                elapsed.as_secs_f64(),
                duration.as_secs_f64()
            );
            let mut err = std::io::stderr();
            if tty {
                let filled = (fraction * 30.0).round() as usize;
                let bar = format!("{}{}", "#".repeat(filled), ".".repeat(30 - filled));
                let _ = write!(err, "\r[{bar}] {text}  ");
            } else {
                let _ = writeln!(err, "loadtest: {text}");
            }
            let _ = err.flush();
        }
        if tty {
            let _ = writeln!(std::io::stderr());
        }
    })
}
