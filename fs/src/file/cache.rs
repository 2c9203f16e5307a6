//! A byte-bounded LRU of decrypted chunks and decoded pointer blocks, keyed by block id.
//!
//! Why: a 64 KiB chunk serves sixteen 4 KiB reads, and FUSE splits sequential reads into 128 KiB
//! requests that straddle chunks; without the cache each request would re-fetch, re-verify and
//! re-decrypt the same blocks. Keying by id alone is sound because an id fixes the ciphertext,
//! hence the plaintext and the convergent key.
use crate::format::pointer::Entry;
use blockstore::BlockId;
use lru::LruCache;
use parking_lot::Mutex;
use std::ops::Deref;
use std::sync::Arc;

/// A decrypted data chunk, shared between the cache, read-ahead and readers.
///
/// Holds the whole block plaintext, type byte included, and derefs to the payload after it:
/// stripping the byte in place would move every chunk's bytes once more.
#[derive(Clone)]
pub(crate) struct ChunkData(Arc<Vec<u8>>);

impl ChunkData {
    /// Wraps a block plaintext whose first byte is the block type.
    pub(crate) fn new(plaintext: Vec<u8>) -> Self {
        ChunkData(Arc::new(plaintext))
    }
}

impl Deref for ChunkData {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.get(1..).unwrap_or_default()
    }
}

/// A cached, already validated block.
#[derive(Clone)]
pub(crate) enum Cached {
    /// Plaintext payload of a data chunk.
    Chunk(ChunkData),
    /// Height and entries of a pointer block (structure validated for that height; lengths
    /// are checked per use, since another parent could declare a different total).
    Pointer(u8, Arc<Vec<Entry>>),
}

impl Cached {
    /// Approximate memory weight in bytes.
    fn weight(&self) -> usize {
        match self {
            Cached::Chunk(d) => d.len() + 64,
            Cached::Pointer(_, e) => e.len() * size_of::<Entry>() + 64,
        }
    }
}

struct Inner {
    lru: LruCache<BlockId, Cached>,
    bytes: usize,
}

/// The cache; lock held only for a lookup or an insert, never across I/O or crypto.
pub(crate) struct BlockCache {
    inner: Mutex<Inner>,
    budget: usize,
}

impl BlockCache {
    /// A cache holding at most about `budget` bytes (0 disables it).
    pub(crate) fn new(budget: usize) -> Self {
        BlockCache {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            budget,
        }
    }

    /// The cached block, marking it recently used.
    pub(crate) fn get(&self, id: &BlockId) -> Option<Cached> {
        self.inner.lock().lru.get(id).cloned()
    }

    /// Whether `id` is cached, without marking it used (read-ahead must not reorder the LRU).
    pub(crate) fn contains(&self, id: &BlockId) -> bool {
        self.inner.lock().lru.contains(id)
    }

    /// Inserts a block, evicting least recently used ones past the budget.
    pub(crate) fn insert(&self, id: BlockId, v: Cached) {
        let w = v.weight();
        if w > self.budget {
            return;
        }
        let mut g = self.inner.lock();
        if let Some(old) = g.lru.put(id, v) {
            g.bytes -= old.weight();
        }
        g.bytes += w;
        while g.bytes > self.budget {
            match g.lru.pop_lru() {
                Some((_, old)) => g.bytes -= old.weight(),
                None => break,
            }
        }
    }

    /// Bytes currently held.
    pub(crate) fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Drops everything (benchmarks measure cold reads this way).
    pub(crate) fn clear(&self) {
        let mut g = self.inner.lock();
        g.lru.clear();
        g.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_by_bytes() {
        let c = BlockCache::new(1000);
        for i in 0..10u8 {
            c.insert(
                BlockId([i; 32]),
                Cached::Chunk(ChunkData::new(vec![0; 301])),
            );
        }
        assert!(c.bytes() <= 1000);
        assert!(c.get(&BlockId([9; 32])).is_some());
        assert!(c.get(&BlockId([0; 32])).is_none());
        c.insert(
            BlockId([42; 32]),
            Cached::Chunk(ChunkData::new(vec![0; 5001])),
        );
        assert!(c.get(&BlockId([42; 32])).is_none());
        c.clear();
        assert_eq!(c.bytes(), 0);
    }
}
