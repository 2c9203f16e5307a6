//! Multi-device sync, the fs side (docs/protocol.md, "Model" and "Merge rules"): the path
//! index with version vectors, scanning local changes into signed sealed updates, and merging
//! updates from peers into the live tree (conflict copies, tombstones).
//!
//! The network never sees plaintext: updates leave this module sealed (crypto.md, "Index
//! updates") and signed through [`UpdateSigner`]; `fossa_net` moves them as opaque bytes.
//!
//! Sync sits on top of the fs core as a client of its change feed (`meta::feed`): the
//! metadata cache records what changed and calls the hook; a scan reads and clears the feed.
//! Sync's own state (the index, peers' positions) lives in the volume's [`SyncHandle`] slot,
//! never in the core.
//!
//! Threading (for the daemon): every [`SyncHandle`] method takes the sync lock, so they run
//! one at a time. [`SyncHandle::scan`] and [`SyncHandle::apply`] flush buffered data and
//! commit durably (they block on disk I/O) and hold the state lock while they compare and
//! merge, so FUSE operations wait for them; keep apply batches bounded (≤ 1,000 updates). The
//! first scan after [`SyncHandle::enable`] walks the whole tree; later scans look only at
//! directories and inodes changed since. [`SyncHandle::updates`], [`SyncHandle::progress`],
//! [`SyncHandle::seq`] and [`SyncHandle::index_id`] only read memory; [`SyncHandle::missing`]
//! and [`SyncHandle::status`] check the block store and read local pointer blocks. The change
//! hook is called under the state lock on every change of the tree (each write included): it
//! must only set a flag or send on a channel, never call back into [`crate::Fs`]. Merges do
//! not call it.
mod apply;
mod delta;
mod entry;
mod index;
mod live;
mod merge;
mod missing;
mod paths;
mod scan;
mod version;

pub use crate::format::sync::{Entry, EntryKind, Xattrs};
pub use version::{Version, device_display, short_id};

pub(crate) use index::SyncState;

use crate::FsError;
use crate::core::Core;
use crate::meta::Batch;
use blockstore::BlockId;
use parking_lot::Mutex;
use scan::Hold;
use std::sync::Arc;

/// Signs updates as this device (implemented by mountd with the device key).
pub trait UpdateSigner: Send + Sync {
    /// This device's DeviceId.
    fn device(&self) -> [u8; 32];
    /// Ed25519 signature of `msg`.
    fn sign(&self, msg: &[u8]) -> [u8; 64];
}

/// Checks that `author` is a current member and `sig` is its signature of `msg`.
pub trait UpdateVerifier: Send + Sync {
    /// True if valid.
    fn verify(&self, author: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool;
}

pub use crate::meta::feed::ChangeHook;

/// What [`SyncHandle::enable`] needs.
#[derive(Clone)]
pub struct SyncConfig {
    /// The volume id (bound into signatures).
    pub volume: [u8; 16],
    /// Signs this device's updates.
    pub signer: Arc<dyn UpdateSigner>,
    /// Checks peers' updates.
    pub verifier: Arc<dyn UpdateVerifier>,
    /// Told about local changes (the daemon debounces and scans).
    pub on_change: ChangeHook,
}

/// Outcome of [`SyncHandle::apply`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Updates that changed the tree.
    pub applied: usize,
    /// Updates already known or dominated.
    pub ignored: usize,
    /// Conflict copies made.
    pub conflicts: usize,
    /// Updates refused (bad signature, bad seal, bad entry); logged.
    pub rejected: usize,
    /// Inodes whose content or attributes changed (the FUSE adapter invalidates them).
    pub changed_inodes: Vec<u64>,
    /// Directory entries added, removed or replaced: (parent inode, name).
    pub changed_entries: Vec<(u64, Vec<u8>)>,
}

/// Sync state of one path, for `fossa status PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathStatus {
    /// All blocks of the file are in the local store.
    pub local: bool,
    /// Local changes not yet scanned into the index.
    pub pending: bool,
    /// The version vector: (short device id, counter).
    pub version: Vec<(u64, u64)>,
    /// The device that made this version.
    pub author: [u8; 32],
}

/// The sync state of a volume, `None` until [`SyncHandle::enable`] (lock before the core's
/// flush lock).
pub(crate) type SyncSlot = Mutex<Option<SyncState>>;

/// Sync on one open volume ([`crate::Fs::sync_handle`]): the index, scans of local changes, merges
/// of peers' updates.
pub struct SyncHandle<'a> {
    core: &'a Core,
    slot: &'a SyncSlot,
}

