//! Appending records, rolling data files, and making them durable.
//!
//! `commit` syncs the data files first and commits the index second, so the index never
//! points at bytes that a crash could lose. A full disk (a failed write) costs only the put
//! that failed: earlier uncommitted blocks stay pending, because the layer above may already
//! reference them. A failed fsync rolls back every uncommitted block (the kernel may have
//! dropped the pages); a failed index commit leaves them pending for the next commit.
use super::index::Batch;
use super::writer::Writer;
use super::{BlockStore, State};
use crate::error::io_error;
use crate::format::{FILE_HEADER_LEN, RECORD_HEADER_LEN, data_file_name};
use crate::{BlockId, Invariant, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;

impl BlockStore {
    /// Appends a record, rolling to a new file when needed. On failure only this record is
    /// lost (see the module doc).
    pub(super) fn append(
        &self,
        st: &mut State,
        id: &BlockId,
        data: &[u8],
    ) -> Result<(u32, u64), StoreError> {
        let need = RECORD_HEADER_LEN + data.len() as u64;
        let roll = match &st.writer {
            None => true,
            Some(w) => w.len() > FILE_HEADER_LEN && w.len() + need > self.opts.data_file_size,
        };
        if roll {
            self.roll(st)?;
        }
        let w = st
            .writer
            .as_mut()
            .ok_or_else(|| StoreError::internal(Invariant::NoActiveDataFile))?;
        let offset = w.append(id, data, &self.mark)?;
        if w.early_sync_due() {
            self.early.kick(w.path().to_owned(), w.file().clone());
        }
        Ok((w.file_no(), offset))
    }

    /// Closes the active file (kept for the next commit to sync) and starts a new one.
    pub(super) fn roll(&self, st: &mut State) -> Result<(), StoreError> {
        if let Some(w) = st.writer.as_mut() {
            w.flush(&self.mark)?;
        }
        let n = st.next_file;
        let w = Writer::create(&self.data_dir, n, &self.mark)?;
        st.next_file += 1;
        st.new_file = true;
        self.handles.write().insert(n, w.file().clone());
        if let Some(old) = st.writer.replace(w)
            && old.len() != st.committed_len(old.file_no())
        {
            st.rolled
                .push((old.file_no(), old.file().clone(), old.len()));
        }
        Ok(())
    }

    /// After a failed sync: cut every file back to its committed length and forget
    /// the blocks that lived past it, so the index never points at unsynced bytes.
    pub(super) fn rollback(&self, st: &mut State) {
        let mut cut = HashMap::new();
        for (n, file, _) in std::mem::take(&mut st.rolled) {
            let len = st.committed_len(n);
            if let Err(e) = file.set_len(len) {
                tracing::warn!(file = n, error = %e, "could not truncate after a failed write");
            }
            cut.insert(n, len);
        }
        if let Some(w) = st.writer.as_mut() {
            let len = st
                .file_lens
                .get(&w.file_no())
                .copied()
                .unwrap_or(FILE_HEADER_LEN);
            if let Err(e) = w.truncate(len, &self.mark) {
                tracing::warn!(file = w.file_no(), error = %e, "could not truncate after a failed write");
            }
            cut.insert(w.file_no(), len);
        }
        let map = self.map.read();
        let lost: Vec<BlockId> = st
            .dirty
            .iter()
            .filter(|id| {
                map.get(id)
                    .is_some_and(|e| cut.get(&e.file).is_some_and(|&c| e.offset >= c))
            })
            .copied()
            .collect();
        drop(map);
        tracing::warn!(
            blocks = lost.len(),
            "rolled back uncommitted blocks after a write failure"
        );
        self.remove_entries(st, &lost);
    }

    /// Makes every block put so far durable: data synced, then the index committed.
    pub fn commit(&self) -> Result<(), StoreError> {
        // Puts wait while the data syncs, on purpose: the lock bounds what the `fdatasync`
        // must write to what was put before the commit. With puts going on meanwhile, a
        // small file's fsync during a 3 GiB stream took 120-390 ms instead of 30-70 ms
        // (bench/fsync-stream.sh), for a stream 2% faster.
        let mut st = self.state.lock();
        self.commit_locked(&mut st)
    }

    pub(super) fn commit_locked(&self, st: &mut State) -> Result<(), StoreError> {
        // A buffer write that did not fit keeps its records for a retry; only a failed fsync
        // makes the unsynced bytes untrustworthy.
        if let Some(w) = st.writer.as_mut() {
            w.flush(&self.mark)?;
        }
        // Held across our syncs so that a background sync cannot report a failure in
        // between (early.rs); a background failure fails this commit like our own would.
        let mut bg = self.early.hold();
        let synced = self.sync_data(st).and_then(|()| bg.take());
        drop(bg);
        if let Err(e) = synced {
            self.rollback(st);
            return Err(e);
        }
        let batch = self.batch(st);
        if Self::is_noop(st, &batch) {
            // Nothing changed: spare the index a durable transaction (an fsync).
            return Ok(());
        }
        self.index.commit(&batch)?;
        st.file_lens.extend(batch.file_lens);
        for n in &batch.drop_files {
            st.file_lens.remove(n);
        }
        for n in st.adopt.keys() {
            st.orphans.remove(n);
        }
        st.dirty.clear();
        st.soft.clear();
        st.removed.clear();
        st.rolled.clear();
        st.adopt.clear();
        st.drop_files.clear();
        Ok(())
    }

    /// Hands every block put so far to the OS without syncing and returns the ids appended
    /// since the last call (or commit). Those blocks then survive the death of this process
    /// (the next open rolls them forward, `tail`), and a `sync(1)` makes them durable; the
    /// caller journals the ids with what references them.
    pub fn soft_flush(&self) -> Result<Vec<BlockId>, StoreError> {
        let mut st = self.state.lock();
        if let Some(w) = st.writer.as_mut() {
            w.flush(&self.mark)?;
        }
        Ok(std::mem::take(&mut st.soft))
    }

    pub(super) fn is_noop(st: &State, batch: &Batch) -> bool {
        batch.put.is_empty()
            && batch.remove.is_empty()
            && batch.drop_files.is_empty()
            && batch
                .file_lens
                .iter()
                .all(|(n, len)| st.file_lens.get(n) == Some(len))
    }

    fn sync_data(&self, st: &mut State) -> Result<(), StoreError> {
        for (n, file, _) in &st.rolled {
            let path = self.data_dir.join(data_file_name(*n));
            file.sync_data().map_err(|e| io_error(&path, e))?;
        }
        let committed = st
            .writer
            .as_ref()
            .and_then(|w| st.file_lens.get(&w.file_no()).copied());
        if let Some(w) = st.writer.as_mut()
            && Some(w.len()) != committed
        {
            w.sync(&self.mark)?;
        }
        if st.new_file {
            // A new file's directory entry must be durable before the index names it.
            let dir = File::open(&self.data_dir).map_err(|e| io_error(&self.data_dir, e))?;
            dir.sync_all().map_err(|e| io_error(&self.data_dir, e))?;
            st.new_file = false;
        }
        Ok(())
    }

    /// Collects the pending index changes.
    pub(super) fn batch(&self, st: &State) -> Batch {
        let map = self.map.read();
        let cache = self.cache.lock();
        let put = st
            .dirty
            .iter()
            .filter_map(|id| map.get(id).map(|e| (*id, *e)))
            .map(|(id, mut e)| {
                e.hits = cache.hits(&id).unwrap_or(e.hits);
                (id, e)
            })
            .collect();
        let mut file_lens: BTreeMap<u32, u64> =
            st.rolled.iter().map(|(n, _, len)| (*n, *len)).collect();
        file_lens.extend(st.adopt.iter().map(|(n, len)| (*n, *len)));
        if let Some(w) = &st.writer {
            file_lens.insert(w.file_no(), w.len());
        }
        Batch {
            put,
            remove: st.removed.iter().copied().collect(),
            file_lens,
            drop_files: st.drop_files.clone(),
        }
    }
}
