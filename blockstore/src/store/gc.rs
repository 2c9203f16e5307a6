//! Garbage collection and compaction of data files.
//!
//! Compaction copies the live records of a sparse file to the active file, commits (data
//! synced, index pointing at the copies, the old file forgotten) and only then deletes the
//! old file, so a crash at any point leaves every committed block readable. A sparse active
//! file is sealed first (a new active file is started), then compacted like any other.
use super::{BlockStore, State};
use crate::format::{Entry, FILE_HEADER_LEN, data_file_name};
use crate::{BlockId, Class, StoreError};
use std::collections::{HashMap, HashSet};

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

/// A file is compacted when its live bytes are below this fraction (in percent) of its body.
const COMPACT_LIVE_PERCENT: u64 = 50;

impl BlockStore {
    /// Deletes every Own block that is neither in `live` nor pinned, and compacts data files.
    /// Commits everything put so far as a side effect.
    pub fn gc(&self, live: &HashSet<BlockId>) -> Result<GcStats, StoreError> {
        let mut st = self.state.lock();
        let mut stats = GcStats::default();
        let dead: Vec<BlockId> = self
            .map
            .read()
            .iter()
            .filter(|(id, e)| e.class == Class::Own && !e.pinned && !live.contains(id))
            .map(|(id, e)| {
                stats.blocks_removed += 1;
                stats.bytes_removed += u64::from(e.len);
                *id
            })
            .collect();
        self.remove_entries(&mut st, &dead);
        self.commit_locked(&mut st)?;
        stats.bytes_reclaimed = self.compact(&mut st)?;
        self.headroom.replenish();
        tracing::info!(?stats, "gc done");
        Ok(stats)
    }

    /// Blocks put since the last commit: not durable yet, and perhaps not yet referenced by
    /// the metadata that will reach them.
    pub fn pending(&self) -> Vec<BlockId> {
        let st = self.state.lock();
        let map = self.map.read();
        st.dirty
            .iter()
            .filter(|id| map.contains_key(id))
            .copied()
            .collect()
    }

    /// Deletes `ids` now, whatever their class or pin (a copy held for someone else that is
    /// no longer needed), and commits; returns how many were present. Their bytes are
    /// reclaimed by a later compaction.
    pub fn delete(&self, ids: &[BlockId]) -> Result<usize, StoreError> {
        let mut st = self.state.lock();
        let present: Vec<BlockId> = {
            let map = self.map.read();
            let unique: HashSet<BlockId> = ids.iter().copied().collect();
            unique
                .into_iter()
                .filter(|id| map.contains_key(id))
                .collect()
        };
        self.remove_entries(&mut st, &present);
        self.commit_locked(&mut st)?;
        Ok(present.len())
    }

