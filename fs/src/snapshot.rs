//! Snapshots: the live tree serialised into encrypted directory blocks, browsable read-only
//! under the hidden `/.snapshots`.
use crate::attr::{Attr, DirEntry, Ino};
use crate::core::Core;
use crate::{FsError, SnapshotInfo};

/// Name of the hidden snapshot directory in the root.
pub(crate) const SNAP_DIR: &[u8] = b".snapshots";
/// High bit marking virtual (snapshot) inode numbers.
const VIRT: Ino = 1 << 63;
/// The virtual inode of `/.snapshots`.
pub(crate) const SNAP_ROOT: Ino = VIRT | 1;

/// Whether `ino` is a virtual snapshot inode.
pub(crate) fn is_virtual(ino: Ino) -> bool {
    ino & VIRT != 0
}

/// Virtual inodes handed out for browsing snapshots.
#[derive(Default)]
pub(crate) struct SnapView {}

impl Core {
    pub(crate) fn snapshot(&self, _name: &str) -> Result<SnapshotInfo, FsError> {
        Err(FsError::NotSupported)
    }
    pub(crate) fn snapshots(&self) -> Result<Vec<SnapshotInfo>, FsError> {
        Ok(Vec::new())
    }
    pub(crate) fn remove_snapshot(&self, _name: &str) -> Result<(), FsError> {
        Err(FsError::NotFound)
    }
    pub(crate) fn snap_lookup(&self, _p: Ino, _name: &[u8]) -> Result<Attr, FsError> {
        Err(FsError::NotFound)
    }
    pub(crate) fn snap_getattr(&self, _ino: Ino) -> Result<Attr, FsError> {
        Err(FsError::NotFound)
    }
    pub(crate) fn snap_readlink(&self, _ino: Ino) -> Result<Vec<u8>, FsError> {
        Err(FsError::NotFound)
    }
    pub(crate) fn snap_open(&self, _ino: Ino) -> Result<u64, FsError> {
        Err(FsError::NotFound)
    }
    pub(crate) fn snap_read(&self, _ino: Ino, _off: u64, _len: usize) -> Result<Vec<u8>, FsError> {
        Err(FsError::NotFound)
    }
    pub(crate) fn snap_release(&self, _fh: u64) -> Result<(), FsError> {
        Ok(())
    }
    pub(crate) fn snap_readdir(&self, _ino: Ino, _after: u64, _max: usize) -> Result<Vec<DirEntry>, FsError> {
        Err(FsError::NotFound)
    }
}

impl Core {
    pub(crate) fn snapshot_blocks(
        &self,
        _live: &mut std::collections::HashSet<blockstore::BlockId>,
        _problems: &mut Vec<String>,
    ) -> Result<(), FsError> {
        Ok(())
    }
    pub(crate) fn check_snapshots(&self, _r: &mut crate::FsckReport) -> Result<(), FsError> {
        Ok(())
    }
}
