//! The hit-counted LRU over unpinned [`crate::Class::Cached`] blocks.
//!
//! Only bookkeeping lives here; the store removes evicted blocks from its index. Own and
//! pinned blocks are never inserted, so they can never be chosen for eviction.
use crate::BlockId;
use lru::LruCache;

struct Slot {
    len: u64,
    hits: u32,
}

/// LRU order, hit counts and the byte total of cached blocks.
pub(super) struct Cache {
    lru: LruCache<BlockId, Slot>,
    bytes: u64,
    quota: u64,
}

impl Cache {
    /// An empty cache with a byte quota.
    pub(super) fn new(quota: u64) -> Self {
        Cache {
            lru: LruCache::unbounded(),
            bytes: 0,
            quota,
        }
    }

    /// Starts tracking a block as most recently used.
    pub(super) fn insert(&mut self, id: BlockId, len: u64, hits: u32) {
        if let Some(old) = self.lru.put(
            id,
            Slot {
                len,
                hits: hits.max(1),
            },
        ) {
            self.bytes -= old.len;
        }
        self.bytes += len;
    }

    /// Stops tracking a block (pinned, upgraded to Own, or deleted).
    pub(super) fn remove(&mut self, id: &BlockId) {
        if let Some(old) = self.lru.pop(id) {
            self.bytes -= old.len;
        }
    }

    /// Records a hit: the block becomes most recently used.
    pub(super) fn touch(&mut self, id: &BlockId) {
        if let Some(slot) = self.lru.get_mut(id) {
            slot.hits = slot.hits.saturating_add(1);
        }
    }

    /// Current hit count of a tracked block.
    pub(super) fn hits(&self, id: &BlockId) -> Option<u32> {
        self.lru.peek(id).map(|s| s.hits)
    }

    /// Bytes of tracked blocks.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Pops blocks until the total is within the quota and returns their ids. The least
    /// recently used block goes first, unless it has more than one hit: then its hits are
    /// halved and it moves to the front again (a second chance).
    pub(super) fn evict(&mut self) -> Vec<BlockId> {
        let mut out = Vec::new();
        while self.bytes > self.quota {
            let Some((id, mut slot)) = self.lru.pop_lru() else {
                break;
            };
            if slot.hits > 1 {
                slot.hits /= 2;
                self.lru.put(id, slot);
            } else {
                self.bytes -= slot.len;
                out.push(id);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> BlockId {
        BlockId([n; 32])
    }

    #[test]
    fn evicts_lru_first() {
        let mut c = Cache::new(300);
        for n in 0..3 {
            c.insert(id(n), 100, 0);
        }
        assert!(c.evict().is_empty());
        c.insert(id(3), 100, 0);
        assert_eq!(c.evict(), vec![id(0)]);
        assert_eq!(c.bytes(), 300);
    }

    #[test]
    fn hits_buy_a_second_chance() {
        let mut c = Cache::new(200);
        c.insert(id(0), 100, 0);
        c.insert(id(1), 100, 0);
        c.touch(&id(0));
        c.touch(&id(1));
        c.touch(&id(0));
        // 1 (2 hits) and 0 (3 hits) are older but hit more often than the newcomer: they
        // are halved and kept, the newcomer with a single hit goes.
        c.insert(id(2), 100, 0);
        assert_eq!(c.evict(), vec![id(2)]);
        assert_eq!(c.bytes(), 200);
        assert_eq!(c.hits(&id(0)), Some(1));
        // Now both have one hit: plain LRU order.
        c.insert(id(3), 100, 0);
        assert_eq!(c.evict(), vec![id(1)]);
    }

    #[test]
    fn remove_untracks() {
        let mut c = Cache::new(100);
        c.insert(id(0), 100, 0);
        c.remove(&id(0));
        c.insert(id(1), 100, 0);
        assert!(c.evict().is_empty());
    }
}
