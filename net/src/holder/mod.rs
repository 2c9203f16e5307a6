//! Holding blocks for others, locally (docs/redundancy.md): the [`BlockHolder`] a node stores
//! them in, [`StoreHolder`] over a block store, what a holder answers for a put
//! ([`PutStatus`]), and the audit proof. No network here: `keep/` carries these over the wire.
mod store;

pub use store::StoreHolder;

use crate::error::LocalError;
use crate::proto::PutStatusWire;
use blockstore::BlockId;
use std::sync::Arc;

/// Failure of a [`BlockHolder`] call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HolderError {
    /// Storing would exceed the holder's quota.
    #[error("quota full: {used} of {quota} bytes used")]
    QuotaFull {
        /// Bytes held now.
        used: u64,
        /// The quota.
        quota: u64,
    },
    /// The holder's disk is full (answered as `QuotaFull`: no room).
    #[error("no space left on the holder's disk")]
    DiskFull,
    /// The local store failed (shared: one failure of a batch is the answer for each of
    /// its blocks).
    #[error("block store: {0}")]
    Store(Arc<blockstore::StoreError>),
}

impl From<blockstore::StoreError> for HolderError {
    fn from(e: blockstore::StoreError) -> Self {
        HolderError::Store(Arc::new(e))
    }
}

/// Blocks held for others, with a quota. Calls may block (disk): the node runs them on
/// `spawn_blocking`. The daemon implements it over its block store ([`StoreHolder`]).
pub trait BlockHolder: Send + Sync + 'static {
    /// Stores verified blocks durably (the call returns after they are synced). Per block:
    /// `Ok` (stored or already held) or [`HolderError::QuotaFull`]; a block already held is
    /// never refused.
    fn put(&self, blocks: &[(BlockId, Vec<u8>)]) -> Vec<Result<(), HolderError>>;
    /// A held block's bytes (verified against its id), or None.
    fn get(&self, id: &BlockId) -> Result<Option<Vec<u8>>, HolderError>;
    /// Whether the block is held.
    fn has(&self, id: &BlockId) -> Result<bool, HolderError>;
    /// Deletes a held copy; true if it was held.
    fn delete(&self, id: &BlockId) -> Result<bool, HolderError>;
    /// Every held block.
    fn list(&self) -> Result<Vec<BlockId>, HolderError>;
    /// (bytes held, quota in bytes; `u64::MAX` for none).
    fn usage(&self) -> (u64, u64);
}

/// What a holder did with one block of [`crate::Node::put_blocks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutStatus {
    /// Stored durably (or already held).
    Stored,
    /// Refused: no room (the holder's quota or its disk is full). Place the block elsewhere
    /// and send this holder nothing more until it has room.
    QuotaFull,
    /// Refused: the bytes do not hash to the id, or the block is too large to send.
    Bad,
    /// The holder failed locally (disk error, no holder configured); try another.
    Failed,
}

impl PutStatus {
    pub(crate) fn to_wire(self) -> PutStatusWire {
        match self {
            PutStatus::Stored => PutStatusWire::Stored,
            PutStatus::QuotaFull => PutStatusWire::QuotaFull,
            PutStatus::Bad => PutStatusWire::Bad,
            PutStatus::Failed => PutStatusWire::Failed,
        }
    }
    pub(crate) fn from_wire(w: PutStatusWire) -> Self {
        match w {
            PutStatusWire::Stored => PutStatus::Stored,
            PutStatusWire::QuotaFull => PutStatus::QuotaFull,
            PutStatusWire::Bad => PutStatus::Bad,
            PutStatusWire::Failed => PutStatus::Failed,
        }
    }
}

/// The audit proof of holding `block`: `BLAKE3(nonce ‖ block bytes)` (docs/redundancy.md).
pub fn audit_proof(nonce: &[u8; 32], block: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(nonce);
    h.update(block);
    *h.finalize().as_bytes()
}

/// A fresh audit nonce from the OS.
pub fn audit_nonce() -> Result<[u8; 32], LocalError> {
    let mut n = [0u8; 32];
    getrandom::fill(&mut n).map_err(|_| LocalError::NoRandomness)?;
    Ok(n)
}
