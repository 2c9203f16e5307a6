//! The store. PLACEHOLDER: an in-memory implementation of the public API so that upper layers
//! can build against it; the real append-only files + redb index replace it.
use crate::{BlockId, StoreError};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Storage class of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Our own data: kept until GC finds it unreachable.
    Own,
    /// Someone else's block fetched for reading: LRU-evicted under the cache quota.
    Cached,
}

/// Options for [`BlockStore::open`].
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

/// Counts reported by [`BlockStore::stats`].
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

/// Result of [`BlockStore::gc`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Blocks deleted.
    pub blocks_removed: u64,
    /// Bytes of blocks deleted.
    pub bytes_removed: u64,
    /// Bytes of disk space returned by compaction.
    pub bytes_reclaimed: u64,
}

/// Result of [`BlockStore::fsck`].
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
}

struct Entry {
    data: Vec<u8>,
    class: Class,
    pinned: bool,
}

/// A content-addressed block store. `Send + Sync`; all methods take `&self`.
pub struct BlockStore {
    dir: PathBuf,
    blocks: Mutex<HashMap<BlockId, Entry>>,
}

impl BlockStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path, _opts: StoreOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        Ok(BlockStore {
            dir: dir.to_owned(),
            blocks: Mutex::new(HashMap::new()),
        })
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `data`, returning its id. Idempotent; a block stored as Cached and put again as
    /// Own becomes Own. Not durable until [`BlockStore::commit`].
    pub fn put(&self, data: &[u8], class: Class) -> Result<BlockId, StoreError> {
        let id = BlockId::of(data);
        let mut blocks = self.blocks.lock();
        let e = blocks.entry(id).or_insert(Entry {
            data: data.to_vec(),
            class,
            pinned: false,
        });
        if class == Class::Own {
            e.class = Class::Own;
        }
        Ok(id)
    }

    /// Returns the verified bytes of `id`.
    pub fn get(&self, id: &BlockId) -> Result<Vec<u8>, StoreError> {
        let blocks = self.blocks.lock();
        let e = blocks.get(id).ok_or(StoreError::NotFound(*id))?;
        let actual = BlockId::of(&e.data);
        if actual != *id {
            return Err(StoreError::Corrupt { id: *id, actual });
        }
        Ok(e.data.clone())
    }

    /// Whether the block is present.
    pub fn has(&self, id: &BlockId) -> Result<bool, StoreError> {
        Ok(self.blocks.lock().contains_key(id))
    }

    /// Marks a block as never to be collected or evicted.
    pub fn pin(&self, id: &BlockId) -> Result<(), StoreError> {
        let mut blocks = self.blocks.lock();
        blocks.get_mut(id).ok_or(StoreError::NotFound(*id))?.pinned = true;
        Ok(())
    }

    /// Undoes [`BlockStore::pin`].
    pub fn unpin(&self, id: &BlockId) -> Result<(), StoreError> {
        let mut blocks = self.blocks.lock();
        blocks.get_mut(id).ok_or(StoreError::NotFound(*id))?.pinned = false;
        Ok(())
    }

    /// Makes every block put so far durable: data synced, then the index committed.
    pub fn commit(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Deletes every Own block that is neither in `live` nor pinned, and compacts data files.
    pub fn gc(&self, live: &HashSet<BlockId>) -> Result<GcStats, StoreError> {
        let mut blocks = self.blocks.lock();
        let mut stats = GcStats::default();
        blocks.retain(|id, e| {
            let keep = e.class != Class::Own || e.pinned || live.contains(id);
            if !keep {
                stats.blocks_removed += 1;
                stats.bytes_removed += e.data.len() as u64;
            }
            keep
        });
        Ok(stats)
    }

    /// Reads and verifies every block; with `repair`, rebuilds damaged index entries.
    pub fn fsck(&self, _repair: bool) -> Result<FsckReport, StoreError> {
        let blocks = self.blocks.lock();
        let mut r = FsckReport::default();
        for (id, e) in blocks.iter() {
            r.blocks_checked += 1;
            if BlockId::of(&e.data) != *id {
                r.corrupt.push(*id);
            }
        }
        Ok(r)
    }

    /// Current counts.
    pub fn stats(&self) -> StoreStats {
        let blocks = self.blocks.lock();
        let mut s = StoreStats::default();
        for e in blocks.values() {
            match e.class {
                Class::Own => {
                    s.own_blocks += 1;
                    s.own_bytes += e.data.len() as u64;
                }
                Class::Cached => {
                    s.cached_blocks += 1;
                    s.cached_bytes += e.data.len() as u64;
                }
            }
            s.pinned_blocks += u64::from(e.pinned);
            s.disk_bytes += e.data.len() as u64;
        }
        s
    }
}
