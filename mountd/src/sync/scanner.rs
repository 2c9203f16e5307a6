//! The scan thread: woken by the fs layer's change hook, it waits until changes pause
//! (debounce, bounded), records them as signed updates (`Fs::sync_scan`) and tells the node to
//! push them (docs/protocol.md, "Local changes").
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use fossa_fs::Fs;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Quiet time that ends a burst of changes.
const QUIET: Duration = Duration::from_millis(20);
/// Longest a change waits for its scan however busy the volume is.
const MAX_DELAY: Duration = Duration::from_millis(50);

/// What wakes the scan thread.
#[derive(Debug)]
pub(crate) enum Wake {
    /// Something changed locally.
    Change,
    /// Scan one last time and stop.
    Stop,
}

/// The channel that wakes the scan thread. One pending wake is enough: a scan picks up every
/// change made before it starts, so the fs layer's hook only `try_send`s.
pub(crate) fn channel() -> (Sender<Wake>, Receiver<Wake>) {
    crossbeam_channel::bounded(1)
}

/// Runs scans until [`Wake::Stop`]; `notify` (set once the node runs) is told after each.
pub(crate) fn spawn(
    fs: Arc<Fs>,
    rx: Receiver<Wake>,
    notify: Arc<OnceLock<Box<dyn Fn() + Send + Sync>>>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("fossa-scan".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let stop = matches!(first, Wake::Stop) || settle(&rx);
                scan(&fs, &notify);
                if stop {
                    return;
                }
            }
        })
}

/// Waits until no wake came for [`QUIET`], at most [`MAX_DELAY`]; true if told to stop.
fn settle(rx: &Receiver<Wake>) -> bool {
    let end = Instant::now() + MAX_DELAY;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match rx.recv_timeout(QUIET.min(left)) {
            Ok(Wake::Change) => {}
            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return true,
            Err(RecvTimeoutError::Timeout) => return false,
        }
    }
}

fn scan(fs: &Fs, notify: &OnceLock<Box<dyn Fn() + Send + Sync>>) {
    match fs.sync_scan() {
        Ok(seq) => {
            tracing::trace!(seq, "scanned local changes");
            if let Some(n) = notify.get() {
                n();
            }
        }
        Err(e) => tracing::warn!(error = %e, "scanning local changes failed"),
    }
}
