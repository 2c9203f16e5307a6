//! The sans-IO Kademlia core of the swarm DHT (docs/protocol.md, "The swarm DHT, version 1").
//!
//! [`Dht`] is one node's protocol state: a routing table of 256 buckets with replacement lists
//! and ping-the-oldest eviction, iterative lookups with `ALPHA` requests in flight (optionally on
//! disjoint paths), a provider store with limits and expiry, the provider side (announce and
//! republish), bucket refresh and bootstrap, and the bookkeeping of its own requests. It is
//! driven like quinn-proto: the caller passes the time ([`Millis`]) and the authenticated
//! sender with every input, and polls messages to send ([`Dht::poll_transmit`]), the next
//! timer ([`Dht::poll_timeout`]) and events ([`Dht::poll_event`]). The daemon drives it over
//! QUIC (ALPN `fossa/dht/1`), the simulator (`net/examples/dht_sim.rs`) over a discrete-event
//! queue: the same code.
//!
//! Invariants: only a node that spoke to us itself (a request from it or an answer from it)
//! enters the routing table; contacts named in answers only feed lookups. A live old contact is
//! never pushed out by a new one. Every request the core sends ends exactly once (answer,
//! failure or timeout). Deterministic: no clock, no OS randomness (a PRNG seeded by the caller),
//! no decision taken by the iteration order of a randomly hashed map; the same inputs in the
//! same order give the same outputs. [`Dht::check_invariants`] checks the state.
//!
//! Non-goals: sockets, connections, the wire codec (`proto::dht`), admission (tickets and
//! `SwarmHello` are checked by the transport before a message reaches the core), storing blocks.
mod config;
mod contact;
mod key;
mod lookup;
mod msg;
mod node;
mod prefix;
mod providers;
mod requests;
mod rng;
pub mod sim;
mod table;
#[cfg(test)]
mod testnet;
mod time;

pub use config::Config;
pub use contact::{Contact, MAX_ADDRS, Peer, ProviderRecord};
pub use key::{Distance, Key};
pub use lookup::{LookupId, LookupKind, LookupResult};
pub use msg::{Request, Response};
pub use node::{Dht, DhtStats, Event};
pub use prefix::AddrGroup;
pub use requests::{Outgoing, RequestId};
pub use table::{Bucket, Entry, RoutingTable, Seen};
pub use time::Millis;
