//! Contacts, peers and provider records.
use super::key::Key;
use std::net::SocketAddr;

/// Most addresses a contact carries (docs/protocol.md, "Messages").
pub const MAX_ADDRS: usize = 4;

/// A node as others know it: its id and 1..=4 addresses (first: the observed one).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Contact {
    /// Its node id.
    pub id: Key,
    /// Where it takes connections, the observed source address first.
    pub addrs: Vec<SocketAddr>,
}

impl Contact {
    /// Whether the address count is within 1..=4.
    pub fn is_well_formed(&self) -> bool {
        (1..=MAX_ADDRS).contains(&self.addrs.len())
    }
}

/// Where a request goes: a known contact, or a bootstrap address whose id is not known yet
/// (the transport learns it from the TLS certificate).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Peer {
    /// A node whose id is known: the transport pins it.
    Contact(Contact),
    /// A bootstrap address: the transport learns the id from the certificate.
    Address(SocketAddr),
}

impl Peer {
    /// The id this request is pinned to, if known.
    pub fn id(&self) -> Option<Key> {
        match self {
            Peer::Contact(c) => Some(c.id),
            Peer::Address(_) => None,
        }
    }
}

/// A provider of a key as a node stores it: the provider and the seconds since it last announced.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProviderRecord {
    /// The provider.
    pub node: Contact,
    /// Seconds since the provider last announced the key.
    pub age_s: u32,
}
