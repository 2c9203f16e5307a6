//! File content: files as Merkle trees of content-defined, convergently encrypted chunks.
//!
//! Content is cut by FastCDC ([`MIN_CHUNK`]/[`AVG_CHUNK`]/[`MAX_CHUNK`]) into data blocks; pointer
//! blocks of `(ref, length)` entries form a tree above them (`tree`), holes are entries that
//! store nothing. [`ContentEngine::update`] re-chunks only the regions a write touches (`update`)
//! and seals chunks in parallel; reads go through a byte-bounded LRU of decrypted blocks
//! (`cache`). Formats: docs/formats/fs-content.md.
use crate::FsError;
use crate::crypto::{BlockRef, VolumeKeys};
use blockstore::{BlockId, BlockSource, BlockStore, Class};
use std::collections::BTreeMap;
use std::sync::Arc;

mod cache;
mod chunker;
#[doc(hidden)]
pub use chunker::chunk_lengths;
mod punch;
mod readahead;
#[cfg(test)]
mod tests;
pub(crate) mod tree;
mod update;
mod window;

/// Largest chunk: bounds the memory a single block read can need (a format limit).
pub use crate::format::pointer::MAX_CHUNK;
pub use crate::format::pointer::MAX_FANOUT;
pub use crate::format::{BlockKind, FILE_CONTENT_LEN, FileContent, TreeRoot};

/// Smallest chunk FastCDC cuts (except a region's last chunk).
pub const MIN_CHUNK: u32 = 16 * 1024;
/// Target average chunk size: small enough that an edit rewrites little, large enough that
/// per-block overhead (64 B ref, 17 B crypto, index entry) stays near 0.1%.
pub const AVG_CHUNK: u32 = 64 * 1024;

/// Tunables of a [`ContentEngine`].
#[derive(Clone, Debug)]
pub struct ContentOptions {
    /// Bytes of decrypted chunks and decoded pointer blocks kept for reads.
    pub cache_bytes: usize,
    /// Maximum entries per pointer block, clamped to 4..=[`MAX_FANOUT`] (tests lower it to
    /// build deep trees from small files).
    pub max_fanout: usize,
    /// Every update flattens and regroups the whole old tree, even an append or an overwrite
    /// that changes a few blocks (the behaviour before local updates). For the benchmark that
    /// compares the two; always off otherwise.
    #[doc(hidden)]
    pub whole_tree_updates: bool,
}

impl Default for ContentOptions {
    fn default() -> Self {
        ContentOptions {
            // A random 4 KiB read that misses decrypts a whole chunk (64 KiB on average), so
            // the cache has to cover the working set of random readers (databases, VM images).
            cache_bytes: 256 << 20,
            max_fanout: MAX_FANOUT,
            whole_tree_updates: false,
        }
    }
}

/// Writes not yet turned into blocks: non-overlapping extents keyed by offset.
#[derive(Clone, Debug, Default)]
pub struct WriteBuffer {
    extents: BTreeMap<u64, Vec<u8>>,
    bytes: usize,
    /// An empty allocation to hold the next new extent (see [`WriteBuffer::give_spare`]).
    spare: Vec<u8>,
}

