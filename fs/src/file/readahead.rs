//! Chunk fetching and sequential read-ahead.
//!
//! Why: FUSE hands us at most 128 KiB–1 MiB per request and waits for each reply, so a cold
//! sequential read would pay block I/O, BLAKE3 and AES-GCM for every chunk in the request's
//! critical path. When a file's reads are sequential we fetch and decrypt the next chunks on a
//! small dedicated pool, into the block cache, so later requests find them there.
//!
//! Soundness: everything is keyed by block id, which fixes the plaintext, so a prefetched chunk
//! can never be served for the wrong content; an overwrite gives the file a new root and new ids.
//! Bounds: the window is at most a quarter of the cache, so prefetching cannot evict what the
//! reader is about to use; a fetch already in flight is waited for, not repeated.
use super::BlockKind;
use super::cache::{BlockCache, Cached, ChunkData};
use crate::FsError;
use crate::crypto::{BlockRef, VolumeKeys};
use blockstore::{BlockId, BlockSource};
use lru::LruCache;
use parking_lot::{Condvar, Mutex};
use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most read-ahead per stream: enough to cover several 1 MiB requests and a disk's latency.
const MAX_WINDOW: u64 = 8 << 20;
/// How far out of order a request may arrive and still count as sequential (the kernel issues
/// async reads from several threads); small so random reads rarely trigger read-ahead. Large
/// requests get eight times their length: the kernel's read-ahead sends a window of several
/// 1 MiB requests at once, and several FUSE threads serve them in any order (a fixed 256 KiB
/// reset a fifth of the streams).
const SLACK: u64 = 256 << 10;
/// Files whose read position is tracked at once.
const STREAMS: usize = 32;
/// Threads decrypting ahead; separate from rayon's global pool so that a reader waiting for an
/// in-flight chunk never waits on a job queued behind itself.
const THREADS: usize = 2;
/// Longest a reader waits for an in-flight fetch before doing it itself (a safety net only).
const WAIT: Duration = Duration::from_secs(2);

/// Fetches, verifies and decrypts blocks into the cache; shared with read-ahead jobs.
pub(crate) struct Fetcher {
    source: Arc<dyn BlockSource>,
    keys: Arc<VolumeKeys>,
    pub(crate) cache: BlockCache,
    inflight: Mutex<HashSet<BlockId>>,
    done: Condvar,
}

impl Fetcher {
    pub(crate) fn new(source: Arc<dyn BlockSource>, keys: Arc<VolumeKeys>, cache: usize) -> Self {
        Fetcher {
            source,
            keys,
            cache: BlockCache::new(cache),
            inflight: Mutex::new(HashSet::new()),
            done: Condvar::new(),
        }
    }

    /// The block's plaintext, type byte first.
    pub(crate) fn plaintext(&self, r: &BlockRef) -> Result<Vec<u8>, FsError> {
        let stored = self.source.get_block(&r.id)?;
        self.keys.open_block_owned(r, stored)
    }

    /// The payload of data chunk `r`, which must be exactly `len` bytes.
    pub(crate) fn chunk(&self, r: &BlockRef, len: u64) -> Result<ChunkData, FsError> {
        if let Some(d) = self.cached(r, len) {
            return Ok(d);
        }
        self.wait_inflight(&r.id);
        if let Some(d) = self.cached(r, len) {
            return Ok(d);
        }
        self.load(r, len)
    }

    fn cached(&self, r: &BlockRef, len: u64) -> Option<ChunkData> {
        match self.cache.get(&r.id) {
            Some(Cached::Chunk(d)) if d.len() as u64 == len => Some(d),
            _ => None,
        }
    }

    /// Fetches and checks a chunk and caches it.
    fn load(&self, r: &BlockRef, len: u64) -> Result<ChunkData, FsError> {
        let p = self.plaintext(r)?;
        if p.first() != Some(&(BlockKind::Data as u8)) || p.len() as u64 != len + 1 {
            return Err(FsError::BadBlock(r.id));
        }
        let d = ChunkData::new(p);
        self.cache.insert(r.id, Cached::Chunk(d.clone()));
        Ok(d)
    }

    fn wait_inflight(&self, id: &BlockId) {
        let deadline = Instant::now() + WAIT;
        let mut g = self.inflight.lock();
        while g.contains(id) {
            if self.done.wait_until(&mut g, deadline).timed_out() {
                return;
            }
        }
    }

