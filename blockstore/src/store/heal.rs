//! Healing: making good bytes from elsewhere (a peer) the indexed copy of a block whose own
//! copy failed verification. The store stays append-only: the good bytes are a new record and
//! the index entry moves to it, so the bad record is no longer referenced (compaction drops it).
use super::BlockStore;
use crate::format::{Entry, MAX_BLOCK_LEN};
use crate::{BlockId, Class, StoreError};

/// What [`BlockStore::heal`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Healed {
    /// The indexed copy was corrupt (or unreadable) and now points at the new record.
    Replaced,
    /// The indexed copy verified: nothing was written.
    AlreadyGood,
    /// The block was not in the store: it was stored as a new block of the given class.
    Added,
}

impl BlockStore {
    /// Makes `data` the indexed copy of `id` unless the present copy verifies. `data` must
    /// hash to `id` (else [`StoreError::Corrupt`], nothing written). A replaced entry keeps
    /// its class, pin and hit count; a block not present is put as `class`. Like `put`, the
    /// change is durable at the next [`BlockStore::commit`].
    pub fn heal(&self, id: BlockId, data: &[u8], class: Class) -> Result<Healed, StoreError> {
        if data.len() > MAX_BLOCK_LEN {
            return Err(StoreError::TooLarge(data.len()));
        }
        let actual = BlockId::of(data);
        if actual != id {
            return Err(StoreError::Corrupt { id, actual });
        }
        match self.get(&id) {
            Ok(_) => return Ok(Healed::AlreadyGood),
            Err(StoreError::NotFound(_)) => {
                self.put_verified(id, data, class)?;
                return Ok(Healed::Added);
            }
            // Corrupt, or an unreadable record (a short file, an I/O error at its offset).
            Err(_) => {}
        }
        let mut st = self.state.lock();
        let Some(old) = self.map.read().get(&id).copied() else {
            // Deleted meanwhile: store it afresh.
            drop(st);
            self.put_verified(id, data, class)?;
            return Ok(Healed::Added);
        };
        let (file, offset) = self.append(&mut st, &id, data)?;
        let moved = Entry {
            file,
            offset,
            ..old
        };
        self.map.write().insert(id, moved);
        st.dirty.insert(id);
        tracing::info!(block = %id, file, offset, "replaced a corrupt copy with verified bytes");
        Ok(Healed::Replaced)
    }
}

impl BlockStore {
    /// Up to `n` ids of Own blocks greater than `after` (all if `None`), in ascending order:
    /// walks the store in id order a slice at a time (the local audit) without copying every
    /// id. Takes time linear in the store, memory linear in `n`.
    pub fn own_ids_after(&self, after: Option<BlockId>, n: usize) -> Vec<BlockId> {
        let mut smallest = std::collections::BinaryHeap::with_capacity(n + 1);
        for (id, e) in self.map.read().iter() {
            if e.class != Class::Own || after.is_some_and(|a| *id <= a) {
                continue;
            }
            smallest.push(*id);
            if smallest.len() > n {
                smallest.pop();
            }
        }
        smallest.into_sorted_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;
    use std::os::unix::fs::FileExt;

    /// Flips one byte of `id`'s stored bytes in its data file.
    fn corrupt(s: &BlockStore, id: &BlockId) {
        let e = s.map.read()[id];
        let path = s.data_dir.join(crate::format::data_file_name(e.file));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .open(path)
            .unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, e.data_offset() + 7).unwrap();
        f.write_all_at(&[b[0] ^ 0x40], e.data_offset() + 7).unwrap();
    }

    #[test]
    fn heal_replaces_a_corrupt_copy_and_survives_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let s = BlockStore::open(tmp.path(), StoreOptions::default()).unwrap();
        let data = vec![7u8; 50_000];
        let id = s.put(&data, Class::Own).unwrap();
        s.pin(&id).unwrap();
        s.commit().unwrap();
        assert_eq!(s.heal(id, &data, Class::Own).unwrap(), Healed::AlreadyGood);
        corrupt(&s, &id);
        assert!(matches!(s.get(&id), Err(StoreError::Corrupt { .. })));
        // Bytes that do not hash to the id are refused.
        assert!(matches!(
            s.heal(id, &data[1..], Class::Own),
            Err(StoreError::Corrupt { .. })
        ));
        assert_eq!(s.heal(id, &data, Class::Own).unwrap(), Healed::Replaced);
        assert_eq!(s.get(&id).unwrap(), data);
        s.commit().unwrap();
        drop(s);
        let s = BlockStore::open(tmp.path(), StoreOptions::default()).unwrap();
        assert_eq!(s.get(&id).unwrap(), data);
        let r = s.fsck(false).unwrap();
        assert!(r.corrupt.is_empty() && r.dangling.is_empty(), "{r:?}");
        assert_eq!(s.stats().pinned_blocks, 1, "the pin is kept");
        let other = b"not here".to_vec();
        let added = BlockId::of(&other);
        assert_eq!(s.heal(added, &other, Class::Own).unwrap(), Healed::Added);
        assert_eq!(s.get(&added).unwrap(), other);
    }

    #[test]
    fn own_ids_after_walks_the_store_in_id_order() {
        let tmp = tempfile::tempdir().unwrap();
        let s = BlockStore::open(tmp.path(), StoreOptions::default()).unwrap();
        let mut ids: Vec<BlockId> = (0..50u8)
            .map(|n| s.put(&[n; 100], Class::Own).unwrap())
            .collect();
        s.put(b"cached", Class::Cached).unwrap();
        ids.sort();
        let mut walked = Vec::new();
        let mut cursor = None;
        loop {
            let got = s.own_ids_after(cursor, 7);
            if got.is_empty() {
                break;
            }
            cursor = got.last().copied();
            walked.extend(got);
        }
        assert_eq!(walked, ids);
    }
}
