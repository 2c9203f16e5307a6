//! fossa's filesystem layer: a mutable, encrypted filesystem in the spirit of Plan 9's Fossil,
//! over the immutable block store.
//!
//! Invariants (../../docs/ARCHITECTURE.md, docs/crypto.md):
//! - Nothing leaves this crate in plaintext: file chunks, pointer blocks and snapshot
//!   directories are convergently encrypted blocks; every metadata record is sealed; names are
//!   indexed by keyed tags.
//! - Files are Merkle trees of content-defined chunks: a write rewrites only the chunks around
//!   it and the pointer blocks above them.
//! - `fsync` returns after data and the metadata that reaches it are durable.
//!
//! Non-goals: FUSE (no fuser type appears here: mountd adapts), the network (blocks come
//! through [`blockstore::BlockSource`]).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![forbid(unsafe_code)]

pub mod attr;
mod civil;
mod core;
pub mod crypto;
mod error;
pub mod file;
mod format;
#[doc(hidden)]
pub mod fuzz;
#[cfg(test)]
#[path = "../../tests/fixtures/golden.rs"]
mod golden;
mod maint;
mod meta;
mod ns;
mod redundancy;
mod snapshot;
pub mod sync;
pub mod volkey;
mod volume;
mod write;

pub use attr::*;
pub use civil::utc_civil;
pub use core::FsOptions;
pub use error::{Bug, FsError, MetaDamage};
pub use maint::{FsckReport, GcReport, VolumeStats};
pub use redundancy::{
    DEFAULT_LEVEL, LevelDir, MAX_LEVEL, REDUNDANCY_XATTR, Redundancy, parse_level,
};
pub use snapshot::SnapshotInfo;
pub use snapshot::recover::{RecoverFrom, Recovered, Recovery, recover_meta};
pub use volume::{Fs, LocalRead};
