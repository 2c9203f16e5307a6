//! fossa's block store: immutable, content-addressed blocks in the spirit of Plan 9's Venti.
//!
//! Invariants:
//! - A block is addressed by `BlockId = BLAKE3(stored bytes)`; every read re-hashes and a
//!   mismatch is [`StoreError::Corrupt`], never data.
//! - Blocks written by [`BlockStore::put`] are durable only after [`BlockStore::commit`]
//!   returns (data files synced before the index commit that points at them).
//! - Own blocks stay until [`BlockStore::gc`] finds them unreachable; pinned blocks are never
//!   collected or evicted; cached blocks live in a hit-counted LRU under a byte quota.
//!
//! Layout (see `docs/formats/blockstore.md`): append-only data files `DIR/data/NNNNNNNN.blk`
//! and a redb index `DIR/index.redb`. The index is mirrored in memory at open, so `get` is a
//! hash-map lookup, one `pread` and one BLAKE3 pass; redb is written only by `commit`.
//!
//! Non-goals: knowing what blocks mean. The store never sees plaintext; callers encrypt.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod error;
mod format;
#[doc(hidden)]
pub mod fuzz;
#[cfg(test)]
#[path = "../../tests/fixtures/golden.rs"]
mod golden;
mod id;
mod store;

pub use error::{BadFile, Damage, Invariant, StoreError, Unavailable};
pub use format::MAX_BLOCK_LEN;
pub use id::BlockId;
pub use store::{BlockStore, Class, FsckReport, GcStats, Healed, StoreOptions, StoreStats};

/// Where the filesystem layer reads blocks from: the local store first, later the network.
///
/// `fs` depends only on this trait, so `mountd` can back it with the network (DESIGN.md).
pub trait BlockSource: Send + Sync {
    /// Returns the verified bytes of block `id`.
    fn get_block(&self, id: &BlockId) -> Result<Vec<u8>, StoreError>;
}

impl BlockSource for BlockStore {
    fn get_block(&self, id: &BlockId) -> Result<Vec<u8>, StoreError> {
        self.get(id)
    }
}
