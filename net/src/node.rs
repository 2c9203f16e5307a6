//! A running node, as the daemon sees it: [`Node`] for a member device and [`Keeper`] for a
//! storage-only peer, both over a [`NodeCore`] (what every node does). The role is the type:
//! only a [`Node`] fetches blocks or sends keep requests, so no call path can forget to check.
//!
//! A node composes its parts, each handed the narrow state it needs: [`Links`] (identity and
//! the connection table), [`Local`] (what it holds), [`Rates`] (bandwidth limits),
//! [`IndexSync`] (control streams), [`Transfer`] (block streams, fetch state), [`Inviter`]
//! (joins), [`KeepClient`] (device only) and the [`Connector`] that hands each connection to
//! them. Tasks: one accept loop, one dial loop (`dial.rs`), and per connection a control
//! session plus the block streams the peer opens. Replica calls run on `spawn_blocking`; no
//! lock is held across an `.await`.
use crate::backend::{Backend, Local};
use crate::connect::{Connector, Parts, accept_loop};
use crate::error::{FetchError, NetError};
use crate::holder::{BlockHolder, PutStatus};
use crate::identity::{DeviceId, DeviceKey};
use crate::invite::{InviteBook, Inviter, JoinLimits, PendingInvite};
use crate::keep::KeepClient;
use crate::limit::Rates;
use crate::links::{Links, NodeConfig};
use crate::members::{Members, Role};
use crate::session::IndexSync;
use crate::tls;
use crate::transfer::{BlockSink, Transfer};
use blockstore::BlockId;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tracing::info;

/// Bytes on the wire (UDP payload bytes of every QUIC connection, closed ones included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// UDP bytes sent.
    pub bytes_sent: u64,
    /// UDP bytes received.
    pub bytes_received: u64,
    /// Connections open now (sessions, joins, duplicates being closed).
    pub connections: usize,
    /// `Index` batches received from peers (always 0 on a keeper: it closes on one).
    pub index_batches_received: u64,
}

/// What every node does, device or keeper: listen, keep sessions with members, serve blocks,
/// admit joins. Reached through [`Node`] or [`Keeper`] (both deref to it).
pub struct NodeCore {
    links: Arc<Links>,
    local: Arc<Local>,
    rates: Arc<Rates>,
    sync: Arc<IndexSync>,
    transfer: Arc<Transfer>,
    inviter: Arc<Inviter>,
    connector: Arc<Connector>,
}

/// A member device's node: a [`NodeCore`] that also fetches blocks and asks peers to keep
/// them (the twin of the `compile_fail` examples on [`Keeper`]):
///
/// ```
/// async fn device_fetches_and_puts(n: &fossa_net::Node, peer: &fossa_net::DeviceId) {
///     n.fetch_blocks(&[], std::time::Duration::ZERO).await;
///     let _ = n.put_blocks(peer, &[], std::time::Duration::ZERO).await;
/// }
/// ```
pub struct Node {
    core: NodeCore,
    keep: KeepClient,
}

/// A keeper's node (`fossa keeper`): a storage-only peer serving its holder to the volume's
/// member devices. It never syncs an index and asks nothing of anyone: it has no fetch and
/// no keep requests.
///
/// ```compile_fail
/// async fn keeper_cannot_fetch(k: &fossa_net::Keeper) {
///     k.fetch_blocks(&[], std::time::Duration::ZERO).await;
/// }
/// ```
/// ```compile_fail
/// async fn keeper_cannot_put(k: &fossa_net::Keeper, peer: &fossa_net::DeviceId) {
///     k.put_blocks(peer, &[], std::time::Duration::ZERO).await;
/// }
/// ```
pub struct Keeper {
    core: NodeCore,
}

impl Deref for Node {
    type Target = NodeCore;
    fn deref(&self) -> &NodeCore {
        &self.core
    }
}

impl Deref for Keeper {
    type Target = NodeCore;
    fn deref(&self) -> &NodeCore {
        &self.core
    }
}

