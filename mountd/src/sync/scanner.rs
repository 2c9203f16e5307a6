//! The scan thread: woken by the fs layer's change hook, it waits until changes pause
//! (debounce, bounded), records them as signed updates (`SyncHandle::scan`) and tells the node to
//! push them (docs/protocol.md, "Local changes").
use crossbeam_channel::{Receiver, Sender};
use fossa_fs::Fs;
use std::sync::Arc;
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

/// What the scan thread works with.
pub(crate) struct Scanner {
    /// The filesystem core.
    pub(crate) fs: Arc<Fs>,
    /// Tells the node that there are new updates to push.
    pub(crate) notify: Box<dyn Fn() + Send>,
    /// True while no other device is a member: nobody to sync with, so no scan. (The first
    /// scan after a device joins indexes everything changed since the volume was opened.)
    pub(crate) alone: Box<dyn Fn() -> bool + Send>,
}

impl Scanner {
    /// Runs scans until [`Wake::Stop`].
    pub(crate) fn spawn(self, rx: Receiver<Wake>) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("fossa-scan".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let stop = matches!(first, Wake::Stop) || settle(&rx);
                    if !(self.alone)() {
                        self.scan();
                    }
                    if stop {
                        return;
                    }
                }
            })
    }

    fn scan(&self) {
        match self.fs.sync_handle().scan() {
            Ok(seq) => {
                tracing::trace!(seq, "scanned local changes");
                (self.notify)();
            }
            Err(e) => tracing::warn!(error = %e, "scanning local changes failed"),
        }
    }
}

/// Waits until a [`QUIET`] period passes without a change, at most [`MAX_DELAY`]; true if
/// told to stop. It sleeps through each period and then looks at what came, rather than waking
/// for every change: a busy volume (an untar) changes thousands of times a second.
fn settle(rx: &Receiver<Wake>) -> bool {
    let end = Instant::now() + MAX_DELAY;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(QUIET.min(left));
        let mut changed = false;
        for w in rx.try_iter() {
            match w {
                Wake::Change => changed = true,
                Wake::Stop => return true,
            }
        }
        if !changed {
            return false;
        }
    }
}