impl WriteBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a write; later writes win over earlier overlapping ones. Adjacent extents merge.
    pub fn write(&mut self, off: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let end = off + data.len() as u64;
        // Collect extents that overlap or touch [off, end).
        let mut start = off;
        let mut merged_end = end;
        let touching: Vec<u64> = self
            .extents
            .range(..=end)
            .rev()
            .take_while(|(o, d)| *o + d.len() as u64 >= off)
            .map(|(o, _)| *o)
            .collect();
        // Fast path: the write starts inside or right at the end of the one extent it touches
        // (sequential appends, rewrites within a buffer). Growing in place keeps a 16 MiB run
        // of 128 KiB writes linear instead of re-copying the whole extent on every write.
        if let [o] = touching[..]
            && o <= off
            && let Some(d) = self.extents.get_mut(&o)
        {
            // `s <= d.len()`: the extent reaches `off`. Appending with `extend_from_slice`
            // writes each byte once (no zero-fill first).
            let s = (off - o) as usize;
            let inside = (d.len() - s).min(data.len());
            d[s..s + inside].copy_from_slice(&data[..inside]);
            d.extend_from_slice(&data[inside..]);
            self.bytes += data.len() - inside;
            return;
        }
        let mut pieces = Vec::new();
        for o in touching {
            if let Some(d) = self.extents.remove(&o) {
                self.bytes -= d.len();
                start = start.min(o);
                merged_end = merged_end.max(o + d.len() as u64);
                pieces.push((o, d));
            }
        }
        if pieces.is_empty() {
            let mut v = std::mem::take(&mut self.spare);
            v.clear();
            v.extend_from_slice(data);
            self.bytes += data.len();
            self.extents.insert(off, v);
            return;
        }
        let mut buf = vec![0u8; (merged_end - start) as usize];
        for (o, d) in pieces {
            let s = (o - start) as usize;
            buf[s..s + d.len()].copy_from_slice(&d);
        }
        let s = (off - start) as usize;
        buf[s..s + data.len()].copy_from_slice(data);
        self.bytes += buf.len();
        self.extents.insert(start, buf);
    }

    /// Hands the buffer an allocation for its next new extent. Why: a streaming writer's
    /// extent grows to the flush size in fresh pages every time, and faulting those in cost
    /// more than copying the bytes; a recycled allocation is already mapped.
    pub fn give_spare(&mut self, v: Vec<u8>) {
        if v.capacity() > self.spare.capacity() {
            self.spare = v;
        }
    }

    /// Whether the buffer holds a spare allocation.
    pub fn has_spare(&self) -> bool {
        self.spare.capacity() > 0
    }

    /// The buffer's largest allocation, emptied, for reuse by another buffer.
    pub fn into_spare(self) -> Vec<u8> {
        let mut v = self
            .extents
            .into_values()
            .chain([self.spare])
            .max_by_key(Vec::capacity)
            .unwrap_or_default();
        v.clear();
        v
    }

    /// Copies buffered bytes over `buf`, which holds the file's bytes at `off..`.
    pub fn overlay(&self, off: u64, buf: &mut [u8]) {
        let end = off + buf.len() as u64;
        for (o, d) in self.extents.range(..end) {
            let dend = *o + d.len() as u64;
            if dend <= off {
                continue;
            }
            let from = (*o).max(off);
            let to = dend.min(end);
            buf[(from - off) as usize..(to - off) as usize]
                .copy_from_slice(&d[(from - o) as usize..(to - o) as usize]);
        }
    }

    /// Drops buffered bytes at or beyond `size`.
    pub fn truncate(&mut self, size: u64) {
        let keys: Vec<u64> = self.extents.range(..).map(|(o, _)| *o).collect();
        for o in keys {
            if let Some(mut d) = self.extents.remove(&o) {
                self.bytes -= d.len();
                if o < size {
                    d.truncate((size - o).min(d.len() as u64) as usize);
                    self.bytes += d.len();
                    self.extents.insert(o, d);
                }
            }
        }
    }

    /// Buffered bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of extents: few means streaming writes, many means scattered small writes.
    pub fn extent_count(&self) -> usize {
        self.extents.len()
    }

    /// Lays `older` under the buffered bytes: where both hold bytes, ours (newer) win. Used to
    /// put back a buffer whose flush failed so that nothing is lost.
    pub fn merge_under(&mut self, older: &WriteBuffer) {
        let newer = std::mem::replace(self, older.clone());
        for (o, d) in newer.extents {
            self.write(o, &d);
        }
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.extents.is_empty()
    }

    /// End offset of the last extent (0 if empty).
    pub fn end(&self) -> u64 {
        self.extents
            .iter()
            .next_back()
            .map_or(0, |(o, d)| o + d.len() as u64)
    }

    /// The extent that wholly contains `a..b`, if any (extents never touch, so at most one).
    pub fn covering(&self, a: u64, b: u64) -> Option<(u64, &[u8])> {
        let (o, d) = self.extents.range(..=a).next_back()?;
        (*o + d.len() as u64 >= b).then_some((*o, d.as_slice()))
    }

    /// The extents that overlap `a..b`, in offset order.
    pub fn extents_in(&self, a: u64, b: u64) -> impl Iterator<Item = (u64, &[u8])> {
        let first = self
            .extents
            .range(..=a)
            .next_back()
            .filter(|(o, d)| *o + d.len() as u64 > a)
            .map_or(a, |(o, _)| *o);
        self.extents
            .range(first..b)
            .map(|(o, d)| (*o, d.as_slice()))
    }

    /// The extents in offset order.
    pub fn extents(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.extents.iter().map(|(o, d)| (*o, d.as_slice()))
    }
}

