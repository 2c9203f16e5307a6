//! Wire structs of tickets, releases and join codes (postcard, fields in the order of
//! crypto.md), separate from the domain types and converted explicitly.
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Most links of a ticket chain (crypto.md, "Swarm tickets").
pub(crate) const MAX_TICKET_LINKS: usize = 4;

/// One link of a ticket chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LinkWire {
    pub(crate) node: [u8; 32],
    pub(crate) may_admit: bool,
    pub(crate) expiry: u64,
    pub(crate) issuer_key: [u8; 32],
    /// 64 bytes (Ed25519); another length is malformed.
    #[serde(with = "serde_bytes")]
    pub(crate) sig: Vec<u8>,
}

/// A ticket: the swarm and its chain, founder's link first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TicketWire {
    pub(crate) swarm: [u8; 16],
    pub(crate) links: Vec<LinkWire>,
}

/// A signed release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReleaseWire {
    pub(crate) swarm: [u8; 16],
    pub(crate) node: [u8; 32],
    pub(crate) owner: [u8; 32],
    pub(crate) device: [u8; 32],
    pub(crate) issued: u64,
    pub(crate) ids: Vec<[u8; 32]>,
    /// 64 bytes (Ed25519); another length is malformed.
    #[serde(with = "serde_bytes")]
    pub(crate) sig: Vec<u8>,
}

/// The body of a `FOSSAS1-` join code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JoinCodeWire {
    pub(crate) swarm: [u8; 16],
    pub(crate) founder: Option<[u8; 32]>,
    pub(crate) ticket: Option<TicketWire>,
    pub(crate) bootstrap: Vec<SocketAddr>,
}
