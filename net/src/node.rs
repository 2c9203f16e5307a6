//! A running node: the QUIC endpoint, one session per connected member, block fetches.
//!
//! Tasks: one accept loop, one dial loop (reconnects to `cfg.peers` and to members' last
//! addresses with a bounded backoff), and per connection a control session
//! (`session.rs`) plus a block-serving loop (`transfer.rs`). Replica calls run on
//! `spawn_blocking`; no lock is held across an `.await`.
pub use crate::backend::Backend;
use crate::backend::NoIndex;
use crate::invite::InviteBook;
use crate::keep::BlockHolder;
use crate::limit::Limiter;
use crate::proto::code;
use crate::refusals::RefusalLog;
use crate::session::{self, Negotiated};
use crate::tls;
use crate::{
    ALPN, ALPN_JOIN, DeviceId, DeviceKey, JoinLimits, Members, NetError, PendingInvite, Role,
};
use blockstore::BlockId;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;
use tracing::{debug, info, warn};

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

/// The live session with one peer.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) conn: quinn::Connection,
    /// Who opened the connection (dedupe: the greater opener wins).
    pub(crate) opener: DeviceId,
}

/// A running node.
pub struct Node {
    pub(crate) cfg: NodeConfig,
    pub(crate) key: Arc<DeviceKey>,
    pub(crate) members: Arc<Members>,
    pub(crate) replica: Arc<dyn Replica>,
    /// Blocks held for others (every keeper; a device that accepts copies).
    pub(crate) holder: Option<Arc<dyn BlockHolder>>,
    /// Device or keeper.
    pub(crate) role: Role,
    /// Index batches received (a keeper must never see one).
    pub(crate) index_received: AtomicU64,
    endpoint: quinn::Endpoint,
    sessions: Mutex<HashMap<DeviceId, Session>>,
    /// Pending invitations and failed join attempts.
    pub(crate) invites: Arc<Mutex<InviteBook>>,
    /// The TLS server side, for a configuration per incoming connection.
    server_tls: tls::ServerTls,
    /// Refused clients logged, per device.
    refused_in: RefusalLog<DeviceId>,
    /// Refusals met or made when dialling, logged per address.
    refused_out: RefusalLog<SocketAddr>,
    /// Bumped by `notify_local_change`; sessions push when it moves.
    pub(crate) changes: watch::Sender<u64>,
    stop: watch::Sender<bool>,
    conns: Mutex<HashMap<usize, quinn::Connection>>,
    closed_tx: AtomicU64,
    closed_rx: AtomicU64,
    pub(crate) rr: AtomicUsize,
    /// Blocks some fetch is asking peers for now, with who else waits for them: a second
    /// fetch of the same block waits for the first instead of moving its bytes again.
    pub(crate) fetching: Arc<crate::transfer::InFlight>,
    /// `--max-send`: block data served to peers.
    pub(crate) send_limit: Arc<Limiter>,
    /// `--max-recv`: block data fetched from peers.
    pub(crate) recv_limit: Arc<Limiter>,
}

/// Removes a connection from the live set and adds its bytes to the totals when dropped.
struct ConnGuard {
    node: Arc<Node>,
    id: usize,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Some(c) = self.node.conns.lock().remove(&self.id) {
            let s = c.stats();
            self.node
                .closed_tx
                .fetch_add(s.udp_tx.bytes, Ordering::Relaxed);
            self.node
                .closed_rx
                .fetch_add(s.udp_rx.bytes, Ordering::Relaxed);
        }
    }
}