impl NodeCore {
    /// Binds and starts the accept and dial loops. Must run inside a tokio runtime.
    fn start(
        cfg: NodeConfig,
        key: Arc<DeviceKey>,
        members: Arc<Members>,
        local: Local,
    ) -> Result<Self, NetError> {
        let book: Arc<Mutex<InviteBook>> = Arc::default();
        let gate_book = book.clone();
        let gate: tls::JoinGate = Arc::new(move || gate_book.lock().is_open(SystemTime::now()));
        let server_tls = tls::ServerTls::new(&key, members.clone(), gate)?;
        let endpoint = tls::quic_endpoint(cfg.listen, Some(server_tls.config(None)?))?;
        let links = Arc::new(Links::new(cfg, key, members, endpoint));
        let local = Arc::new(local);
        let rates = Arc::new(Rates::new());
        let parts = Parts {
            links: links.clone(),
            local: local.clone(),
            rates: rates.clone(),
            sync: Arc::new(IndexSync::new(links.clone(), local.clone())),
            transfer: Arc::new(Transfer::new(links.clone(), local.clone(), rates.clone())),
            inviter: Arc::new(Inviter::new(links.clone(), book)),
        };
        let core = NodeCore {
            links: links.clone(),
            local,
            rates,
            sync: parts.sync.clone(),
            transfer: parts.transfer.clone(),
            inviter: parts.inviter.clone(),
            connector: Arc::new(Connector::new(parts, server_tls)),
        };
        info!(device = %links.id(), addr = %links.local_addr(), "node listening");
        let weak = Arc::downgrade(&core.connector);
        tokio::spawn(accept_loop(links.endpoint().clone(), weak.clone()));
        tokio::spawn(crate::dial::dial_loop(weak));
        Ok(core)
    }
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.links.local_addr()
    }
    /// Device or keeper.
    pub fn role(&self) -> Role {
        self.local.role
    }
    /// This node's device id.
    pub fn id(&self) -> DeviceId {
        self.links.id()
    }
    /// Devices with a live session.
    pub fn connected(&self) -> Vec<DeviceId> {
        self.links.connected()
    }
    /// Registers an invitation (accepted on ALPN `fossa/join/2` until it expires, a join with
    /// it completes, or failed attempts withdraw it). A completed join adds the joiner to
    /// [`Members`], whose [`Members::subscribe`] then fires: the daemon saves the list there.
    pub fn add_invite(&self, inv: PendingInvite) {
        self.inviter.add(inv);
    }
    /// Replaces the limits on failed join attempts (crypto.md, "Invitations").
    pub fn set_join_limits(&self, limits: JoinLimits) {
        self.inviter.set_limits(limits);
    }
    /// Limits block data sent to and received from all peers together, in bytes per second
    /// (0: unlimited). Index updates are not limited.
    pub fn set_rate_limits(&self, max_send: u64, max_recv: u64) {
        self.rates.send.set_rate(max_send);
        self.rates.recv.set_rate(max_recv);
    }
    /// Total bytes on the wire since start.
    pub fn stats(&self) -> NetStats {
        let t = self.links.traffic();
        NetStats {
            bytes_sent: t.sent,
            bytes_received: t.received,
            connections: t.connections,
            index_batches_received: self.sync.batches_received(),
        }
    }
    /// Connects to `addr` once (bounded by `connect_timeout`) and, on success, keeps the
    /// session running in the background. Returns the peer's device id.
    pub async fn connect(&self, addr: SocketAddr) -> Result<DeviceId, NetError> {
        let (peer, _task) = self.connector.dial(addr, None).await?;
        Ok(peer)
    }
    /// Closes every connection (code DONE) and the endpoint.
    pub async fn shutdown(&self) {
        self.links.shutdown().await;
    }
    /// A block held here (for others, or the replica's own), read on a blocking thread.
    pub(crate) async fn local_block(&self, id: BlockId) -> Option<Vec<u8>> {
        self.local.block(id).await
    }
}