    /// Every block of `class`, in no particular order.
    pub fn ids(&self, class: Class) -> Vec<BlockId> {
        self.map
            .read()
            .iter()
            .filter(|(_, e)| e.class == class)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Committed files (the active one included) whose live bytes are below the threshold,
    /// with their live bytes, fewest first: those free the most room for the least copying.
    fn compaction_candidates(&self, st: &State) -> Vec<(u32, u64)> {
        let mut live: HashMap<u32, u64> = HashMap::new();
        for e in self.map.read().values() {
            *live.entry(e.file).or_default() += e.record_len();
        }
        let mut files: Vec<(u32, u64)> = st
            .file_lens
            .iter()
            .map(|(n, len)| (*n, *len, live.get(n).copied().unwrap_or(0)))
            .filter(|(_, len, live)| {
                let body = len.saturating_sub(FILE_HEADER_LEN);
                body > 0 && live * 100 < body * COMPACT_LIVE_PERCENT
            })
            .map(|(n, _, live)| (n, live))
            .collect();
        files.sort_by_key(|&(n, live)| (live, n));
        files
    }

    /// Compacts sparse files one at a time; returns the bytes freed on disk. Requires
    /// everything put so far to be committed (the active file's length is then its
    /// committed length). A file whose live blocks there is no room to copy is skipped, and
    /// a copy that finds the disk full stops compaction (both logged): each file done frees
    /// its room for the next, and what was done stays done.
    fn compact(&self, st: &mut State) -> Result<u64, StoreError> {
        let mut reclaimed = 0;
        let mut skipped = 0u64;
        for (n, live) in self.compaction_candidates(st) {
            if !self.headroom.can_copy(live) {
                skipped += live;
                continue;
            }
            match self.compact_one(st, n) {
                Ok(freed) => reclaimed += freed,
                Err(e) if e.is_no_space() => {
                    tracing::warn!(file = n, error = %e, "compaction stopped: the disk is full");
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if skipped > 0 {
            tracing::warn!(
                live_bytes = skipped,
                "compaction skipped files whose live blocks there is no room to copy"
            );
        }
        Ok(reclaimed)
    }

    /// Copies the live records of file `n` to the active file, commits, then deletes `n`;
    /// returns its size. On failure the original stays committed where it was.
    fn compact_one(&self, st: &mut State, n: u32) -> Result<u64, StoreError> {
        if st.writer.as_ref().is_some_and(|w| w.file_no() == n) {
            // Seal it: its live records go to a new active file like any other file's.
            self.roll(st)?;
        }
        let size = st.file_lens.get(&n).copied().unwrap_or(0);
        let mut moved = Vec::new();
        let res = self.move_live(st, &[n], &mut moved).and_then(|()| {
            st.drop_files.insert(n);
            self.commit_locked(st)
        });
        if let Err(e) = res {
            st.drop_files.clear();
            let mut map = self.map.write();
            for (id, old) in moved {
                map.insert(id, old);
                st.removed.remove(&id);
            }
            return Err(e);
        }
        self.handles.write().remove(&n);
        let path = self.data_dir.join(data_file_name(n));
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(file = %path.display(), error = %e, "could not delete compacted file");
        }
        Ok(size)
    }

    /// Copies every live record of `files` to the active file and repoints its entry.
    fn move_live(
        &self,
        st: &mut State,
        files: &[u32],
        moved: &mut Vec<(BlockId, Entry)>,
    ) -> Result<(), StoreError> {
        let set: HashSet<u32> = files.iter().copied().collect();
        let mut todo: Vec<(BlockId, Entry)> = self
            .map
            .read()
            .iter()
            .filter(|(_, e)| set.contains(&e.file))
            .map(|(id, e)| (*id, *e))
            .collect();
        todo.sort_by_key(|(_, e)| (e.file, e.offset));
        for (id, old) in todo {
            let handle = self.handles.read().get(&old.file).cloned();
            let data = match handle.map(|f| self.read_verified(&id, &old, &f)) {
                Some(Ok(data)) => data,
                // Corrupt or missing: do not propagate; fsck reports it, the entry goes.
                Some(Err(StoreError::Corrupt { .. })) | None => {
                    self.remove_entries(st, &[id]);
                    continue;
                }
                Some(Err(e)) => return Err(e),
            };
            let (file, offset) = self.append(st, &id, &data)?;
            self.update(st, &id, |e| {
                e.file = file;
                e.offset = offset;
            });
            moved.push((id, old));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{BlockStore, Class, StoreOptions};

    #[test]
    fn delete_removes_pinned_own_blocks_durably() {
        let tmp = tempfile::tempdir().unwrap();
        let s = BlockStore::open(tmp.path(), StoreOptions::default()).unwrap();
        let a = s.put(b"held for a peer", Class::Own).unwrap();
        let b = s.put(b"another", Class::Own).unwrap();
        s.pin(&a).unwrap();
        s.commit().unwrap();
        assert_eq!(s.ids(Class::Own).len(), 2);
        assert_eq!(s.delete(&[a, a]).unwrap(), 1);
        assert!(!s.has(&a).unwrap());
        drop(s);
        let s = BlockStore::open(tmp.path(), StoreOptions::default()).unwrap();
        assert!(!s.has(&a).unwrap() && s.has(&b).unwrap());
        assert_eq!(s.ids(Class::Own), vec![b]);
        assert_eq!(s.stats().own_bytes, 7);
    }
}
