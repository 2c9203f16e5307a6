//! fossa's network layer: device identity, pinned QUIC sessions, the sync protocol
//! (docs/protocol.md) and block transfer between the member devices of a volume.
//!
//! Invariants: a peer is who its key says (DeviceId = BLAKE3 of its Ed25519 public key, both TLS
//! sides pinned against the member list); every message is length-bounded
//! ([`MAX_MESSAGE_SIZE`]) and versioned in the ALPN; every block received is checked against its
//! id before anyone sees it; every connect and remote wait has a deadline.
//!
//! Keepers (storage-only peers, docs/redundancy.md) are members with role [`Role::Keeper`]:
//! they hold and serve ciphertext blocks ([`BlockHolder`], [`Keeper`]) and never
//! see the volume secret or an index update; [`repair`] plans and executes placement, audits
//! and repair for the redundancy levels.
//!
//! Non-goals: the meaning of index updates (opaque signed blobs made and merged by `fossa_fs`,
//! reached through the [`Replica`] trait), the filesystem, FUSE.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![forbid(unsafe_code)]

mod backend;
mod connect;
pub mod dht;
mod dial;
mod discovery;
mod error;
#[doc(hidden)]
pub mod fuzz;
#[cfg(test)]
#[path = "../../tests/fixtures/golden.rs"]
mod golden;
mod holder;
mod identity;
mod invite;
mod keep;
mod limit;
mod links;
mod members;
mod node;
mod proto;
mod refusals;
pub mod repair;
mod replica;
mod session;
mod tls;
mod transfer;

pub use backend::Backend;
pub use discovery::{DISCOVERY_PORT, Discovery, DiscoveryConfig, Sighting};
pub use error::{FetchError, InviteError, LinkError, LocalError, NetError, PeerError};
pub use holder::{BlockHolder, HolderError, PutStatus, StoreHolder, audit_nonce, audit_proof};
pub use identity::{DeviceId, DeviceKey, KeyError, verify_signature};
pub use invite::{
    CodeError, InviteCode, JoinLimits, JoinResult, PendingInvite, PendingJoin, begin_join,
    begin_join_from, join, join_proof,
};
pub use links::NodeConfig;
pub use members::{MemberRecord, Members, Role, SignedMember};
pub use node::{Keeper, NetStats, Node, NodeCore};
pub use replica::{Replica, ReplicaError};
pub use tls::{quic_endpoint, raw_client_config, raw_server_config};
pub use transfer::BlockSink;

/// ALPN of the sync protocol between members: carries the major version.
pub const ALPN: &[u8] = b"fossa/sync/1";
/// ALPN of joining with an invitation.
pub const ALPN_JOIN: &[u8] = b"fossa/join/2";
/// Largest message body accepted on any stream (docs/protocol.md, "Framing").
pub const MAX_MESSAGE_SIZE: usize = 4 << 20;