impl Node {
    /// Binds, starts accepting, and keeps connections to every reachable member. Must run
    /// inside a tokio runtime (the endpoint and the node's tasks live there).
    pub async fn start(
        cfg: NodeConfig,
        key: Arc<DeviceKey>,
        members: Arc<Members>,
        replica: Arc<dyn crate::Replica>,
    ) -> Result<Arc<Node>, NetError> {
        let backend = Backend {
            replica,
            holder: None,
        };
        Self::start_with(cfg, key, members, backend).await
    }
    /// Starts a keeper: see [`Keeper::start`].
    pub async fn start_keeper(
        cfg: NodeConfig,
        key: Arc<DeviceKey>,
        members: Arc<Members>,
        holder: Arc<dyn BlockHolder>,
    ) -> Result<Arc<Keeper>, NetError> {
        Keeper::start(cfg, key, members, holder).await
    }
    /// Like [`Node::start`], with the backend spelt out (a device that holds copies for
    /// redundancy).
    #[expect(
        clippy::unused_async,
        reason = "async so that callers are inside the runtime the endpoint needs"
    )]
    pub async fn start_with(
        cfg: NodeConfig,
        key: Arc<DeviceKey>,
        members: Arc<Members>,
        backend: Backend,
    ) -> Result<Arc<Node>, NetError> {
        let core = NodeCore::start(cfg, key, members, Local::device(backend))?;
        let keep = KeepClient::new(core.links.clone(), core.rates.clone());
        Ok(Arc::new(Node { core, keep }))
    }
    /// Wakes every session to push updates made since its last push.
    pub fn notify_local_change(&self) {
        self.sync.notify();
    }
    /// Fetches blocks from connected peers (several in parallel when more than one has them),
    /// each checked against its id; a peer sending wrong bytes is logged and another is asked.
    /// Results are in the order of `ids`; the whole call returns within `deadline`.
    pub async fn fetch_blocks(
        &self,
        ids: &[BlockId],
        deadline: Duration,
    ) -> Vec<(BlockId, Result<Vec<u8>, FetchError>)> {
        self.transfer.fetch(ids, deadline).await
    }
    /// Like [`Node::fetch_blocks`], but each block goes to `sink` as soon as it has arrived and
    /// been checked (once per id, from any thread of the runtime), so a caller can store blocks
    /// while the rest are on the wire. Returns the ids not fetched, with why.
    pub async fn fetch_blocks_each(
        &self,
        ids: &[BlockId],
        deadline: Duration,
        sink: BlockSink,
    ) -> Vec<(BlockId, FetchError)> {
        self.transfer.fetch_each(ids, deadline, sink).await
    }
    /// Asks `peer` to store `blocks` (each `(id, bytes)`, checked by the holder) durably.
    /// One status per block, in order: [`PutStatus::QuotaFull`] means place it elsewhere.
    /// A block too large for one message is [`PutStatus::Bad`] without being sent.
    pub async fn put_blocks(
        &self,
        peer: &DeviceId,
        blocks: &[(BlockId, Vec<u8>)],
        deadline: Duration,
    ) -> Result<Vec<PutStatus>, NetError> {
        self.keep.put_blocks(peer, blocks, deadline).await
    }
    /// Asks `peer` which of `ids` it holds (its word only: check with [`Node::audit`]).
    pub async fn has_blocks(
        &self,
        peer: &DeviceId,
        ids: &[BlockId],
        deadline: Duration,
    ) -> Result<Vec<bool>, NetError> {
        self.keep.has_blocks(peer, ids, deadline).await
    }
    /// Tells `peer` it may delete its copies of `ids`: send only for surplus copies (the
    /// planner's word that enough other copies exist). Which copies it deleted, in order.
    pub async fn drop_blocks(
        &self,
        peer: &DeviceId,
        ids: &[BlockId],
        deadline: Duration,
    ) -> Result<Vec<bool>, NetError> {
        self.keep.drop_blocks(peer, ids, deadline).await
    }
    /// Challenges `peer` to prove it holds `ids`: per id, its `BLAKE3(nonce ‖ block)` or None
    /// (not held). Compare with [`crate::audit_proof`] over a verified copy; a wrong or
    /// missing proof, or no answer by the deadline, is a failed audit.
    pub async fn audit(
        &self,
        peer: &DeviceId,
        nonce: [u8; 32],
        ids: &[BlockId],
        deadline: Duration,
    ) -> Result<Vec<Option<[u8; 32]>>, NetError> {
        self.keep.audit(peer, nonce, ids, deadline).await
    }
}

impl Keeper {
    /// Starts a keeper (`fossa keeper`): a storage-only peer serving `holder` to the volume's
    /// member devices. It never syncs an index. Must run inside a tokio runtime.
    #[expect(
        clippy::unused_async,
        reason = "async so that callers are inside the runtime the endpoint needs"
    )]
    pub async fn start(
        cfg: NodeConfig,
        key: Arc<DeviceKey>,
        members: Arc<Members>,
        holder: Arc<dyn BlockHolder>,
    ) -> Result<Arc<Keeper>, NetError> {
        let core = NodeCore::start(cfg, key, members, Local::keeper(holder))?;
        Ok(Arc::new(Keeper { core }))
    }
}
