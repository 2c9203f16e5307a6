//! Options of an [`crate::Fs`] and the reports its maintenance operations return.
use std::time::SystemTime;

/// Tuning of an [`crate::Fs`].
#[derive(Clone, Debug)]
pub struct FsOptions {
    /// Buffered bytes per open file before they are chunked and stored in the background.
    pub file_dirty_limit: usize,
    /// Buffered bytes across all files before writers wait for the background flush.
    pub total_dirty_limit: usize,
    /// Mount read-only.
    pub read_only: bool,
}

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions {
            file_dirty_limit: 16 << 20,
            total_dirty_limit: 256 << 20,
            read_only: false,
        }
    }
}

/// A snapshot as listed by [`crate::Fs::snapshots`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its name (the directory under `.snapshots/`).
    pub name: String,
    /// When it was taken.
    pub time: SystemTime,
}

/// Volume-level counts for `fossa status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VolumeStats {
    /// Inodes in use.
    pub inodes: u64,
    /// Regular files.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Sum of file sizes.
    pub logical_bytes: u64,
    /// Snapshots retained.
    pub snapshots: u64,
}

/// Result of [`crate::Fs::fsck`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Inodes checked.
    pub inodes: u64,
    /// Blocks reachable from the live tree and snapshots, each read and verified.
    pub blocks: u64,
    /// Problems found, one line each (block ids, inode numbers, and the path of a damaged
    /// file: fsck runs on an unlocked volume).
    pub problems: Vec<String>,
    /// What the block store's own check found and repaired.
    pub store: blockstore::FsckReport,
    /// Blocks of a rebuilt block index that nothing reaches, made Cached (repair mode).
    pub reclassified: usize,
}

/// Result of [`crate::Fs::gc`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blocks reachable (kept).
    pub live_blocks: u64,
    /// What the store removed and reclaimed.
    pub store: blockstore::GcStats,
}
