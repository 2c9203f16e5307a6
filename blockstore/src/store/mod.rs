//! The store: append-only data files under `DIR/data/`, a redb index at `DIR/index.redb`.
//!
//! Concurrency: the whole index is mirrored in memory (`map`, behind an `RwLock`), so `get`
//! and `has` never touch redb. Every mutation takes the `state` mutex (writer, pending
//! changes, file bookkeeping); `get` only takes it when the record it wants still sits in
//! the write buffer. Lock order: `state` → `map` → `cache`; `handles` is never held with
//! another lock.
//!
//! Durability: `commit` syncs every data file written since the last commit, then commits
//! the index in one durable redb transaction. The active file is also synced in the
//! background as it grows (`early`), so that a commit after a large write waits for little.
//! A failed data write or sync (ours or a background one) rolls every uncommitted block back
//! (they must be put again); a failed index commit keeps them pending for the next commit.
mod cache;
mod class;
mod commit;
mod early;
mod files;
mod fsck;
mod gc;
mod headroom;
mod heal;
mod index;
mod tail;
mod writer;

pub use class::Class;
pub use fsck::FsckReport;
pub use gc::GcStats;
pub use heal::Healed;

use crate::format::{Entry, FILE_HEADER_LEN, MAX_BLOCK_LEN, data_file_name};
use crate::{BlockId, Damage, StoreError};
use cache::Cache;
use early::EarlySync;
use files::open_data_files;
use headroom::Headroom;
use index::Index;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use writer::{FlushMark, Writer};

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

/// Mutable bookkeeping, behind one mutex.
struct State {
    /// The file new records go to; `None` until the first write after open.
    writer: Option<Writer>,
    /// Ids whose index entry changed since the last commit.
    dirty: HashSet<BlockId>,
    /// Ids deleted since the last commit.
    removed: HashSet<BlockId>,
    /// Committed length of every indexed data file.
    file_lens: BTreeMap<u32, u64>,
    /// Files rolled away from since the last commit: still to be synced and recorded.
    rolled: Vec<(u32, Arc<File>, u64)>,
    /// Orphan files adopted by fsck repair, recorded at the next commit.
    adopt: BTreeMap<u32, u64>,
    /// Files compacted away, forgotten at the next commit and then deleted.
    drop_files: BTreeSet<u32>,
    /// Unindexed files found at open.
    orphans: BTreeSet<u32>,
    next_file: u32,
    /// A data file was created since the last commit: the directory needs an fsync too.
    new_file: bool,
    /// Blocks appended since the last [`BlockStore::soft_flush`] or commit.
    soft: Vec<BlockId>,
}

impl State {
    fn committed_len(&self, file: u32) -> u64 {
        self.file_lens
            .get(&file)
            .copied()
            .unwrap_or(FILE_HEADER_LEN)
    }
}

/// A content-addressed block store. `Send + Sync`; all methods take `&self`.
pub struct BlockStore {
    dir: PathBuf,
    data_dir: PathBuf,
    opts: StoreOptions,
    index: Index,
    map: RwLock<HashMap<BlockId, Entry>>,
    handles: RwLock<HashMap<u32, Arc<File>>>,
    mark: FlushMark,
    cache: Mutex<Cache>,
    state: Mutex<State>,
    early: EarlySync,
    headroom: Headroom,
}

/// Returns `bytes` if they hash to `id`: never serve unverified bytes.
fn verify(id: &BlockId, bytes: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    let actual = BlockId::of(&bytes);
    if actual != *id {
        return Err(StoreError::Corrupt { id: *id, actual });
    }
    Ok(bytes)
}

/// The index's file name in the store directory.
const INDEX_FILE: &str = "index.redb";

/// Gap between blocks that [`BlockStore::will_need`] reads through rather than splitting.
const HINT_GAP: u64 = 256 << 10;

