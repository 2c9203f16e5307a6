//! fossa's network layer: device identity, QUIC sessions, the sync protocol, block transfer,
//! replication and the DHT.
//!
//! Status: a placeholder crate. The single-device filesystem does not use the network; the
//! multi-device sync issue fills this in. It will depend only on `blockstore`.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![forbid(unsafe_code)]

/// The ALPN protocol id, carrying the protocol's major version.
pub const ALPN: &[u8] = b"fossa/sync/1";
