//! The `Fs` handle: every filesystem operation, on `&self`, returning `Result<_, FsError>`.
//!
//! PLACEHOLDER: signatures are fixed (mountd's FUSE adapter is written against them); bodies
//! are filled in by the metadata layer.
#![allow(unused_variables, clippy::todo, missing_docs)]
use crate::FsError;
use crate::attr::*;
use crate::crypto::VolumeSecret;
use blockstore::{BlockSource, BlockStore};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

/// Tuning of an [`Fs`].
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

/// A snapshot as listed by [`Fs::snapshots`].
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

/// Result of [`Fs::fsck`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Inodes checked.
    pub inodes: u64,
    /// Blocks reachable from the live tree and snapshots, each read and verified.
    pub blocks: u64,
    /// Problems found, one line each (block ids and inode numbers, never names).
    pub problems: Vec<String>,
    /// What the block store's own check found and repaired.
    pub store: blockstore::FsckReport,
}

/// Result of [`Fs::gc`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blocks reachable (kept).
    pub live_blocks: u64,
    /// What the store removed and reclaimed.
    pub store: blockstore::GcStats,
}

/// The mounted filesystem core. `Send + Sync`.
pub struct Fs {}

impl Fs {
    /// Opens the volume whose metadata database is `meta_path` (created with an empty root
    /// directory owned by `root_owner` if absent), storing blocks in `store` and reading them
    /// through `source`.
    pub fn open(
        store: Arc<BlockStore>,
        source: Arc<dyn BlockSource>,
        meta_path: &Path,
        vs: &VolumeSecret,
        root_owner: Caller,
        opts: FsOptions,
    ) -> Result<Self, FsError> {
        todo!()
    }

    pub fn lookup(&self, parent: Ino, name: &[u8]) -> Result<Attr, FsError> {
        todo!()
    }
    pub fn getattr(&self, ino: Ino) -> Result<Attr, FsError> {
        todo!()
    }
    pub fn setattr(&self, ino: Ino, set: &SetAttr, fh: Option<u64>) -> Result<Attr, FsError> {
        todo!()
    }
    pub fn mknod(
        &self,
        who: Caller,
        parent: Ino,
        name: &[u8],
        kind: FileKind,
        perm: u16,
        rdev: u32,
    ) -> Result<Attr, FsError> {
        todo!()
    }
    pub fn mkdir(&self, who: Caller, parent: Ino, name: &[u8], perm: u16) -> Result<Attr, FsError> {
        todo!()
    }
    pub fn symlink(
        &self,
        who: Caller,
        parent: Ino,
        name: &[u8],
        target: &[u8],
    ) -> Result<Attr, FsError> {
        todo!()
    }
    pub fn readlink(&self, ino: Ino) -> Result<Vec<u8>, FsError> {
        todo!()
    }
    pub fn link(&self, ino: Ino, new_parent: Ino, new_name: &[u8]) -> Result<Attr, FsError> {
        todo!()
    }
    pub fn unlink(&self, parent: Ino, name: &[u8]) -> Result<(), FsError> {
        todo!()
    }
    pub fn rmdir(&self, parent: Ino, name: &[u8]) -> Result<(), FsError> {
        todo!()
    }
    pub fn rename(
        &self,
        parent: Ino,
        name: &[u8],
        new_parent: Ino,
        new_name: &[u8],
        mode: RenameMode,
    ) -> Result<(), FsError> {
        todo!()
    }
    pub fn create(
        &self,
        who: Caller,
        parent: Ino,
        name: &[u8],
        perm: u16,
        flags: OpenFlags,
    ) -> Result<(Attr, u64), FsError> {
        todo!()
    }
    pub fn open_file(&self, ino: Ino, flags: OpenFlags) -> Result<u64, FsError> {
        todo!()
    }
    pub fn read(&self, ino: Ino, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>, FsError> {
        todo!()
    }
    pub fn write(&self, ino: Ino, fh: u64, offset: u64, data: &[u8]) -> Result<u32, FsError> {
        todo!()
    }
    pub fn flush(&self, ino: Ino, fh: u64) -> Result<(), FsError> {
        todo!()
    }
    pub fn fsync(&self, ino: Ino, fh: Option<u64>, datasync: bool) -> Result<(), FsError> {
        todo!()
    }
    pub fn release(&self, ino: Ino, fh: u64) -> Result<(), FsError> {
        todo!()
    }
    pub fn readdir(&self, ino: Ino, after: u64, max: usize) -> Result<Vec<DirEntry>, FsError> {
        todo!()
    }
    pub fn statfs(&self) -> Result<StatFs, FsError> {
        todo!()
    }
    pub fn setxattr(
        &self,
        ino: Ino,
        name: &[u8],
        value: &[u8],
        mode: XattrMode,
    ) -> Result<(), FsError> {
        todo!()
    }
    pub fn getxattr(&self, ino: Ino, name: &[u8]) -> Result<Vec<u8>, FsError> {
        todo!()
    }
    pub fn listxattr(&self, ino: Ino) -> Result<Vec<Vec<u8>>, FsError> {
        todo!()
    }
    pub fn removexattr(&self, ino: Ino, name: &[u8]) -> Result<(), FsError> {
        todo!()
    }
    pub fn fallocate(
        &self,
        ino: Ino,
        fh: u64,
        offset: u64,
        len: u64,
        keep_size: bool,
    ) -> Result<(), FsError> {
        todo!()
    }
    pub fn sync(&self) -> Result<(), FsError> {
        todo!()
    }
    pub fn snapshot(&self, name: &str) -> Result<SnapshotInfo, FsError> {
        todo!()
    }
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>, FsError> {
        todo!()
    }
    pub fn remove_snapshot(&self, name: &str) -> Result<(), FsError> {
        todo!()
    }
    pub fn gc(&self) -> Result<GcReport, FsError> {
        todo!()
    }
    pub fn fsck(&self, repair: bool) -> Result<FsckReport, FsError> {
        todo!()
    }
    pub fn stats(&self) -> Result<VolumeStats, FsError> {
        todo!()
    }
}