/// Reads exactly `len` bytes at `off` into a new buffer. Reads into the allocation's spare
/// capacity: zero-filling it first cost as much as a tenth of a cold read's CPU.
fn read_at(file: &File, len: usize, off: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        let at = off + buf.len() as u64;
        let n = rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), at)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    buf.truncate(len);
    Ok(buf)
}

impl BlockStore {
    /// Opens (creating if needed) the store in `dir`. Intact records written after the last
    /// commit are kept (as unpinned Own blocks, committed by the next commit) and torn tails
    /// cut off (`tail`); a data file with a damaged header is [`StoreError::Format`].
    ///
    /// A damaged index, or a missing one while data files exist, is
    /// [`StoreError::IndexDamaged`]: nothing is changed on disk, and
    /// [`BlockStore::open_rebuilding_index`] is the way out.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Self, StoreError> {
        let data_dir = dir.join("data");
        std::fs::create_dir_all(&data_dir).map_err(|e| crate::error::io_error(&data_dir, e))?;
        let path = dir.join(INDEX_FILE);
        if !path.exists() && files::has_data_files(&data_dir)? {
            return Err(StoreError::IndexDamaged {
                path,
                damage: Damage::Missing,
            });
        }
        Self::open_with_index(dir, data_dir, opts)
    }

    /// Opens the store with a new, empty index, first moving a damaged one (if any) to
    /// `index.redb.damaged`: every data file is then an orphan, and [`BlockStore::fsck`] with
    /// `repair` indexes every intact record of every file (`FsckReport::rebuilt`). Returns the
    /// store and where the old index went.
    pub fn open_rebuilding_index(
        dir: &Path,
        opts: StoreOptions,
    ) -> Result<(Self, Option<PathBuf>), StoreError> {
        let data_dir = dir.join("data");
        std::fs::create_dir_all(&data_dir).map_err(|e| crate::error::io_error(&data_dir, e))?;
        let path = dir.join(INDEX_FILE);
        let aside = path.with_extension("redb.damaged");
        let moved = match std::fs::rename(&path, &aside) {
            Ok(()) => Some(aside),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(crate::error::io_error(&path, e)),
        };
        tracing::warn!(index = %path.display(), moved = ?moved, "rebuilding the block index");
        Ok((Self::open_with_index(dir, data_dir, opts)?, moved))
    }

    fn open_with_index(
        dir: &Path,
        data_dir: PathBuf,
        opts: StoreOptions,
    ) -> Result<Self, StoreError> {
        // Without an index every data file is an orphan (fsck --repair rebuilds the index);
        // files are rolled forward only against an index that was there.
        let had_index = dir.join(INDEX_FILE).exists();
        // Before anything is written: opening on a full disk must find room.
        let headroom = Headroom::open(dir);
        let (index, mut loaded) = Index::open(&dir.join(INDEX_FILE))?;
        let mut files = open_data_files(&data_dir, &loaded.file_lens, had_index)?;
        let mut st = State {
            writer: None,
            dirty: HashSet::new(),
            removed: HashSet::new(),
            file_lens: loaded.file_lens.clone(),
            rolled: Vec::new(),
            adopt: BTreeMap::new(),
            drop_files: BTreeSet::new(),
            orphans: std::mem::take(&mut files.orphans),
            next_file: files.next_file,
            new_file: false,
            soft: Vec::new(),
        };
        let ends = Self::adopt_tails(&mut st, &mut loaded.blocks, &files);
        let mark = FlushMark::new();
        st.writer = Self::resume_writer(&data_dir, &ends, &files.handles, &opts, &mark);
        if let Some(w) = &st.writer {
            // The writer's file is recorded by every commit; the others are listed here.
            st.rolled.retain(|(n, _, _)| *n != w.file_no());
        }
        let mut cache = Cache::new(opts.cache_quota);
        for (id, e) in &loaded.blocks {
            if e.class == Class::Cached && !e.pinned {
                cache.insert(*id, u64::from(e.len), e.hits);
            }
        }
        let store = BlockStore {
            dir: dir.to_owned(),
            data_dir,
            opts,
            index,
            map: RwLock::new(loaded.blocks),
            handles: RwLock::new(files.handles),
            mark,
            cache: Mutex::new(cache),
            state: Mutex::new(st),
            early: EarlySync::start(),
            headroom,
        };
        // The quota may have shrunk since the last run.
        store.evict(&mut store.state.lock());
        Ok(store)
    }

    /// Indexes the intact records found past the committed lengths (`tail`) as unpinned Own
    /// blocks, pending for the next commit, and returns the valid length of every file with a
    /// known length. A new file whose records are all indexed already (an interrupted
    /// compaction's copies) stays an orphan.
    fn adopt_tails(
        st: &mut State,
        blocks: &mut HashMap<BlockId, Entry>,
        files: &files::DataFiles,
    ) -> BTreeMap<u32, u64> {
        let mut ends = st.file_lens.clone();
        for t in &files.tails {
            let mut added = 0usize;
            for r in &t.records {
                if blocks.contains_key(&r.id) {
                    continue;
                }
                let e = Entry {
                    file: t.file,
                    offset: r.offset,
                    len: r.len,
                    class: Class::Own,
                    pinned: false,
                    hits: 0,
                };
                blocks.insert(r.id, e);
                st.dirty.insert(r.id);
                added += 1;
            }
            let committed = st.file_lens.get(&t.file).copied();
            match committed {
                None if added == 0 => {
                    st.orphans.insert(t.file);
                }
                Some(c) if t.end <= c => {}
                _ => {
                    // Synced and recorded by the next commit, like a file rolled away from.
                    if let Some(h) = files.handles.get(&t.file) {
                        st.rolled.push((t.file, h.clone(), t.end));
                    }
                    st.new_file |= committed.is_none();
                    ends.insert(t.file, t.end);
                }
            }
        }
        ends
    }

    /// Keeps appending to the newest file if it has room and is intact.
    fn resume_writer(
        data_dir: &Path,
        file_lens: &BTreeMap<u32, u64>,
        handles: &HashMap<u32, Arc<File>>,
        opts: &StoreOptions,
        mark: &FlushMark,
    ) -> Option<Writer> {
        let (&n, &len) = file_lens.last_key_value()?;
        let file = handles.get(&n)?;
        let actual = file.metadata().ok()?.len();
        (len < opts.data_file_size && actual == len)
            .then(|| Writer::resume(data_dir.join(data_file_name(n)), n, file.clone(), len, mark))
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `data`, returning its id. Idempotent; a block stored as Cached and put again as
    /// Own becomes Own. Not durable until [`BlockStore::commit`].
    ///
    /// On [`StoreError::NoSpace`] or another write error, every block put since the last
    /// successful commit is discarded (the index never points at bytes that were not
    /// written); put them again once space is available.
    pub fn put(&self, data: &[u8], class: Class) -> Result<BlockId, StoreError> {
        if data.len() > MAX_BLOCK_LEN {
            return Err(StoreError::TooLarge(data.len()));
        }
        let id = BlockId::of(data);
        let mut st = self.state.lock();
        self.put_hashed(&mut st, id, data, class)?;
        Ok(id)
    }

    /// [`BlockStore::put`] of a block whose id the caller has just computed from these very
    /// bytes (a block fetched from a peer and checked against the id it asked for): saves a
    /// second hash of the bytes. Reads still verify every block.
    pub fn put_verified(&self, id: BlockId, data: &[u8], class: Class) -> Result<(), StoreError> {
        if data.len() > MAX_BLOCK_LEN {
            return Err(StoreError::TooLarge(data.len()));
        }
        debug_assert_eq!(BlockId::of(data), id);
        let mut st = self.state.lock();
        self.put_hashed(&mut st, id, data, class)
    }

    /// Stores several blocks under one lock acquisition; hashing happens before the lock is
    /// taken. Same semantics as calling [`BlockStore::put`] for each, in order.
    pub fn put_batch(&self, blocks: &[&[u8]], class: Class) -> Result<Vec<BlockId>, StoreError> {
        if let Some(big) = blocks.iter().find(|b| b.len() > MAX_BLOCK_LEN) {
            return Err(StoreError::TooLarge(big.len()));
        }
        let ids: Vec<BlockId> = blocks.iter().map(|b| BlockId::of(b)).collect();
        let mut st = self.state.lock();
        for (id, data) in ids.iter().zip(blocks) {
            self.put_hashed(&mut st, *id, data, class)?;
        }
        Ok(ids)
    }

    fn put_hashed(
        &self,
        st: &mut State,
        id: BlockId,
        data: &[u8],
        class: Class,
    ) -> Result<(), StoreError> {
        let existing = self.map.read().get(&id).copied();
        if let Some(e) = existing {
            if class == Class::Own && e.class == Class::Cached {
                self.update(st, &id, |e| e.class = Class::Own);
                self.cache.lock().remove(&id);
            }
            return Ok(());
        }
        self.headroom
            .admit(data.len() as u64 + crate::format::RECORD_HEADER_LEN)?;
        let (file, offset) = self.append(st, &id, data)?;
        let len = data.len() as u32; // bounded by MAX_BLOCK_LEN
        let entry = Entry {
            file,
            offset,
            len,
            class,
            pinned: false,
            hits: 0,
        };
        self.map.write().insert(id, entry);
        st.dirty.insert(id);
        st.soft.push(id);
        if class == Class::Cached {
            self.cache.lock().insert(id, u64::from(len), 0);
            self.evict(st);
        }
        Ok(())
    }

    /// Returns the verified bytes of `id`.
    pub fn get(&self, id: &BlockId) -> Result<Vec<u8>, StoreError> {
        // Compaction may move the block between reading its entry and opening its file:
        // then the old file is gone and the entry is read again.
        for _ in 0..3 {
            let entry = self.map.read().get(id).copied();
            let e = entry.ok_or(StoreError::NotFound(*id))?;
            let handle = self.handles.read().get(&e.file).cloned();
            let Some(file) = handle else { continue };
            let buffered = if self
                .mark
                .maybe_buffered(e.file, e.data_offset() + u64::from(e.len))
            {
                self.read_buffered(&e)
            } else {
                None
            };
            let data = match buffered {
                Some(bytes) => verify(id, bytes)?,
                None => self.read_verified(id, &e, &file)?,
            };
            if e.class == Class::Cached {
                self.cache.lock().touch(id);
            }
            return Ok(data);
        }
        Err(StoreError::NotFound(*id))
    }

    /// Reads a block's bytes and checks them against `id`.
    fn read_verified(&self, id: &BlockId, e: &Entry, file: &File) -> Result<Vec<u8>, StoreError> {
        let buf = read_at(file, e.len as usize, e.data_offset()).map_err(|err| {
            crate::error::io_error(&self.data_dir.join(data_file_name(e.file)), err)
        })?;
        verify(id, buf).inspect_err(|_| {
            tracing::error!(block = %id, file = e.file, offset = e.offset, "corrupt block");
        })
    }

    /// Copies a record still in the writer's buffer (none if it was flushed meanwhile). Reading
    /// from the buffer rather than flushing it keeps reads working on a full disk.
    fn read_buffered(&self, e: &Entry) -> Option<Vec<u8>> {
        let st = self.state.lock();
        let w = st.writer.as_ref()?;
        (w.file_no() == e.file)
            .then(|| w.buffered(e.data_offset(), e.len))
            .flatten()
            .map(<[u8]>::to_vec)
    }

    /// Hints that these blocks will be read soon: the kernel starts reading the parts of the
    /// data files that hold them, without waiting. Why: read-ahead threads that `pread` one
    /// block at a time otherwise spend most of a cold sequential read waiting for the disk.
    /// Unknown ids are ignored; a failed hint costs nothing but the speed-up.
    pub fn will_need(&self, ids: &[BlockId]) {
        let mut spans: Vec<(u32, u64, u64)> = {
            let map = self.map.read();
            ids.iter()
                .filter_map(|id| map.get(id))
                .map(|e| (e.file, e.offset, e.data_offset() + u64::from(e.len)))
                .collect()
        };
        spans.sort_unstable();
        let mut merged: Vec<(u32, u64, u64)> = Vec::with_capacity(spans.len());
        for (f, a, b) in spans {
            match merged.last_mut() {
                // Small gaps (other blocks) are read too: one request instead of several.
                Some((lf, _, lb)) if *lf == f && a <= *lb + HINT_GAP => *lb = (*lb).max(b),
                _ => merged.push((f, a, b)),
            }
        }
        let handles = self.handles.read();
        for (f, a, b) in merged {
            if let Some(file) = handles.get(&f) {
                let len = std::num::NonZeroU64::new(b - a);
                let _ = rustix::fs::fadvise(&**file, a, len, rustix::fs::Advice::WillNeed);
            }
        }
    }

    /// Whether the block is present.
    pub fn has(&self, id: &BlockId) -> Result<bool, StoreError> {
        Ok(self.map.read().contains_key(id))
    }

    /// Marks a block as never to be collected or evicted.
    pub fn pin(&self, id: &BlockId) -> Result<(), StoreError> {
        let mut st = self.state.lock();
        let e = self
            .update(&mut st, id, |e| e.pinned = true)
            .ok_or(StoreError::NotFound(*id))?;
        if e.class == Class::Cached {
            self.cache.lock().remove(id);
        }
        Ok(())
    }

    /// Undoes [`BlockStore::pin`].
    pub fn unpin(&self, id: &BlockId) -> Result<(), StoreError> {
        let mut st = self.state.lock();
        let e = self
            .update(&mut st, id, |e| e.pinned = false)
            .ok_or(StoreError::NotFound(*id))?;
        if e.class == Class::Cached {
            self.cache.lock().insert(*id, u64::from(e.len), e.hits);
            self.evict(&mut st);
        }
        Ok(())
    }

    /// Changes an entry and marks it dirty; returns the new entry.
    fn update(&self, st: &mut State, id: &BlockId, f: impl FnOnce(&mut Entry)) -> Option<Entry> {
        let mut map = self.map.write();
        let e = map.get_mut(id)?;
        f(e);
        st.dirty.insert(*id);
        Some(*e)
    }

    /// Deletes entries from the index (their bytes stay until compaction).
    fn remove_entries(&self, st: &mut State, ids: &[BlockId]) {
        let mut map = self.map.write();
        let mut cache = self.cache.lock();
        for id in ids {
            map.remove(id);
            cache.remove(id);
            st.dirty.remove(id);
            st.removed.insert(*id);
        }
    }

    /// Evicts Cached blocks while over quota.
    fn evict(&self, st: &mut State) {
        let gone = self.cache.lock().evict();
        if !gone.is_empty() {
            tracing::debug!(blocks = gone.len(), "evicted cached blocks");
            self.remove_entries(st, &gone);
        }
    }

    /// Current counts.
    pub fn stats(&self) -> StoreStats {
        let mut s = StoreStats::default();
        for e in self.map.read().values() {
            let len = u64::from(e.len);
            match e.class {
                Class::Own => {
                    s.own_blocks += 1;
                    s.own_bytes += len;
                }
                Class::Cached => {
                    s.cached_blocks += 1;
                    s.cached_bytes += len;
                }
            }
            s.pinned_blocks += u64::from(e.pinned);
        }
        s.disk_bytes = self
            .handles
            .read()
            .values()
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> BlockStore {
        let opts = StoreOptions {
            cache_quota: 1 << 20,
            data_file_size: 64 << 10,
        };
        BlockStore::open(dir, opts).unwrap()
    }

    #[test]
    fn buffered_records_are_readable_before_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let s = open(tmp.path());
        let id = s.put(b"small", Class::Own).unwrap();
        let e = s.map.read()[&id];
        assert!(s.mark.maybe_buffered(e.file, e.data_offset() + 5));
        assert_eq!(s.get(&id).unwrap(), b"small");
        // Served from the buffer, not by flushing it (a full disk must not break reads).
        assert!(s.mark.maybe_buffered(e.file, e.data_offset() + 5));
        s.commit().unwrap();
        assert!(!s.mark.maybe_buffered(e.file, e.data_offset() + 5));
        assert_eq!(s.get(&id).unwrap(), b"small");
    }

    #[test]
    fn will_need_hints_known_blocks_and_ignores_unknown_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let s = open(tmp.path());
        let ids: Vec<BlockId> = (0..10u8)
            .map(|n| s.put(&[n; 20_000], Class::Own).unwrap())
            .collect();
        s.commit().unwrap();
        let mut asked = ids.clone();
        asked.push(BlockId([0xee; 32]));
        asked.reverse();
        s.will_need(&asked);
        s.will_need(&[]);
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(s.get(id).unwrap(), vec![n as u8; 20_000]);
        }
    }

    #[test]
    fn a_failed_background_sync_fails_the_next_commit() {
        use std::sync::atomic::Ordering;
        let tmp = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            cache_quota: 1 << 20,
            data_file_size: 1 << 30,
        };
        let s = BlockStore::open(tmp.path(), opts).unwrap();
        let kept = s.put(b"committed", Class::Own).unwrap();
        s.commit().unwrap();
        s.early.fail_next.store(true, Ordering::SeqCst);
        let block = |i: u32| {
            let mut b = vec![0u8; 1 << 20];
            b[..4].copy_from_slice(&i.to_le_bytes());
            b
        };
        let n = (early::EARLY_SYNC_BYTES >> 20) as u32 + 2;
        let ids: Vec<BlockId> = (0..n)
            .map(|i| s.put(&block(i), Class::Own).unwrap())
            .collect();
        let t = std::time::Instant::now();
        while s.early.done.load(Ordering::SeqCst) == 0 {
            assert!(t.elapsed().as_secs() < 20, "background sync never ran");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            s.commit().is_err(),
            "the lost background sync must fail the commit"
        );
        assert!(
            !s.has(&ids[0]).unwrap(),
            "uncommitted blocks are rolled back"
        );
        assert_eq!(s.get(&kept).unwrap(), b"committed");
        // Reported once: the data put again commits.
        let again = s.put(&block(0), Class::Own).unwrap();
        s.commit().unwrap();
        assert_eq!(s.get(&again).unwrap(), block(0));
        drop(s);
        let s = BlockStore::open(tmp.path(), StoreOptions::default()).unwrap();
        assert_eq!(s.get(&again).unwrap(), block(0));
        assert!(!s.has(&ids[1]).unwrap());
    }

    #[test]
    fn commit_records_rolled_files_and_empty_commit_is_a_noop() {
        let tmp = tempfile::tempdir().unwrap();
        let s = open(tmp.path());
        for n in 0..10u8 {
            s.put(&[n; 20_000], Class::Own).unwrap();
        }
        s.commit().unwrap();
        let lens = s.state.lock().file_lens.clone();
        assert!(lens.len() >= 3, "{lens:?}");
        for (n, len) in &lens {
            let path = tmp.path().join("data").join(data_file_name(*n));
            assert_eq!(std::fs::metadata(path).unwrap().len(), *len);
        }
        let st = s.state.lock();
        assert!(st.dirty.is_empty() && st.removed.is_empty() && st.rolled.is_empty());
        assert!(BlockStore::is_noop(&st, &s.batch(&st)));
    }
}
