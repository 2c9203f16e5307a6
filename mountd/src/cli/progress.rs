//! `fossa status --follow` (and `fossa join` on a terminal): a progress line for a sync in
//! progress, redrawn until nothing is missing.
use super::{Ctx, request};
use crate::control::Request;
use crate::control::api::Status;
use anyhow::Result;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Time between redraws.
const TICK: Duration = Duration::from_millis(250);
/// Time between lines when stderr is not a terminal (logs).
const LOG_EVERY: Duration = Duration::from_secs(5);
/// Width of the bar in characters.
const BAR: usize = 30;

/// Follows the daemon's sync until it holds every block (or the daemon goes away: an error).
pub(crate) fn follow(ctx: &Ctx) -> Result<()> {
    let tty = std::io::stderr().is_terminal();
    let mut prev: Option<(Instant, u64)> = None;
    let mut logged = Instant::now() - LOG_EVERY;
    loop {
        let st: Status = request(ctx, &Request::status())?;
        let s = Sample::of(&st);
        let rate = prev.map_or(0.0, |(t, r)| {
            rate(s.received.saturating_sub(r), t.elapsed())
        });
        prev = Some((Instant::now(), s.received));
        let line = s.line(rate);
        if tty {
            eprint!("\r{line}\x1b[K");
        } else if logged.elapsed() >= LOG_EVERY || s.missing == 0 {
            eprintln!("{line}");
            logged = Instant::now();
        }
        let _ = std::io::stderr().flush();
        if s.missing == 0 {
            if tty {
                eprintln!();
            }
            return Ok(());
        }
        std::thread::sleep(TICK);
    }
}

fn rate(bytes: u64, dt: Duration) -> f64 {
    bytes as f64 / dt.as_secs_f64().max(1e-3) / f64::from(1u32 << 20)
}

/// What one status reply says about the sync.
struct Sample {
    missing: u64,
    received: u64,
    /// Stored bytes over logical bytes: how much of the volume is here (roughly: blocks carry
    /// a little overhead, and equal chunks are stored once).
    fraction: f64,
    peers: usize,
}

impl Sample {
    fn of(st: &Status) -> Self {
        let missing = st.sync.blocks_missing;
        let logical = st.logical_bytes.max(1);
        let fraction = match missing {
            0 => 1.0,
            _ => (st.own_bytes as f64 / logical as f64).min(0.99),
        };
        Sample {
            missing,
            received: st.sync.bytes_received,
            fraction,
            peers: st.sync.connected.len(),
        }
    }

    fn line(&self, rate: f64) -> String {
        let done = (self.fraction * BAR as f64).round() as usize;
        let bar = format!("{}{}", "#".repeat(done), ".".repeat(BAR - done.min(BAR)));
        match self.missing {
            0 => format!("[{bar}] in sync"),
            m => format!(
                "[{bar}] {:>3.0}%  {m} blocks to fetch  {:.1} MiB received  {rate:.1} MiB/s  {} peer(s)",
                self.fraction * 100.0,
                self.received as f64 / f64::from(1u32 << 20),
                self.peers
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::api::SyncStatus;

    fn status(own_bytes: u64, sync: SyncStatus) -> Status {
        Status {
            logical_bytes: 1000,
            own_bytes,
            sync,
            ..Status::default()
        }
    }

    #[test]
    fn lines_show_progress_and_completion() {
        let v = status(
            500,
            SyncStatus {
                blocks_missing: 7,
                bytes_received: 3 << 20,
                connected: vec!["x".into()],
                ..SyncStatus::default()
            },
        );
        let s = Sample::of(&v);
        let line = s.line(2.0);
        assert!(
            line.starts_with(&format!("[{}{}]", "#".repeat(15), ".".repeat(15))),
            "{line}"
        );
        assert!(line.contains(" 50%  7 blocks to fetch  3.0 MiB received  2.0 MiB/s  1 peer"));
        let done = status(900, SyncStatus::default());
        assert_eq!(
            Sample::of(&done).line(0.0),
            format!("[{}] in sync", "#".repeat(30))
        );
    }
}