    /// Whether no read-ahead fetch is in flight (tests wait for this).
    #[cfg(test)]
    pub(crate) fn idle(&self) -> bool {
        self.inflight.lock().is_empty()
    }

    /// Marks `id` in flight unless it is cached or already in flight.
    fn claim(&self, id: &BlockId) -> bool {
        !self.cache.contains(id) && self.inflight.lock().insert(*id)
    }

    /// Read-ahead job: errors are dropped, the reader will meet and report them itself.
    fn prefetch(&self, r: &BlockRef, len: u64) {
        let _ = self.load(r, len);
        self.inflight.lock().remove(&r.id);
        self.done.notify_all();
    }
}

/// Where a file's reads have got to.
struct Stream {
    /// End of the furthest read.
    next: u64,
    /// End of what has been scheduled for read-ahead.
    ahead: u64,
}

/// Sequential-read detection and the read-ahead pool.
pub(crate) struct ReadAhead {
    streams: Mutex<LruCache<BlockId, Stream>>,
    pool: Option<rayon::ThreadPool>,
    window: u64,
}

impl ReadAhead {
    /// Read-ahead sized for a cache of `cache` bytes (none if the cache is too small to hold it).
    pub(crate) fn new(cache: usize) -> Self {
        let window = MAX_WINDOW.min(cache as u64 / 4);
        let pool = (window >= u64::from(super::MAX_CHUNK))
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(THREADS)
                    .thread_name(|i| format!("fossa-readahead-{i}"))
                    .build()
                    .ok()
            })
            .flatten();
        ReadAhead {
            streams: Mutex::new(LruCache::new(NonZeroUsize::MIN.saturating_add(STREAMS - 1))),
            pool,
            window,
        }
    }

    /// Records a read of `off..end` of the file rooted at `root` (`size` bytes) and returns the
    /// range to prefetch, if the reads are sequential and the prefetched part is running low.
    pub(crate) fn advance(
        &self,
        root: BlockId,
        off: u64,
        end: u64,
        size: u64,
    ) -> Option<Range<u64>> {
        self.pool.as_ref()?;
        let mut s = self.streams.lock();
        if !s.contains(&root) {
            // Most files are read from the start: a first read at 0 already counts as
            // sequential, so read-ahead starts with the first request.
            let at = if off == 0 { 0 } else { end };
            s.put(
                root,
                Stream {
                    next: at,
                    ahead: at,
                },
            );
            if off != 0 {
                return None;
            }
        }
        let st = s.get_mut(&root)?;
        let slack = SLACK.max(8 * (end - off));
        if off + slack < st.next || off > st.next + slack {
            *st = Stream {
                next: end,
                ahead: end,
            };
            return None;
        }
        st.next = st.next.max(end);
        let want = (st.next + self.window).min(size);
        let from = st.ahead.max(st.next);
        // Schedule in batches of half a window: fewer tree walks and job submissions.
        if want <= from || (want - from < self.window / 2 && want < size) {
            return None;
        }
        st.ahead = want;
        Some(from..want)
    }

    /// Schedules fetches of `chunks` that are neither cached nor in flight.
    pub(crate) fn spawn(&self, fetch: &Arc<Fetcher>, chunks: Vec<(BlockRef, u64)>) {
        let Some(pool) = &self.pool else { return };
        for (r, len) in chunks {
            if fetch.claim(&r.id) {
                let f = fetch.clone();
                pool.spawn(move || f.prefetch(&r, len));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1 << 20;

    #[test]
    fn large_requests_a_request_out_of_order_stay_sequential() {
        let ra = ReadAhead::new(256 << 20);
        let root = BlockId([1; 32]);
        let mut scheduled = 0;
        // Pairs of 1 MiB requests, each pair served in the wrong order.
        for pair in 0..16u64 {
            for i in [2 * pair + 1, 2 * pair] {
                if let Some(r) = ra.advance(root, i * M, (i + 1) * M, 1 << 30) {
                    scheduled = scheduled.max(r.end);
                }
            }
        }
        assert!(
            scheduled >= 32 * M + ra.window / 2,
            "scheduled to {scheduled}"
        );
    }

    #[test]
    fn scattered_small_reads_do_not_read_ahead() {
        let ra = ReadAhead::new(256 << 20);
        let root = BlockId([2; 32]);
        for off in [100 * M, 7 * M, 300 * M, 100 * M + 8192, 5 * M] {
            assert_eq!(ra.advance(root, off, off + 4096, 1 << 30), None, "at {off}");
        }
    }
}
