//! What a node serves from ([`Backend`]): a member device's replica, or a keeper's holder
//! with [`NoIndex`] standing in for the replica it does not have.
use crate::keep::BlockHolder;
use crate::{DeviceId, Replica, ReplicaError};
use blockstore::BlockId;
use std::sync::Arc;

/// What a node serves from: a member device's replica (and optionally a holder of copies
/// kept for redundancy), or a keeper's holder alone.
#[derive(Clone)]
pub enum Backend {
    /// A member device: syncs the index, serves its blocks, may hold copies for others.
    Device {
        /// The local volume.
        replica: Arc<dyn Replica>,
        /// Where copies placed here for redundancy go (None: refuses `PutBlocks`).
        holder: Option<Arc<dyn BlockHolder>>,
    },
    /// A keeper (storage-only peer): stores, serves, answers audits; no index, no secret.
    Keeper {
        /// The keeper's block store, under its quota.
        holder: Arc<dyn BlockHolder>,
    },
}

/// A keeper's stand-in for a replica: no index, no blocks of its own.
pub(crate) struct NoIndex;

impl Replica for NoIndex {
    fn index_id(&self) -> u64 {
        0
    }
    fn local_seq(&self) -> u64 {
        0
    }
    fn updates_since(&self, _: u64, _: usize) -> Result<Vec<(u64, Vec<u8>)>, ReplicaError> {
        Ok(Vec::new())
    }
    fn progress(&self, _: &DeviceId) -> (u64, u64) {
        (0, 0)
    }
    fn apply(&self, _: &DeviceId, _: u64, _: u64, _: Vec<Vec<u8>>) -> Result<(), ReplicaError> {
        Err(ReplicaError("a keeper holds no index".into()))
    }
    fn block(&self, _: &BlockId) -> Result<Option<Vec<u8>>, ReplicaError> {
        Ok(None)
    }
}
