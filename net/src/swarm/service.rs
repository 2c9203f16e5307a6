//! A swarm node on the network: the sans-IO DHT core ([`crate::dht::Dht`]) driven over QUIC,
//! ALPN `fossa/dht/1` (docs/protocol.md, "The swarm DHT, version 1").
//!
//! One actor task owns the core and is the only code that touches it. Around it:
//! - the accept loop admits connections (`SwarmHello`, docs/swarm.md) and serves each one's
//!   request streams by asking the actor for the answer;
//! - a request task per outgoing request finds or dials the connection, opens a stream,
//!   writes the request and reads the answer within the request deadline, and reports the
//!   answer or the failure to the actor;
//! - [`SwarmNode`]'s methods send commands (lookups, announcements, status) to the actor.
//!
//! A peer that breaks the protocol (bytes that do not decode, a body over the bound, an answer
//! of the wrong kind, an answer where a request belongs) has its connection closed with
//! `PROTOCOL` and is banned by the core; other peers are not affected.
use super::admit::{self, Gate, HelloError};
use super::conns::Conns;
use super::frames::{DhtFrameError, read_dht, write_dht};
use crate::dht::{
    self, Contact, Dht, DhtStats, Event, Key, LookupId, LookupResult, Millis, Outgoing, Peer,
    Request, Response,
};
use crate::error::LocalError;
use crate::identity::DeviceKey;
use crate::proto::code;
use crate::proto::dht::{DhtIncoming, DhtMessage};
use crate::tls;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tracing::{debug, warn};

/// How a swarm node listens, whom it calls first and how it is admitted.
#[derive(Clone, Debug)]
pub struct SwarmConfig {
    /// The swarm, and this node's proof of admission.
    pub gate: Gate,
    /// UDP address to listen and dial on.
    pub listen: SocketAddr,
    /// Addresses to bootstrap from (ids learnt from their certificates).
    pub bootstrap: Vec<SocketAddr>,
    /// The core's parameters.
    pub dht: dht::Config,
    /// Most open connections (docs/protocol.md: 256).
    pub max_connections: usize,
    /// A connection unused this long is closed (30 s).
    pub idle_close: Duration,
    /// Deadline of a connect and its `SwarmHello` exchange.
    pub connect_timeout: Duration,
    /// Seed of the core's randomness (the daemon takes it from the OS).
    pub seed: u64,
}

/// What `fossa status` shows of a swarm node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmStatus {
    /// This node's id.
    pub node: Key,
    /// Where it listens.
    pub listen: SocketAddr,
    /// The core's counters (routing-table size, provider records, lookups, ...).
    pub dht: DhtStats,
    /// Open connections.
    pub connections: usize,
    /// Connections refused at admission since start.
    pub refused: u64,
    /// Peers cut off for breaking the protocol since start.
    pub protocol_errors: u64,
}

/// Why a swarm node could not start or answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SwarmError {
    /// Binding the socket or building the TLS configuration failed.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// The node stopped.
    #[error("the swarm node stopped")]
    Stopped,
}

enum Cmd {
    FindNode(Key, oneshot::Sender<LookupResult>),
    GetProviders(Key, usize, oneshot::Sender<LookupResult>),
    Provide(Key),
    Unprovide(Key),
    Status(oneshot::Sender<SwarmStatus>),
    /// A request a peer sent us; the answer goes back on `reply`.
    Incoming {
        from: Contact,
        req: Request,
        reply: oneshot::Sender<Response>,
    },
    /// A peer sent a bad request: ban it.
    Ban(Key),
    /// Whether the core refuses this id (banned).
    IsBanned(Key, oneshot::Sender<bool>),
    /// The outcome of one of our requests.
    Outcome {
        id: dht::RequestId,
        result: Result<(Contact, Response), Failure>,
    },
}

/// Why one of our requests has no answer.
#[derive(Debug)]
enum Failure {
    /// Unreachable, refused, timed out, stream reset: nobody to blame.
    Unreachable,
    /// The peer broke the protocol: ban it.
    Protocol(Key),
}

