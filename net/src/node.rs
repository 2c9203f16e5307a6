//! A running node: the QUIC endpoint, one session per connected member, block fetches.
use crate::{DeviceId, DeviceKey, Members, NetError, PendingInvite};
use blockstore::BlockId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Failure of a [`Replica`] call (the local volume), logged and reported to the peer as INTERNAL.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReplicaError(pub String);

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

/// How a node listens and whom it calls.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The volume.
    pub volume: [u8; 16],
    /// This device's name (sent in Hello).
    pub name: String,
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// Addresses to call besides those in the member list.
    pub peers: Vec<SocketAddr>,
    /// Deadline of every connect.
    pub connect_timeout: Duration,
}

/// A running node.
pub struct Node {
    _private: (),
}

impl Node {
    /// Binds, starts accepting, and keeps connections to every reachable member.
    pub async fn start(
        _cfg: NodeConfig,
        _key: Arc<DeviceKey>,
        _members: Arc<Members>,
        _replica: Arc<dyn Replica>,
    ) -> Result<Arc<Node>, NetError> {
        Err(NetError::Unimplemented)
    }
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }
    /// Wakes every session to push updates made since its last push.
    pub fn notify_local_change(&self) {}
    /// Fetches blocks from connected peers (several in parallel when more than one has them),
    /// each checked against its id; a peer sending wrong bytes is logged and another is asked.
    pub async fn fetch_blocks(
        &self,
        _ids: &[BlockId],
        _deadline: Duration,
    ) -> Vec<(BlockId, Result<Vec<u8>, NetError>)> {
        Vec::new()
    }
    /// Devices with a live session.
    pub fn connected(&self) -> Vec<DeviceId> {
        Vec::new()
    }
    /// Registers an invitation (accepted on ALPN `fossa/join/1` until it expires or is used).
    pub fn add_invite(&self, _inv: PendingInvite) {}
    /// Closes every connection (code DONE) and the endpoint.
    pub async fn shutdown(&self) {}
}
