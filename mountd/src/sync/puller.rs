//! The pull thread: after every apply it invalidates the kernel's caches of what changed, then
//! fetches the blocks that live files need and the store lacks (`Fs::sync_missing`), in
//! batches, until none are missing. Missing blocks are found again from the metadata after a
//! restart, so an interrupted pull resumes without refetching what is stored.
use super::source::{Fetching, NetHandle, keep};
use blockstore::{BlockId, BlockStore};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use fossa_fs::Fs;
use fossa_fs::sync::ApplyReport;
use fuser::{INodeNo, Notifier};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Blocks asked for per round (two rounds are in flight): about 8 MiB, so that a restart
/// after a kill refetches little.
const BATCH: usize = 128;
/// Deadline of one round's fetch.
const ROUND_DEADLINE: Duration = Duration::from_secs(30);
/// Longest time fetched blocks stay uncommitted while a pull is running.
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// Wait before retrying when no peer had the blocks.
const RETRY: Duration = Duration::from_secs(2);
/// Test knob: set to leave blocks remote until read (docs/cli.md).
pub(crate) const NO_PULL_ENV: &str = "FOSSA_SYNC_NO_PULL";

/// What the pull thread is told.
pub(crate) enum PullMsg {
    /// Peer updates were applied.
    Applied(ApplyReport),
    /// Finish.
    Stop,
}

/// What the pull thread works with.
pub(crate) struct Puller {
    /// The filesystem core.
    pub(crate) fs: Arc<Fs>,
    /// The local store.
    pub(crate) store: Arc<BlockStore>,
    /// The node.
    pub(crate) net: NetHandle,
    /// The mount's notifier, set once mounted.
    pub(crate) notifier: Arc<OnceLock<Notifier>>,
    /// Only invalidate, never pull ([`NO_PULL_ENV`]).
    pub(crate) no_pull: bool,
    /// When fetched blocks were last committed.
    pub(crate) last_commit: Cell<Instant>,
    /// The batch being fetched while the previous one is stored (a two-stage pipeline).
    pub(crate) pending: RefCell<Option<Fetching>>,
}

enum Round {
    Done,
    Progress,
    Stuck,
}

impl Puller {
    /// Starts the thread.
    pub(crate) fn spawn(self, rx: Receiver<PullMsg>) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("fossa-pull".into())
            .spawn(move || self.run(&rx))
    }

    fn run(&self, rx: &Receiver<PullMsg>) {
        let mut wait = Some(Duration::ZERO);
        loop {
            let msg = match wait {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(t) => rx.recv_timeout(t),
            };
            match msg {
                Ok(PullMsg::Applied(r)) => self.invalidate(&r),
                Ok(PullMsg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
            // Take every report already queued before the (slow) pull.
            while let Ok(m) = rx.try_recv() {
                match m {
                    PullMsg::Applied(r) => self.invalidate(&r),
                    PullMsg::Stop => return,
                }
            }
            wait = match self.round() {
                Round::Done => {
                    self.commit();
                    None
                }
                Round::Progress => Some(Duration::ZERO),
                Round::Stuck => Some(RETRY),
            };
        }
    }

    /// Starts fetching the next batch of missing blocks, then stores the batch fetched in the
    /// previous round (so the network and the store work at the same time).
    fn round(&self) -> Round {
        if self.no_pull {
            return Round::Done;
        }
        let previous = self.pending.borrow_mut().take();
        let busy: HashSet<BlockId> = previous.iter().flat_map(|f| f.asked.clone()).collect();
        let listed = self.fs.sync_missing(BATCH + busy.len());
        if let Err(e) = &listed {
            tracing::warn!(error = %e, "listing missing blocks failed");
        }
        let failed = listed.is_err();
        let ids: Vec<BlockId> = (listed.unwrap_or_default().into_iter())
            .filter(|id| !busy.contains(id))
            .take(BATCH)
            .collect();
        let started = !ids.is_empty();
        if started {
            *self.pending.borrow_mut() = Some(self.net.start_fetch(ids, ROUND_DEADLINE));
        }
        let Some(previous) = previous else {
            return match (started, failed) {
                (true, _) => Round::Progress,
                (false, true) => Round::Stuck,
                (false, false) => Round::Done,
            };
        };
        let stored = self.keep_fetched(previous);
        // Fetched blocks are a copy of what peers hold: losing the uncommitted ones in a crash
        // only costs a refetch, so commit about once a second, not after every round.
        let due = self.last_commit.get().elapsed() >= COMMIT_EVERY;
        if (stored == 0 || due) && !self.commit() {
            return Round::Stuck;
        }
        if stored == 0 && !started {
            Round::Stuck
        } else {
            Round::Progress
        }
    }

    fn commit(&self) -> bool {
        self.last_commit.set(Instant::now());
        match self.store.commit() {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "committing fetched blocks failed");
                false
            }
        }
    }

    fn keep_fetched(&self, f: Fetching) -> usize {
        let asked = f.asked.len();
        let mut stored = 0;
        for (id, r) in f.wait() {
            match r {
                // fetch_blocks returns only bytes it checked against their id.
                Ok(data) => {
                    keep(&self.store, id, &data);
                    stored += 1;
                }
                Err(e) => tracing::debug!(block = %id, error = %e, "block not fetched"),
            }
        }
        tracing::debug!(asked, stored, "pulled blocks");
        stored
    }

    /// Drops the kernel's cached attributes, pages and names of what the apply changed.
    fn invalidate(&self, r: &ApplyReport) {
        let Some(n) = self.notifier.get() else {
            return;
        };
        for &ino in &r.changed_inodes {
            quiet(n.inval_inode(INodeNo(ino), 0, 0));
        }
        for (parent, name) in &r.changed_entries {
            quiet(n.inval_entry(INodeNo(*parent), OsStr::from_bytes(name)));
        }
    }
}

/// ENOENT means the kernel had nothing cached: not an error.
fn quiet(r: std::io::Result<()>) {
    if let Err(e) = r
        && e.raw_os_error() != Some(libc::ENOENT)
    {
        tracing::debug!(error = %e, "cache invalidation failed");
    }
}