/// State the tasks share (the core itself belongs to the actor alone).
struct Shared {
    key: Arc<DeviceKey>,
    me: Key,
    /// The address this node listens on (sent in `SwarmHello`).
    listen: SocketAddr,
    cfg: SwarmConfig,
    endpoint: quinn::Endpoint,
    conns: Conns,
    cmds: mpsc::Sender<Cmd>,
    refused: std::sync::atomic::AtomicU64,
    protocol_errors: std::sync::atomic::AtomicU64,
}

/// A running swarm node (see the module docs). Dropping it does not stop it: call
/// [`SwarmNode::shutdown`].
pub struct SwarmNode {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

/// Commands queued to the actor before senders wait.
const CMD_QUEUE: usize = 1024;

impl SwarmNode {
    /// Binds `cfg.listen`, starts the actor and the accept loop and bootstraps. Must run
    /// inside a tokio runtime.
    pub fn start(key: Arc<DeviceKey>, cfg: SwarmConfig) -> Result<SwarmNode, SwarmError> {
        let endpoint = tls::quic_endpoint(cfg.listen, Some(tls::swarm_server_config(&key)?))?;
        let listen = endpoint.local_addr().map_err(LocalError::from)?;
        let me = Key(key.id().0);
        let (tx, rx) = mpsc::channel(CMD_QUEUE);
        let shared = Arc::new(Shared {
            key,
            me,
            listen,
            conns: Conns::new(cfg.max_connections, cfg.idle_close),
            cfg,
            endpoint,
            cmds: tx,
            refused: Default::default(),
            protocol_errors: Default::default(),
        });
        let contact = Contact {
            id: me,
            addrs: vec![listen],
        };
        let start = Instant::now();
        let mut core = Dht::new(contact, shared.cfg.dht.clone(), shared.cfg.seed, Millis(0));
        let boot = shared
            .cfg
            .bootstrap
            .iter()
            .map(|a| Peer::Address(*a))
            .collect();
        core.bootstrap(Millis(0), boot);
        let actor = Actor {
            shared: shared.clone(),
            core,
            start,
            listen,
            waiting: HashMap::new(),
        };
        let tasks = vec![
            tokio::spawn(actor.run(rx)),
            tokio::spawn(accept_loop(shared.clone())),
            tokio::spawn(idle_loop(shared.clone())),
        ];
        Ok(SwarmNode { shared, tasks })
    }

    /// This node's id.
    pub fn id(&self) -> Key {
        self.shared.me
    }

    /// The address the node listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, SwarmError> {
        Ok(self
            .shared
            .endpoint
            .local_addr()
            .map_err(LocalError::from)?)
    }

    async fn ask<T>(&self, f: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T, SwarmError> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .cmds
            .send(f(tx))
            .await
            .map_err(|_| SwarmError::Stopped)?;
        rx.await.map_err(|_| SwarmError::Stopped)
    }

    /// Looks up the `K` nodes closest to `target`.
    pub async fn find_node(&self, target: Key) -> Result<LookupResult, SwarmError> {
        self.ask(|tx| Cmd::FindNode(target, tx)).await
    }

    /// Looks up providers of `key` (ends once `want` are known).
    pub async fn get_providers(&self, key: Key, want: usize) -> Result<LookupResult, SwarmError> {
        self.ask(|tx| Cmd::GetProviders(key, want, tx)).await
    }

    /// Announces that this node holds `key`, and keeps announcing it (republish).
    pub async fn provide(&self, key: Key) -> Result<(), SwarmError> {
        self.shared
            .cmds
            .send(Cmd::Provide(key))
            .await
            .map_err(|_| SwarmError::Stopped)
    }

    /// Stops announcing `key`.
    pub async fn unprovide(&self, key: Key) -> Result<(), SwarmError> {
        self.shared
            .cmds
            .send(Cmd::Unprovide(key))
            .await
            .map_err(|_| SwarmError::Stopped)
    }

