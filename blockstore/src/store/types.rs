//! The store's public value types.
use crate::BlockId;

/// Storage class of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Our own data: kept until GC finds it unreachable.
    Own,
    /// Someone else's block fetched for reading: LRU-evicted under the cache quota.
    Cached,
}

/// Options for [`crate::BlockStore::open`].
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Byte quota for [`Class::Cached`] blocks.
    pub cache_quota: u64,
    /// A data file is closed and a new one started past this size.
    pub data_file_size: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_quota: 1 << 30,
            data_file_size: 1 << 30,
        }
    }
}

/// Counts reported by [`crate::BlockStore::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Blocks of class Own.
    pub own_blocks: u64,
    /// Bytes of class Own.
    pub own_bytes: u64,
    /// Blocks of class Cached.
    pub cached_blocks: u64,
    /// Bytes of class Cached.
    pub cached_bytes: u64,
    /// Pinned blocks (any class).
    pub pinned_blocks: u64,
    /// Bytes the data files take on disk.
    pub disk_bytes: u64,
}

/// Result of [`crate::BlockStore::gc`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Blocks deleted.
    pub blocks_removed: u64,
    /// Bytes of blocks deleted.
    pub bytes_removed: u64,
    /// Bytes of disk space returned by compaction.
    pub bytes_reclaimed: u64,
}

/// Result of [`crate::BlockStore::fsck`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Blocks read and verified.
    pub blocks_checked: u64,
    /// Blocks whose bytes do not match their id.
    pub corrupt: Vec<BlockId>,
    /// Index entries pointing outside the data files.
    pub dangling: Vec<BlockId>,
    /// Index entries rebuilt from data files (repair mode).
    pub repaired: u64,
    /// The blocks those entries are for, indexed as unpinned Own.
    pub rebuilt: Vec<BlockId>,
}
