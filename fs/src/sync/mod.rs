//! Multi-device sync, the fs side (docs/protocol.md, "Model" and "Merge rules"): the path
//! index with version vectors, scanning local changes into signed sealed updates, and merging
//! updates from peers into the live tree (conflict copies, tombstones).
//!
//! The network never sees plaintext: updates leave this module sealed (crypto.md, "Index
//! updates") and signed through [`UpdateSigner`]; `fossa_net` moves them as opaque bytes.
use crate::{Fs, FsError};
use blockstore::BlockId;
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

/// Called (cheaply, must not block) after local changes that a scan should pick up.
pub type ChangeHook = Arc<dyn Fn() + Send + Sync>;

/// What [`Fs::enable_sync`] needs.
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

/// Outcome of [`Fs::sync_apply`].
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

impl Fs {
    /// Turns sync on for this volume (index created on first use).
    pub fn enable_sync(&self, _cfg: SyncConfig) -> Result<(), FsError> {
        Err(FsError::NotSupported)
    }
    /// This index's id.
    pub fn sync_index_id(&self) -> u64 {
        0
    }
    /// Highest local sequence number.
    pub fn sync_seq(&self) -> u64 {
        0
    }
    /// Flushes and commits buffered data, then records every local change since the last scan
    /// as a new signed update. Returns the local sequence afterwards.
    pub fn sync_scan(&self) -> Result<u64, FsError> {
        Err(FsError::NotSupported)
    }
    /// Signed updates with sequence > `after`, ascending, at most `max`.
    pub fn sync_updates(&self, _after: u64, _max: usize) -> Result<Vec<(u64, Vec<u8>)>, FsError> {
        Err(FsError::NotSupported)
    }
    /// Saved position in `peer`'s index: (index_id, last applied sequence); (0, 0) if none.
    pub fn sync_progress(&self, _peer: &[u8; 32]) -> (u64, u64) {
        (0, 0)
    }
    /// Scans, then merges `updates` from `peer`'s index and saves (index_id, upto) for `peer`,
    /// durably, in one transaction.
    pub fn sync_apply(
        &self,
        _peer: &[u8; 32],
        _index_id: u64,
        _upto: u64,
        _updates: &[Vec<u8>],
    ) -> Result<ApplyReport, FsError> {
        Err(FsError::NotSupported)
    }
    /// Up to `max` blocks that live files need and the local store lacks (pointer blocks
    /// first: their children are listed once they are local). Empty when all data is local.
    pub fn sync_missing(&self, _max: usize) -> Result<Vec<BlockId>, FsError> {
        Err(FsError::NotSupported)
    }
    /// Sync state of `path` (relative to the volume root).
    pub fn sync_status(&self, _path: &[u8]) -> Result<PathStatus, FsError> {
        Err(FsError::NotSupported)
    }
}
