//! The local volume as the protocol sees it ([`Replica`]), and a keeper's stand-in for the
//! replica it does not have ([`NoIndex`]).
use crate::DeviceId;
use blockstore::BlockId;

/// Failure of a [`Replica`] call (the local volume), logged and reported to the peer as
/// INTERNAL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// The volume (its database or block store) failed.
    #[error("volume: {0}")]
    Volume(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// This node holds no index: it is a keeper.
    #[error("a keeper holds no index")]
    NoIndex,
    /// The blocking task running the call ended without an answer (it panicked).
    #[error("the replica call's task ended without an answer")]
    TaskLost,
}

impl ReplicaError {
    /// The volume failed with `e`.
    pub fn volume(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ReplicaError::Volume(Box::new(e))
    }
}

/// The local volume as the protocol sees it. Calls may block (disk): the node runs them
/// with `spawn_blocking`.
pub trait Replica: Send + Sync + 'static {
    /// This index's id (changes only when the index is recreated).
    fn index_id(&self) -> u64;
    /// Highest local sequence number.
    fn local_seq(&self) -> u64;
    /// Signed updates with sequence > `after`, ascending, at most `max`.
    fn updates_since(&self, after: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>, ReplicaError>;
    /// Our saved position in `peer`'s index: (index_id, last applied sequence).
    fn progress(&self, peer: &DeviceId) -> (u64, u64);
    /// Applies updates from `peer`'s index and saves (index_id, upto) with them, atomically.
    fn apply(
        &self,
        peer: &DeviceId,
        index_id: u64,
        upto: u64,
        updates: Vec<Vec<u8>>,
    ) -> Result<(), ReplicaError>;
    /// A locally held block (verified), or None.
    fn block(&self, id: &BlockId) -> Result<Option<Vec<u8>>, ReplicaError>;
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
        Err(ReplicaError::NoIndex)
    }
    fn block(&self, _: &BlockId) -> Result<Option<Vec<u8>>, ReplicaError> {
        Ok(None)
    }
}