/// Reads and writes file content as encrypted blocks. `Send + Sync`.
pub struct ContentEngine {
    store: Arc<BlockStore>,
    keys: Arc<VolumeKeys>,
    fetch: Arc<readahead::Fetcher>,
    ahead: readahead::ReadAhead,
    opts: ContentOptions,
    /// Pointer blocks sealed so far (tests check that updates take old ones over).
    #[cfg(test)]
    pointers_sealed: std::sync::atomic::AtomicU64,
    /// Updates that flattened the whole old tree (tests check that appends do not).
    #[cfg(test)]
    full_updates: std::sync::atomic::AtomicU64,
}

impl ContentEngine {
    /// An engine that writes to `store` and reads through `source` (the store itself, or the
    /// store backed by the network).
    pub fn new(
        store: Arc<BlockStore>,
        source: Arc<dyn BlockSource>,
        keys: Arc<VolumeKeys>,
    ) -> Self {
        Self::with_options(store, source, keys, ContentOptions::default())
    }

    /// [`ContentEngine::new`] with explicit tunables.
    pub fn with_options(
        store: Arc<BlockStore>,
        source: Arc<dyn BlockSource>,
        keys: Arc<VolumeKeys>,
        mut opts: ContentOptions,
    ) -> Self {
        opts.max_fanout = opts.max_fanout.clamp(4, MAX_FANOUT);
        ContentEngine {
            fetch: Arc::new(readahead::Fetcher::new(
                source,
                keys.clone(),
                opts.cache_bytes,
            )),
            ahead: readahead::ReadAhead::new(opts.cache_bytes),
            store,
            keys,
            opts,
            #[cfg(test)]
            pointers_sealed: Default::default(),
            #[cfg(test)]
            full_updates: Default::default(),
        }
    }

    /// Reads `min(len, size - offset)` bytes at `offset` (holes read as zeros).
    pub fn read(&self, c: &FileContent, offset: u64, len: usize) -> Result<Vec<u8>, FsError> {
        if offset >= c.size {
            return Ok(Vec::new());
        }
        let n = (len as u64).min(c.size - offset) as usize;
        let mut out = Vec::with_capacity(n);
        let (root, height) = Self::root_entry(c)?;
        let want = offset..offset + n as u64;
        // Scheduled first so that the prefetch overlaps this read's own fetches.
        self.read_ahead(c, &root, height, want.start, want.end);
        self.read_into(&root, height, 0, &want, &mut out)?;
        out.resize(n, 0);
        Ok(out)
    }

    /// Blocks that a read of `len` bytes at `offset` needs and that are not at hand (neither
    /// in the local store nor in the read cache); a missing pointer block is listed, what is
    /// under it not yet. When this is empty, [`ContentEngine::read`] of that range asks the
    /// block source for local blocks only (barring a block deleted in between).
    pub fn missing_for_read(
        &self,
        c: &FileContent,
        offset: u64,
        len: usize,
    ) -> Result<Vec<BlockId>, FsError> {
        let mut out = Vec::new();
        if offset >= c.size || len == 0 {
            return Ok(out);
        }
        let end = offset + (len as u64).min(c.size - offset);
        let (root, height) = Self::root_entry(c)?;
        let mut add = |r: &BlockRef, _: u64, _: u8, at_hand: bool| {
            if !at_hand && !out.contains(&r.id) {
                out.push(r.id);
            }
        };
        let has = |id: &BlockId| self.at_hand(id);
        self.walk_range((&root, height, 0), &(offset..end), &has, &mut add)?;
        Ok(out)
    }

    /// Whether block `id` can be had without the network: decrypted in the read cache, or
    /// in the local store.
    fn at_hand(&self, id: &BlockId) -> bool {
        self.fetch.cache.contains(id) || self.store.has(id).unwrap_or(false)
    }

