//! Early writeback: data files are synced in the background as they grow, not only at commit.
//!
//! Why: the kernel leaves written pages dirty until a sync (or until gigabytes pile up), so a
//! large write ended by `fsync` first spent CPU sealing everything and then waited for the
//! disk to take it all. Syncing every [`EARLY_SYNC_BYTES`] on a background thread lets the
//! disk work while the next blocks are sealed; the commit then syncs only the tail.
//!
//! Errors: a failed sync reports its error to that call only (the kernel's per-descriptor
//! error cursor advances), so the commit's own sync might succeed after pages were lost. The
//! failure is therefore kept in `failed` and the next commit fails with it (and rolls back).
//! The background thread holds that lock across its sync, and the commit holds it across its
//! own syncs and the check, so a failure is either seen by the commit or happens after it.
//! Lock order: the store's `state` before `failed`.
use crate::StoreError;
use crate::error::io_error;
use parking_lot::{Mutex, MutexGuard};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

/// Bytes handed to the OS between background syncs of the active data file.
pub(super) const EARLY_SYNC_BYTES: u64 = 32 << 20;

/// One file to sync.
struct Kick {
    path: PathBuf,
    file: Arc<File>,
}

/// The background syncer of a store.
pub(super) struct EarlySync {
    tx: Option<Sender<Kick>>,
    failed: Arc<Mutex<Option<StoreError>>>,
    /// Tests make the next background sync fail.
    #[cfg(test)]
    pub(super) fail_next: Arc<std::sync::atomic::AtomicBool>,
    #[cfg(test)]
    pub(super) done: Arc<std::sync::atomic::AtomicUsize>,
}

impl EarlySync {
    /// Starts the thread; without one (spawn failed) syncs happen at commit only.
    pub(super) fn start() -> Self {
        let (tx, rx) = channel::<Kick>();
        let failed = Arc::new(Mutex::new(None));
        let mut s = EarlySync {
            tx: None,
            failed: failed.clone(),
            #[cfg(test)]
            fail_next: Arc::default(),
            #[cfg(test)]
            done: Arc::default(),
        };
        let worker = Worker {
            rx,
            failed,
            #[cfg(test)]
            fail_next: s.fail_next.clone(),
            #[cfg(test)]
            done: s.done.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name("fossa-store-sync".into())
            .spawn(move || worker.run());
        match spawned {
            Ok(_) => s.tx = Some(tx),
            Err(e) => {
                tracing::warn!(error = %e, "no early-writeback thread; syncing at commit only")
            }
        }
        s
    }

    /// Asks for a background sync of `file` (never blocks).
    pub(super) fn kick(&self, path: PathBuf, file: Arc<File>) {
        if let Some(tx) = &self.tx {
            // A gone thread only means no early syncs: the commit still syncs everything.
            let _ = tx.send(Kick { path, file });
        }
    }

    /// Held by a commit across its syncs; [`Failures::take`] then reports a background
    /// failure.
    pub(super) fn hold(&self) -> Failures<'_> {
        Failures(self.failed.lock())
    }
}

/// The background failure slot, locked.
pub(super) struct Failures<'a>(MutexGuard<'a, Option<StoreError>>);

impl Failures<'_> {
    /// The first background sync failure since the last call, if any.
    pub(super) fn take(&mut self) -> Result<(), StoreError> {
        self.0.take().map_or(Ok(()), Err)
    }
}

struct Worker {
    rx: Receiver<Kick>,
    failed: Arc<Mutex<Option<StoreError>>>,
    #[cfg(test)]
    fail_next: Arc<std::sync::atomic::AtomicBool>,
    #[cfg(test)]
    done: Arc<std::sync::atomic::AtomicUsize>,
}

impl Worker {
    fn run(self) {
        while let Ok(first) = self.rx.recv() {
            // Kicks that queued up meanwhile: one sync per file covers them.
            let mut kicks = vec![first];
            kicks.extend(self.rx.try_iter());
            kicks.dedup_by(|a, b| Arc::ptr_eq(&a.file, &b.file));
            for k in kicks {
                self.sync(&k);
            }
        }
    }

    fn sync(&self, k: &Kick) {
        let mut failed = self.failed.lock();
        let r = k.file.sync_data();
        #[cfg(test)]
        let r = match self
            .fail_next
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            true => Err(std::io::Error::other("injected sync failure")),
            false => r,
        };
        if let Err(e) = r {
            tracing::error!(path = %k.path.display(), error = %e, "background sync failed");
            failed.get_or_insert(io_error(&k.path, e));
        }
        #[cfg(test)]
        self.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}
