//! [`StoreHolder`]: a [`BlockHolder`] over a `blockstore::BlockStore`, what `fossa keeper` runs.
use super::{BlockHolder, HolderError};
use blockstore::{BlockId, BlockStore, Class, StoreError};
use parking_lot::Mutex;
use std::sync::Arc;

/// Held blocks are class Own and pinned in the store; the quota counts Own bytes.
pub struct StoreHolder {
    store: Arc<BlockStore>,
    quota: u64,
    /// Serialises puts so two batches cannot both pass the quota check.
    put_lock: Mutex<()>,
}

impl StoreHolder {
    /// Holds blocks in `store` up to `quota` bytes (`u64::MAX`: no quota).
    pub fn new(store: Arc<BlockStore>, quota: u64) -> Self {
        StoreHolder {
            store,
            quota,
            put_lock: Mutex::new(()),
        }
    }

    fn put_all(
        &self,
        blocks: &[(BlockId, Vec<u8>)],
    ) -> Result<Vec<Result<(), HolderError>>, StoreError> {
        let _g = self.put_lock.lock();
        let mut used = self.store.stats().own_bytes;
        let mut out = Vec::with_capacity(blocks.len());
        for (id, data) in blocks {
            if self.store.has(id)? {
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
            let got = self.store.put(data, Class::Own)?;
            debug_assert_eq!(got, *id);
            self.store.pin(&got)?;
            used += len;
            out.push(Ok(()));
        }
        self.store.commit()?;
        Ok(out)
    }
}

impl BlockHolder for StoreHolder {
    fn put(&self, blocks: &[(BlockId, Vec<u8>)]) -> Vec<Result<(), HolderError>> {
        match self.put_all(blocks) {
            Ok(v) => v,
            Err(e) => {
                let msg = e.to_string();
                blocks
                    .iter()
                    .map(|_| Err(HolderError::Local(msg.clone())))
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