    /// Starts background fetches of the chunks after a sequential read of `off..end`.
    fn read_ahead(
        &self,
        c: &FileContent,
        root: &crate::format::pointer::Entry,
        height: u8,
        off: u64,
        end: u64,
    ) {
        let Some(r) = &root.r else { return };
        let Some(range) = self.ahead.advance(r.id, off, end, c.size) else {
            return;
        };
        let mut chunks = Vec::new();
        // Only blocks at hand: the pool never waits on a remote source, so a local file's
        // prefetch never queues behind a remote one (remote reads fetch their own blocks).
        let mut add = |r: &BlockRef, len: u64, height: u8, at_hand: bool| {
            if height == 0 && at_hand {
                chunks.push((*r, len));
            }
        };
        let has = |id: &BlockId| self.at_hand(id);
        // A tree defect is not this read's error: the reader meets it when it gets there.
        if self
            .walk_range((root, height, 0), &range, &has, &mut add)
            .is_ok()
        {
            // The disk starts on the whole batch while the pool fetches it block by block.
            let ids: Vec<BlockId> = chunks.iter().map(|(r, _)| r.id).collect();
            self.store.will_need(&ids);
            self.ahead.spawn(&self.fetch, chunks);
        }
    }

    /// New content: `c` cut or zero-extended to `new_size`, with `dirty` laid over it (bytes of
    /// `dirty` past `new_size` are ignored). Writes only the blocks that changed.
    pub fn update(
        &self,
        c: &FileContent,
        new_size: u64,
        dirty: &WriteBuffer,
    ) -> Result<FileContent, FsError> {
        if new_size == c.size && dirty.is_empty() {
            return Ok(*c);
        }
        self.update_tree(c, new_size, dirty)
    }

    /// Calls `f` with every block id the content reaches (chunks and pointer blocks; holes are
    /// not blocks). Pointer blocks are fetched and checked, chunks only named.
    pub fn visit_blocks(&self, c: &FileContent, f: &mut dyn FnMut(BlockId)) -> Result<(), FsError> {
        let (root, height) = Self::root_entry(c)?;
        self.visit(&root, height, f)
    }

    /// Calls `f` with every block of `c` reachable through locally held pointer blocks.
    pub fn visit_local_blocks(
        &self,
        c: &FileContent,
        has: &dyn Fn(&BlockId) -> bool,
        f: &mut dyn FnMut(BlockId),
    ) -> Result<(), FsError> {
        let (root, height) = Self::root_entry(c)?;
        self.visit_local((&root, height), has, f)
    }

    /// Blocks of `c` that `has` says are not local, added to `out` until it holds `max`
    /// (pointer blocks that are missing are listed, their children not yet). `local_below` is
    /// a byte offset below which an earlier walk found every block local: that part is not
    /// walked again. Returns whether the content is complete, and the offset below which it
    /// is now known local (to pass to the next walk of the same content).
    pub fn missing_blocks(
        &self,
        c: &FileContent,
        has: &dyn Fn(&BlockId) -> bool,
        out: &mut Missing,
        (max, local_below): (usize, u64),
    ) -> Result<(bool, u64), FsError> {
        let (root, height) = Self::root_entry(c)?;
        out.gap = None;
        let complete = self.missing((&root, height), (0, local_below), has, out, max)?;
        let local = match complete {
            true => c.size,
            false => out.gap.unwrap_or(local_below).max(local_below),
        };
        Ok((complete, local))
    }

    /// Bytes held by the read cache.
    pub fn cache_bytes(&self) -> usize {
        self.fetch.cache.bytes()
    }

    /// Empties the read cache (for cold-read measurements).
    pub fn clear_cache(&self) {
        self.fetch.cache.clear();
    }

    /// Encrypts and stores one block of the given kind (used for snapshot directories too).
    pub fn put_blob(&self, kind: BlockKind, payload: &[u8]) -> Result<BlockRef, FsError> {
        let (key, stored) = self.keys.seal_typed_block(kind as u8, payload)?;
        let id = self.store.put(&stored, Class::Own)?;
        Ok(BlockRef { id, key })
    }

    /// Fetches, verifies and decrypts one block.
    pub fn get_blob(&self, r: &BlockRef) -> Result<(BlockKind, Vec<u8>), FsError> {
        let mut p = self.fetch.plaintext(r)?;
        let kind = p
            .first()
            .and_then(|b| BlockKind::from_u8(*b))
            .ok_or(FsError::BadBlock(r.id))?;
        p.remove(0);
        Ok((kind, p))
    }
}

/// Distinct block ids found missing, in the order found (a set beside the list: a walk of a
/// large file lists thousands, and a linear duplicate check made each walk quadratic).
#[derive(Debug, Default)]
pub struct Missing {
    /// The ids, first occurrence only.
    pub ids: Vec<BlockId>,
    seen: std::collections::HashSet<BlockId>,
    /// Offset in the file being walked of the first missing block (or of where the walk
    /// stopped because `ids` was full).
    gap: Option<u64>,
}