impl<'a> SyncHandle<'a> {
    /// The handle over `core` whose sync state is `slot`.
    pub(crate) fn new(core: &'a Core, slot: &'a SyncSlot) -> Self {
        SyncHandle { core, slot }
    }
    /// Turns sync on for this volume (index created on first use). Calling it again
    /// replaces the configuration. The first scan afterwards indexes the whole tree.
    pub fn enable(&self, cfg: SyncConfig) -> Result<(), FsError> {
        self.core.enable_sync(self.slot, cfg)
    }
    /// This index's id (0 before [`SyncHandle::enable`]).
    pub fn index_id(&self) -> u64 {
        self.slot.lock().as_ref().map_or(0, |s| s.index_id)
    }
    /// Highest local sequence number.
    pub fn seq(&self) -> u64 {
        self.slot.lock().as_ref().map_or(0, |s| s.seq)
    }
    /// Flushes and commits buffered data, then records every local change since the last scan
    /// as a new signed update. Returns the local sequence afterwards.
    pub fn scan(&self) -> Result<u64, FsError> {
        self.core.sync_scan(self.slot)
    }
    /// Signed updates with sequence > `after`, ascending, at most `max`.
    pub fn updates(&self, after: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>, FsError> {
        let g = self.slot.lock();
        Ok(g.as_ref().ok_or(FsError::NotSupported)?.updates(after, max))
    }
    /// Saved position in `peer`'s index: (index_id, last applied sequence); (0, 0) if none.
    pub fn progress(&self, peer: &[u8; 32]) -> (u64, u64) {
        self.slot
            .lock()
            .as_ref()
            .map_or((0, 0), |s| s.progress(peer))
    }
    /// Scans, then merges `updates` from `peer`'s index and saves (index_id, upto) for `peer`,
    /// durably, in one transaction.
    pub fn apply(
        &self,
        peer: &[u8; 32],
        index_id: u64,
        upto: u64,
        updates: &[Vec<u8>],
    ) -> Result<ApplyReport, FsError> {
        (self.core).sync_apply(self.slot, *peer, (index_id, upto), updates)
    }
    /// Up to `max` blocks that live files need and the local store lacks (pointer blocks
    /// first: their children are listed once they are local). Empty when all data is local.
    pub fn missing(&self, max: usize) -> Result<Vec<BlockId>, FsError> {
        self.core.sync_missing(self.slot, max)
    }
    /// Sync state of `path` (relative to the volume root).
    pub fn status(&self, path: &[u8]) -> Result<PathStatus, FsError> {
        self.core.sync_status(self.slot, path)
    }
    /// Paths where the live tree differs from the index, by a full walk (a consistency check
    /// for tests: empty right after [`SyncHandle::scan`] when nothing changed since).
    #[doc(hidden)]
    pub fn check(&self) -> Result<Vec<Vec<u8>>, FsError> {
        self.core.sync_check(self.slot)
    }
}

impl Core {
    fn enable_sync(&self, slot: &SyncSlot, cfg: SyncConfig) -> Result<(), FsError> {
        let mut g = slot.lock();
        if let Some(s) = g.as_mut() {
            s.cfg = cfg.clone();
            self.st.lock().feed.hook = Some(cfg.on_change);
            return Ok(());
        }
        let (mut s, new_super) = SyncState::load(&self.db, &self.keys, cfg.clone())?;
        if let Some(sup) = new_super {
            let b = Batch {
                sync_super: Some(sup),
                ..Batch::default()
            };
            self.db.commit(&b, true)?;
        }
        let mut st = self.st.lock();
        let files = scan::walk(&mut st)?.into_values();
        let files = files.filter(|l| l.state.kind == EntryKind::File);
        s.incomplete = files.map(|l| l.ino).collect();
        st.feed.hook = Some(cfg.on_change);
        st.feed.dirty = true;
        *g = Some(s);
        Ok(())
    }

    fn sync_scan(&self, slot: &SyncSlot) -> Result<u64, FsError> {
        let mut g = slot.lock();
        let ss = g.as_mut().ok_or(FsError::NotSupported)?;
        let r = self.flush_with(true, |st, b| ss.scan(self, st, b, Hold::Defer));
        self.settle(ss, r)?;
        Ok(ss.seq)
    }

    fn sync_apply(
        &self,
        slot: &SyncSlot,
        peer: [u8; 32],
        at: (u64, u64),
        blobs: &[Vec<u8>],
    ) -> Result<ApplyReport, FsError> {
        let mut g = slot.lock();
        let ss = g.as_mut().ok_or(FsError::NotSupported)?;
        let mut report = ApplyReport::default();
        let updates = apply::open_all(self, ss, blobs, &mut report);
        let r = self.flush_with(true, |st, b| {
            // Files being written are captured too: a peer's version of one must meet the
            // local one as a conflict, not replace it.
            ss.scan(self, st, b, Hold::Capture)?;
            ss.apply(self, st, updates, (&mut report, b))?;
            ss.set_progress(peer, at, b);
            Ok(())
        });
        self.settle(ss, r)?;
        Ok(report)
    }

    /// After a failed commit the in-memory index may be ahead of the database: reload it,
    /// and rescan the tree next time.
    fn settle(&self, ss: &mut SyncState, r: Result<(), FsError>) -> Result<(), FsError> {
        if r.is_err() {
            let (fresh, _) = SyncState::load(&self.db, &self.keys, ss.cfg.clone())?;
            *ss = fresh;
            self.st.lock().feed.dirty = true;
        }
        r
    }
}