    /// The node's counters.
    pub async fn status(&self) -> Result<SwarmStatus, SwarmError> {
        self.ask(Cmd::Status).await
    }

    /// Closes every connection and stops every task.
    pub async fn shutdown(self) {
        self.shared.conns.close_all();
        self.shared.endpoint.close(code::DONE.into(), b"shutdown");
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        self.shared.endpoint.wait_idle().await;
    }
}

/// The task that owns the core.
struct Actor {
    shared: Arc<Shared>,
    core: Dht,
    start: Instant,
    listen: SocketAddr,
    waiting: HashMap<LookupId, oneshot::Sender<LookupResult>>,
}

impl Actor {
    fn now(&self) -> Millis {
        Millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        loop {
            self.flush();
            let wake = self
                .core
                .poll_timeout()
                .map(|m| self.start + Duration::from_millis(m.0));
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(c) => self.command(c),
                    None => return,
                },
                () = sleep_until(wake) => {
                    let now = self.now();
                    self.core.handle_timeout(now);
                }
            }
        }
    }

    fn command(&mut self, cmd: Cmd) {
        let now = self.now();
        match cmd {
            Cmd::FindNode(target, tx) => {
                let id = self.core.find_node(now, target);
                self.waiting.insert(id, tx);
            }
            Cmd::GetProviders(key, want, tx) => {
                let id = self.core.get_providers(now, key, want);
                self.waiting.insert(id, tx);
            }
            Cmd::Provide(key) => self.core.provide(now, key),
            Cmd::Unprovide(key) => self.core.unprovide(&key),
            Cmd::Status(tx) => {
                let _ = tx.send(self.status());
            }
            Cmd::Incoming { from, req, reply } => {
                let resp = self.core.handle_request(now, &from, req);
                let _ = reply.send(resp);
            }
            Cmd::Ban(peer) => self.core.ban(now, peer),
            Cmd::IsBanned(peer, tx) => {
                let _ = tx.send(self.core.is_banned(now, &peer));
            }
            Cmd::Outcome { id, result } => match result {
                Ok((from, resp)) => self.core.handle_response(now, id, &from, resp),
                Err(Failure::Unreachable) => self.core.handle_failure(now, id),
                Err(Failure::Protocol(peer)) => {
                    self.core.handle_failure(now, id);
                    self.core.ban(now, peer);
                }
            },
        }
    }

    fn status(&self) -> SwarmStatus {
        use std::sync::atomic::Ordering::Relaxed;
        SwarmStatus {
            node: self.shared.me,
            listen: self.listen,
            dht: self.core.stats(),
            connections: self.shared.conns.len(),
            refused: self.shared.refused.load(Relaxed),
            protocol_errors: self.shared.protocol_errors.load(Relaxed),
        }
    }

    /// Sends what the core wants sent and delivers what it finished.
    fn flush(&mut self) {
        while let Some(out) = self.core.poll_transmit() {
            tokio::spawn(request(self.shared.clone(), out));
        }
        while let Some(ev) = self.core.poll_event() {
            match ev {
                Event::LookupDone(r) => {
                    if let Some(tx) = self.waiting.remove(&r.id) {
                        let _ = tx.send(r);
                    }
                }
                Event::Bootstrapped { contacts } => {
                    tracing::info!(contacts, "swarm bootstrap done");
                }
                Event::Banned { id } => {
                    let n = self.shared.conns.close_peer(&id, code::PROTOCOL, b"banned");
                    warn!(peer = %hex(&id), connections = n, "swarm peer broke the protocol in an answer: banned");
                }
                Event::Provided { key, asked, stored } => {
                    debug!(key = %hex(&key), asked, stored, "announced");
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Carries one outgoing request and reports its outcome to the actor.
async fn request(shared: Arc<Shared>, out: Outgoing) {
    let deadline = Duration::from_millis(shared.cfg.dht.request_timeout.0);
    let result = match tokio::time::timeout(deadline, exchange(&shared, &out)).await {
        Ok(r) => r,
        Err(_) => Err(Failure::Unreachable),
    };
    if let Err(e) = &result {
        debug!(to = ?out.to, error = ?e, "swarm request failed");
    }
    let _ = shared.cmds.send(Cmd::Outcome { id: out.id, result }).await;
}

async fn exchange(shared: &Arc<Shared>, out: &Outgoing) -> Result<(Contact, Response), Failure> {
    let (conn, peer) = connection(shared, &out.to).await?;
    let protocol = |conn: &quinn::Connection, why: &'static [u8]| {
        cut_off(shared, conn, peer.id, why);
        Failure::Protocol(peer.id)
    };
    let (mut send, mut recv) = conn.open_bi().await.map_err(|_| Failure::Unreachable)?;
    write_dht(&mut send, &DhtMessage::from(&out.req))
        .await
        .map_err(|_| Failure::Unreachable)?;
    let _ = send.finish();
    let msg = match read_dht(&mut recv).await {
        Ok(m) => m,
        Err(e) if e.is_protocol() => return Err(protocol(&conn, b"malformed answer")),
        Err(_) => return Err(Failure::Unreachable),
    };
    match DhtIncoming::try_from(msg) {
        Ok(DhtIncoming::Response(resp)) if resp.answers(&out.req) => Ok((peer, resp)),
        _ => Err(protocol(&conn, b"wrong answer")),
    }
}

/// Closes `conn` with `PROTOCOL` and logs it; the caller has the core ban `id`.
fn cut_off(shared: &Shared, conn: &quinn::Connection, id: Key, why: &'static [u8]) {
    shared
        .protocol_errors
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    warn!(peer = %hex(&id), addr = %conn.remote_address(), why = %String::from_utf8_lossy(why),
        "swarm peer broke the protocol: cut off");
    shared.conns.remove(conn);
    conn.close(code::PROTOCOL.into(), why);
}

fn hex(id: &Key) -> String {
    id.0.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The connection to `peer` (reused, or dialled and admitted), with the peer as a contact.
async fn connection(
    shared: &Arc<Shared>,
    peer: &Peer,
) -> Result<(quinn::Connection, Contact), Failure> {
    if let Peer::Contact(c) = peer
        && let Some(conn) = shared.conns.get(&c.id)
    {
        return Ok((conn, c.clone()));
    }
    let (expected, addrs) = match peer {
        Peer::Contact(c) => (Some(c.id), c.addrs.clone()),
        Peer::Address(a) => (None, vec![*a]),
    };
    for addr in addrs {
        match dial(shared, expected, addr).await {
            Ok(found) => return Ok(found),
            Err(e) => debug!(%addr, error = %e, "swarm dial failed"),
        }
    }
    Err(Failure::Unreachable)
}

async fn dial(
    shared: &Arc<Shared>,
    expected: Option<Key>,
    addr: SocketAddr,
) -> Result<(quinn::Connection, Contact), HelloError> {
    let pin = expected.map(|k| crate::identity::DeviceId(k.0));
    let cfg = tls::client_config(&shared.key, pin, None, crate::ALPN_DHT)?;
    let connecting = shared.endpoint.connect_with(cfg, addr, "fossa")?;
    let conn = tokio::time::timeout(shared.cfg.connect_timeout, connecting)
        .await
        .map_err(|_| HelloError::Timeout)??;
    let peer = tokio::time::timeout(
        shared.cfg.connect_timeout,
        admit::open(&conn, &shared.cfg.gate, shared.me, shared.listen),
    )
    .await
    .map_err(|_| HelloError::Timeout)?;
    let peer = match peer {
        Ok(p) => p,
        Err(e) => {
            conn.close(e.close_code().into(), b"hello");
            return Err(e);
        }
    };
    shared.conns.insert(peer.id, conn.clone());
    tokio::spawn(serve(shared.clone(), conn.clone(), peer.clone()));
    Ok((conn, peer))
}

/// Accepts connections until the endpoint closes.
async fn accept_loop(shared: Arc<Shared>) {
    while let Some(incoming) = shared.endpoint.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let addr = incoming.remote_address();
            if let Err(e) = admit(&shared, incoming).await {
                debug!(%addr, error = %e, "swarm connection not admitted");
            }
        });
    }
}

async fn admit(shared: &Arc<Shared>, incoming: quinn::Incoming) -> Result<(), HelloError> {
    let conn = tokio::time::timeout(shared.cfg.connect_timeout, incoming)
        .await
        .map_err(|_| HelloError::Timeout)??;
    let addr = conn.remote_address();
    let gate = &shared.cfg.gate;
    let hello = async {
        let (send, peer) = admit::accept(&conn, gate).await?;
        if banned(shared, peer.id).await {
            return Ok(None);
        }
        admit::answer(send, gate, shared.me, shared.listen).await?;
        Ok(Some(peer))
    };
    let accepted = tokio::time::timeout(shared.cfg.connect_timeout, hello)
        .await
        .map_err(|_| HelloError::Timeout)
        .and_then(|r| r);
    let peer = match accepted {
        Ok(Some(p)) => p,
        Ok(None) => {
            shared
                .refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            debug!(%addr, "banned swarm peer refused");
            conn.close(code::NOT_ADMITTED.into(), b"banned");
            return Ok(());
        }
        Err(e) => {
            if e.is_refusal() {
                shared
                    .refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                warn!(%addr, error = %e, "swarm connection refused");
            }
            conn.close(e.close_code().into(), b"hello");
            return Err(e);
        }
    };
    shared.conns.insert(peer.id, conn.clone());
    serve(shared.clone(), conn, peer).await;
    Ok(())
}

/// Whether the core refuses `id` for now (a protocol violation, docs/protocol.md).
async fn banned(shared: &Shared, id: Key) -> bool {
    let (tx, rx) = oneshot::channel();
    if shared.cmds.send(Cmd::IsBanned(id, tx)).await.is_err() {
        return true;
    }
    rx.await.unwrap_or(true)
}

/// Answers the requests a peer opens on `conn` until it closes.
async fn serve(shared: Arc<Shared>, conn: quinn::Connection, peer: Contact) {
    while let Ok((send, recv)) = conn.accept_bi().await {
        shared.conns.touch(&conn);
        let (shared, conn, peer) = (shared.clone(), conn.clone(), peer.clone());
        tokio::spawn(async move {
            if let Err(e) = answer(&shared, send, recv, &peer).await
                && e.is_protocol()
            {
                cut_off(&shared, &conn, peer.id, b"bad request");
                let _ = shared.cmds.send(Cmd::Ban(peer.id)).await;
            }
        });
    }
    shared.conns.remove(&conn);
}

async fn answer(
    shared: &Shared,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    peer: &Contact,
) -> Result<(), DhtFrameError> {
    let msg = read_dht(&mut recv).await?;
    let req = match DhtIncoming::try_from(msg)? {
        DhtIncoming::Request(r) => r,
        _ => return Err(DhtFrameError::Unexpected),
    };
    let (tx, rx) = oneshot::channel();
    let cmd = Cmd::Incoming {
        from: peer.clone(),
        req,
        reply: tx,
    };
    if shared.cmds.send(cmd).await.is_err() {
        return Ok(());
    }
    let Ok(resp) = rx.await else { return Ok(()) };
    write_dht(&mut send, &DhtMessage::from(&resp)).await?;
    let _ = send.finish();
    Ok(())
}

/// Closes idle connections every few seconds.
async fn idle_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let n = shared.conns.close_idle();
        if n > 0 {
            debug!(closed = n, "closed idle swarm connections");
        }
    }
}