impl Node {
    /// Binds, starts accepting, and keeps connections to every reachable member. Must run
    /// inside a tokio runtime (the endpoint and the node's tasks live there).
    pub async fn start(
        cfg: NodeConfig,
        key: Arc<DeviceKey>,
        members: Arc<Members>,
        replica: Arc<dyn Replica>,
    ) -> Result<Arc<Node>, NetError> {
        let backend = Backend::Device {
            replica,
            holder: None,
        };
        Self::start_with(cfg, key, members, backend).await
    }
    /// Starts a keeper (`fossa keeper`): a storage-only peer serving `holder` to the volume's
    /// member devices. It never syncs an index.
    pub async fn start_keeper(
        cfg: NodeConfig,
        key: Arc<DeviceKey>,
        members: Arc<Members>,
        holder: Arc<dyn BlockHolder>,
    ) -> Result<Arc<Node>, NetError> {
        Self::start_with(cfg, key, members, Backend::Keeper { holder }).await
    }
    /// Like [`Node::start`], with the backend spelt out (a device that holds copies for
    /// redundancy, or a keeper).
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
        let (replica, holder, role): (Arc<dyn Replica>, _, _) = match backend {
            Backend::Device { replica, holder } => (replica, holder, Role::Device),
            Backend::Keeper { holder } => (Arc::new(NoIndex), Some(holder), Role::Keeper),
        };
        let invites: Arc<Mutex<InviteBook>> = Arc::default();
        let gate_invites = invites.clone();
        let gate: tls::JoinGate = Arc::new(move || gate_invites.lock().is_open(SystemTime::now()));
        let server_tls = tls::ServerTls::new(&key, members.clone(), gate)?;
        let endpoint = tls::quic_endpoint(cfg.listen, Some(server_tls.config(None)?))?;
        let node = Arc::new(Node {
            cfg,
            key,
            members,
            replica,
            holder,
            role,
            index_received: AtomicU64::new(0),
            endpoint,
            sessions: Mutex::new(HashMap::new()),
            invites,
            server_tls,
            refused_in: RefusalLog::default(),
            refused_out: RefusalLog::default(),
            changes: watch::Sender::new(0),
            stop: watch::Sender::new(false),
            conns: Mutex::new(HashMap::new()),
            closed_tx: AtomicU64::new(0),
            closed_rx: AtomicU64::new(0),
            rr: AtomicUsize::new(0),
            fetching: Arc::default(),
            send_limit: Arc::new(Limiter::new()),
            recv_limit: Arc::new(Limiter::new()),
        });
        info!(device = %node.key.id(), addr = %node.local_addr(), "node listening");
        tokio::spawn(accept_loop(node.endpoint.clone(), Arc::downgrade(&node)));
        tokio::spawn(crate::dial::dial_loop(Arc::downgrade(&node)));
        Ok(node)
    }
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }
    /// Device or keeper.
    pub fn role(&self) -> Role {
        self.role
    }
    /// This node's device id.
    pub fn id(&self) -> DeviceId {
        self.key.id()
    }
    /// Wakes every session to push updates made since its last push.
    pub fn notify_local_change(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }
    /// Fetches blocks from connected peers (several in parallel when more than one has them),
    /// each checked against its id; a peer sending wrong bytes is logged and another is asked.
    /// Results are in the order of `ids`; the whole call returns within `deadline`.
    pub async fn fetch_blocks(
        &self,
        ids: &[BlockId],
        deadline: Duration,
    ) -> Vec<(BlockId, Result<Vec<u8>, NetError>)> {
        if self.role == Role::Keeper {
            // Devices serve no one but devices: a keeper holds only what it was given.
            return ids
                .iter()
                .map(|id| (*id, Err(NetError::NotFound)))
                .collect();
        }
        crate::transfer::fetch(self, ids, deadline).await
    }
    /// Like [`Node::fetch_blocks`], but each block goes to `sink` as soon as it has arrived and
    /// been checked (once per id, from any thread of the runtime), so a caller can store blocks
    /// while the rest are on the wire. Returns the ids not fetched, with why.
    pub async fn fetch_blocks_each(
        &self,
        ids: &[BlockId],
        deadline: Duration,
        sink: crate::BlockSink,
    ) -> Vec<(BlockId, NetError)> {
        if self.role == Role::Keeper {
            return ids.iter().map(|id| (*id, NetError::NotFound)).collect();
        }
        crate::transfer::fetch_each(self, ids, deadline, sink).await
    }
    /// Devices with a live session.
    pub fn connected(&self) -> Vec<DeviceId> {
        let mut v: Vec<DeviceId> = self
            .sessions
            .lock()
            .iter()
            .filter(|(_, s)| s.conn.close_reason().is_none())
            .map(|(d, _)| *d)
            .collect();
        v.sort();
        v
    }
    /// Registers an invitation (accepted on ALPN `fossa/join/2` until it expires, a join with
    /// it completes, or failed attempts withdraw it). A completed join adds the joiner to
    /// [`Members`], whose [`Members::subscribe`] then fires: the daemon saves the list there.
    pub fn add_invite(&self, inv: PendingInvite) {
        self.invites.lock().add(inv, SystemTime::now());
    }
    /// Replaces the limits on failed join attempts (crypto.md, "Invitations").
    pub fn set_join_limits(&self, limits: JoinLimits) {
        self.invites.lock().set_limits(limits);
    }
    /// Limits block data sent to and received from all peers together, in bytes per second
    /// (0: unlimited). Index updates are not limited.
    pub fn set_rate_limits(&self, max_send: u64, max_recv: u64) {
        self.send_limit.set_rate(max_send);
        self.recv_limit.set_rate(max_recv);
    }
    /// Total bytes on the wire since start.
    pub fn stats(&self) -> NetStats {
        let conns = self.conns.lock();
        let mut st = NetStats {
            bytes_sent: self.closed_tx.load(Ordering::Relaxed),
            bytes_received: self.closed_rx.load(Ordering::Relaxed),
            connections: conns.len(),
            index_batches_received: self.index_received.load(Ordering::Relaxed),
        };
        for c in conns.values() {
            let s = c.stats();
            st.bytes_sent += s.udp_tx.bytes;
            st.bytes_received += s.udp_rx.bytes;
        }
        st
    }
    /// Connects to `addr` once (bounded by `connect_timeout`) and, on success, keeps the
    /// session running in the background. Returns the peer's device id.
    pub async fn connect(self: &Arc<Self>, addr: SocketAddr) -> Result<DeviceId, NetError> {
        let (peer, _task) = self.dial(addr, None).await?;
        Ok(peer)
    }
    /// Closes every connection (code DONE) and the endpoint.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let conns: Vec<quinn::Connection> = self.conns.lock().values().cloned().collect();
        for c in conns {
            c.close(code::DONE.into(), b"shutdown");
        }
        self.endpoint.close(code::DONE.into(), b"shutdown");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }

    pub(crate) fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Live sessions, in a stable order.
    pub(crate) fn sessions(&self) -> Vec<(DeviceId, Session)> {
        let mut v: Vec<(DeviceId, Session)> = self
            .sessions
            .lock()
            .iter()
            .filter(|(_, s)| s.conn.close_reason().is_none())
            .map(|(d, s)| (*d, s.clone()))
            .collect();
        v.sort_by_key(|(d, _)| *d);
        v
    }

    fn track(self: &Arc<Self>, conn: &quinn::Connection) -> ConnGuard {
        self.conns.lock().insert(conn.stable_id(), conn.clone());
        ConnGuard {
            node: self.clone(),
            id: conn.stable_id(),
        }
    }

    /// Makes `conn` the session with `peer` unless a better one exists (the connection opened
    /// by the greater DeviceId wins; between two opened by the same side, the newer).
    fn register(&self, peer: DeviceId, conn: &quinn::Connection, opener: DeviceId) -> bool {
        let loser = {
            let mut sessions = self.sessions.lock();
            match sessions.get(&peer) {
                Some(old) if old.conn.close_reason().is_none() && old.opener > opener => {
                    return false;
                }
                _ => sessions.insert(
                    peer,
                    Session {
                        conn: conn.clone(),
                        opener,
                    },
                ),
            }
        };
        if let Some(old) = loser
            && old.conn.stable_id() != conn.stable_id()
        {
            old.conn.close(code::DONE.into(), b"duplicate");
        }
        true
    }

    fn unregister(&self, peer: &DeviceId, conn: &quinn::Connection) {
        let mut sessions = self.sessions.lock();
        if sessions
            .get(peer)
            .is_some_and(|s| s.conn.stable_id() == conn.stable_id())
        {
            sessions.remove(peer);
        }
    }

    /// Dials `addr` (server pinned to `expected` if given, and to the member list); on success
    /// the session runs in the returned task. A refusal either way is logged (rate-limited).
    pub(crate) async fn dial(
        self: &Arc<Self>,
        addr: SocketAddr,
        expected: Option<DeviceId>,
    ) -> Result<(DeviceId, tokio::task::JoinHandle<()>), NetError> {
        let slot = tls::RefusedSlot::default();
        let result = self.dial_noting(addr, expected, slot.clone()).await;
        if let Err(e) = &result {
            let refused_peer = *slot.lock();
            self.log_dial_refusal(addr, expected, refused_peer, e);
        }
        result
    }

    async fn dial_noting(
        self: &Arc<Self>,
        addr: SocketAddr,
        expected: Option<DeviceId>,
        slot: tls::RefusedSlot,
    ) -> Result<(DeviceId, tokio::task::JoinHandle<()>), NetError> {
        let members = Some(self.members.clone());
        let cfg = tls::client_config_noting(&self.key, expected, members, ALPN, Some(slot))?;
        let connecting = self.endpoint.connect_with(cfg, addr, "fossa")?;
        let conn = tokio::time::timeout(self.cfg.connect_timeout, connecting)
            .await
            .map_err(|_| NetError::Timeout)??;
        let guard = self.track(&conn);
        let peer = tls::peer_device(&conn).ok_or(NetError::Protocol("peer certificate"))?;
        if peer == self.key.id() {
            conn.close(code::DONE.into(), b"self");
            return Err(NetError::Protocol("connected to self"));
        }
        let (mut send, mut recv) = conn.open_bi().await?;
        let neg = self.negotiate(&conn, peer, &mut send, &mut recv).await?;
        let node = self.clone();
        let me = self.key.id();
        let task = tokio::spawn(async move {
            node.run_connection(conn, peer, me, send, recv, neg).await;
            drop(guard);
        });
        Ok((peer, task))
    }

    /// Logs (at most once a minute per address) a dial that failed because one side refused
    /// the other's key; other failures stay at debug level.
    fn log_dial_refusal(
        &self,
        addr: SocketAddr,
        expected: Option<DeviceId>,
        refused_peer: Option<DeviceId>,
        e: &NetError,
    ) {
        let by_peer = refused_by_peer(e);
        if refused_peer.is_none() && !by_peer {
            return;
        }
        let Some(quiet) = self.refused_out.admit(addr, Instant::now()) else {
            return;
        };
        match refused_peer {
            Some(peer) => warn!(
                %addr, %peer, not_logged_since = quiet,
                "refused the peer at this address: its device is not a member of this volume"
            ),
            None => warn!(
                %addr, device = ?expected, not_logged_since = quiet,
                "refused by the peer at this address: this device is not a member there \
                 (revoked, or another volume)"
            ),
        }
    }

    /// Runs the opening exchange under `connect_timeout`; on failure closes `conn`.
    async fn negotiate(
        self: &Arc<Self>,
        conn: &quinn::Connection,
        peer: DeviceId,
        send: &mut quinn::SendStream,
        recv: &mut quinn::RecvStream,
    ) -> Result<Negotiated, NetError> {
        let neg = tokio::time::timeout(
            self.cfg.connect_timeout,
            session::negotiate(self, conn, peer, send, recv),
        )
        .await;
        match neg {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => {
                session::close_for(conn, peer, &e);
                Err(e.into())
            }
            Err(_) => {
                conn.close(code::DONE.into(), b"timeout");
                Err(NetError::Timeout)
            }
        }
    }

    async fn handle_incoming(self: Arc<Self>, incoming: quinn::Incoming) {
        let remote = incoming.remote_address();
        let slot = tls::RefusedSlot::default();
        let connecting = match self.server_tls.config(Some(slot.clone())) {
            Ok(cfg) => incoming.accept_with(Arc::new(cfg)),
            Err(e) => {
                warn!(%remote, error = %e, "TLS configuration failed; connection refused");
                incoming.refuse();
                return;
            }
        };
        let handshake = match connecting {
            Ok(c) => tokio::time::timeout(self.cfg.connect_timeout, c).await,
            Err(e) => Ok(Err(e)),
        };
        let conn = match handshake {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                let refused = *slot.lock();
                match refused {
                    Some(peer) => self.log_refused_client(peer, remote),
                    None => debug!(%remote, error = %e, "incoming handshake failed"),
                }
                return;
            }
            Err(_) => {
                debug!(%remote, "incoming handshake timed out");
                return;
            }
        };
        let guard = self.track(&conn);
        let Some(peer) = tls::peer_device(&conn) else {
            conn.close(code::PROTOCOL.into(), b"certificate");
            return;
        };
        let alpn = conn
            .handshake_data()
            .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
            .and_then(|h| h.protocol);
        match alpn.as_deref() {
            Some(a) if a == ALPN_JOIN => crate::invite::serve_join(&self, conn, peer).await,
            Some(a) if a == ALPN && self.members.is_member(&peer) => {
                self.accept_session(conn, peer).await;
            }
            _ => {
                self.log_refused_client(peer, remote);
                conn.close(code::REVOKED.into(), b"not a member");
            }
        }
        drop(guard);
    }

    /// Logs a refused client (at most once a minute per device).
    fn log_refused_client(&self, peer: DeviceId, remote: SocketAddr) {
        if let Some(quiet) = self.refused_in.admit(peer, Instant::now()) {
            warn!(
                %peer, %remote, not_logged_since = quiet,
                "refused a device that is not a member of this volume (unknown or revoked)"
            );
        }
    }

    /// Takes the peer's control stream (its first stream) and negotiates, then runs.
    async fn accept_session(self: &Arc<Self>, conn: quinn::Connection, peer: DeviceId) {
        let control = tokio::time::timeout(self.cfg.connect_timeout, conn.accept_bi()).await;
        let (mut send, mut recv) = match control {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "no control stream");
                return;
            }
            Err(_) => {
                debug!(%peer, "no control stream in time");
                conn.close(code::PROTOCOL.into(), b"no control stream");
                return;
            }
        };
        if let Ok(neg) = self.negotiate(&conn, peer, &mut send, &mut recv).await {
            self.clone()
                .run_connection(conn, peer, peer, send, recv, neg)
                .await;
        }
    }

    /// Runs one negotiated member connection until it closes.
    async fn run_connection(
        self: Arc<Self>,
        conn: quinn::Connection,
        peer: DeviceId,
        opener: DeviceId,
        send: quinn::SendStream,
        recv: quinn::RecvStream,
        neg: Negotiated,
    ) {
        if !self.register(peer, &conn, opener) {
            conn.close(code::DONE.into(), b"duplicate");
            return;
        }
        self.members.set_addrs(&peer, vec![conn.remote_address()]);
        info!(%peer, addr = %conn.remote_address(), "session up");
        let serve = tokio::spawn(crate::transfer::serve(self.clone(), conn.clone(), peer));
        session::run(&self, &conn, peer, send, recv, neg).await;
        serve.abort();
        self.unregister(&peer, &conn);
        info!(%peer, reason = ?conn.close_reason(), "session down");
    }
}

/// True if `e` says the peer refused this device: a TLS alert about our certificate, or a
/// close with `REVOKED`.
fn refused_by_peer(e: &NetError) -> bool {
    let (NetError::Connection(c) | NetError::Stream(c)) = e else {
        return false;
    };
    match c {
        quinn::ConnectionError::ConnectionClosed(close) => {
            (0x100..0x200).contains(&u64::from(close.error_code))
        }
        quinn::ConnectionError::ApplicationClosed(a) => a.error_code == code::REVOKED.into(),
        _ => false,
    }
}

/// Closes `conn` for a protocol violation by `peer`.
pub(crate) fn protocol_violation(
    conn: &quinn::Connection,
    peer: &DeviceId,
    what: &dyn std::fmt::Display,
) {
    warn!(%peer, error = %what, "protocol violation; closing connection");
    conn.close(code::PROTOCOL.into(), b"protocol");
}

async fn accept_loop(endpoint: quinn::Endpoint, node: Weak<Node>) {
    while let Some(incoming) = endpoint.accept().await {
        let Some(node) = node.upgrade() else { break };
        if node.is_stopped() {
            incoming.refuse();
            continue;
        }
        tokio::spawn(node.handle_incoming(incoming));
    }
}
