//! [`StoreHolder`]: a [`BlockHolder`] over a `blockstore::BlockStore`, what `fossa keeper` runs.
use super::{BlockHolder, HolderError};
use blockstore::{BlockId, BlockStore, Class, StoreError};
use parking_lot::Mutex;
use std::sync::Arc;

/// Held blocks are class Own and pinned in the store; the quota counts Own bytes.
///
/// [`StoreHolder::new`] is for a store of its own (a keeper): `delete` removes the block.
/// [`StoreHolder::shared`] is for a device's own store, where a block held for redundancy may
/// also be the device's data: `delete` only unpins it, and GC removes it if unreachable.
pub struct StoreHolder {
    store: Arc<BlockStore>,
    quota: u64,
    /// Delete by unpinning only (a device's shared store).
    unpin_only: bool,
    /// Serialises puts so two batches cannot both pass the quota check.
    put_lock: Mutex<()>,
}

impl StoreHolder {
    /// Holds blocks in `store` up to `quota` bytes (`u64::MAX`: no quota).
    pub fn new(store: Arc<BlockStore>, quota: u64) -> Self {
        StoreHolder {
            store,
            quota,
            unpin_only: false,
            put_lock: Mutex::new(()),
        }
    }
    /// Holds blocks in a device's own `store` (see the type's docs); `quota` bounds the Own
    /// bytes of the whole store.
    pub fn shared(store: Arc<BlockStore>, quota: u64) -> Self {
        StoreHolder {
            unpin_only: true,
            ..Self::new(store, quota)
        }
    }

    fn put_all(
        &self,
        blocks: &[(BlockId, Vec<u8>)],
    ) -> Result<Vec<Result<(), HolderError>>, StoreError> {
        let _g = self.put_lock.lock();
        let mut used = self.store.stats().own_bytes;
        let mut out = Vec::with_capacity(blocks.len());
        let mut disk_full = false;
        for (id, data) in blocks {
            if self.store.has(id)? {
                // A held copy that fails verification is replaced by these (checked) bytes.
                self.store.heal(*id, data, Class::Own)?;
                self.store.pin(id)?;
                out.push(Ok(()));
                continue;
            }
            let len = data.len() as u64;
            if used.saturating_add(len) > self.quota {
                out.push(Err(HolderError::QuotaFull {
                    used,
                    quota: self.quota,
                }));
                continue;
            }
            if disk_full {
                out.push(Err(HolderError::DiskFull));
                continue;
            }
            match self.store.put(data, Class::Own) {
                Ok(got) => {
                    debug_assert_eq!(got, *id);
                    self.store.pin(&got)?;
                    used += len;
                    out.push(Ok(()));
                }
                Err(StoreError::NoSpace(_)) => {
                    disk_full = true;
                    out.push(Err(HolderError::DiskFull));
                }
                Err(e) => return Err(e),
            }
        }
        match self.store.commit() {
            Ok(()) => Ok(out),
            // Nothing of this batch is durable: none of it was stored.
            Err(StoreError::NoSpace(_)) => {
                Ok(blocks.iter().map(|_| Err(HolderError::DiskFull)).collect())
            }
            Err(e) => Err(e),
        }
    }
}

impl BlockHolder for StoreHolder {
    fn put(&self, blocks: &[(BlockId, Vec<u8>)]) -> Vec<Result<(), HolderError>> {
        match self.put_all(blocks) {
            Ok(v) => v,
            Err(e) => {
                let e = Arc::new(e);
                blocks
                    .iter()
                    .map(|_| Err(HolderError::Store(e.clone())))
                    .collect()
            }
        }
    }
    fn get(&self, id: &BlockId) -> Result<Option<Vec<u8>>, HolderError> {
        match self.store.get(id) {
            Ok(d) => Ok(Some(d)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
    fn has(&self, id: &BlockId) -> Result<bool, HolderError> {
        Ok(self.store.has(id)?)
    }
    fn delete(&self, id: &BlockId) -> Result<bool, HolderError> {
        if self.unpin_only {
            return match self.store.unpin(id) {
                Ok(()) => Ok(true),
                Err(StoreError::NotFound(_)) => Ok(false),
                Err(e) => Err(e.into()),
            };
        }
        let gone = self.store.delete(&[*id])?;
        Ok(gone == 1)
    }
    fn list(&self) -> Result<Vec<BlockId>, HolderError> {
        Ok(self.store.ids(Class::Own))
    }
    fn usage(&self) -> (u64, u64) {
        (self.store.stats().own_bytes, self.quota)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blockstore::StoreOptions;

    #[test]
    fn quota_delete_and_shared_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Arc::new(BlockStore::open(tmp.path(), StoreOptions::default()).unwrap());
        let h = StoreHolder::new(store.clone(), 10);
        let a = (BlockId::of(b"123456"), b"123456".to_vec());
        let b = (BlockId::of(b"abcdef"), b"abcdef".to_vec());
        let r = h.put(&[a.clone(), b.clone()]);
        assert!(r[0].is_ok() && matches!(r[1], Err(HolderError::QuotaFull { used: 6, .. })));
        assert_eq!(h.put(std::slice::from_ref(&a)).len(), 1);
        assert_eq!(h.get(&a.0).unwrap(), Some(a.1.clone()));
        assert!(h.delete(&a.0).unwrap() && !h.has(&a.0).unwrap());
        assert!(!h.delete(&a.0).unwrap());
        // Shared: delete unpins, the block stays until GC finds it unreachable.
        let s = StoreHolder::shared(store.clone(), u64::MAX);
        assert!(s.put(std::slice::from_ref(&b))[0].is_ok());
        assert!(s.delete(&b.0).unwrap());
        assert!(s.has(&b.0).unwrap());
        store.gc(&std::collections::HashSet::new()).unwrap();
        assert!(!s.has(&b.0).unwrap());
        assert_eq!(s.list().unwrap(), vec![]);
    }
}
