//! Making and taking member connections: dial (pinned TLS, then the opening exchange) and
//! accept (TLS, then by ALPN a join or a member session), one session per member, and per
//! session the control stream (`session.rs`) plus the block streams the peer opens
//! (`GetBlocks` to [`Transfer`], keep requests to `keep::serve_request`).
use crate::backend::Local;
use crate::error::{LinkError, NetError, PeerError};
use crate::identity::DeviceId;
use crate::invite::{Inviter, serve_join};
use crate::keep;
use crate::limit::Rates;
use crate::links::{Links, protocol_violation};
use crate::members::Role;
use crate::proto::{FrameError, Message, code, read_msg};
use crate::refusals::RefusalLog;
use crate::session::{self, IndexSync, Negotiated};
use crate::tls;
use crate::transfer::Transfer;
use crate::{ALPN, ALPN_JOIN};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Instant;
use tracing::{debug, info, warn};

/// The parts a connection is handed to, and the logs of refused peers.
pub(crate) struct Connector {
    links: Arc<Links>,
    local: Arc<Local>,
    rates: Arc<Rates>,
    sync: Arc<IndexSync>,
    transfer: Arc<Transfer>,
    inviter: Arc<Inviter>,
    /// The TLS server side, for a configuration per incoming connection.
    server_tls: tls::ServerTls,
    /// Refused clients logged, per device.
    refused_in: RefusalLog<DeviceId>,
    /// Refusals met or made when dialling, logged per address.
    refused_out: RefusalLog<SocketAddr>,
}

/// What a [`Connector`] hands each connection to.
pub(crate) struct Parts {
    pub(crate) links: Arc<Links>,
    pub(crate) local: Arc<Local>,
    pub(crate) rates: Arc<Rates>,
    pub(crate) sync: Arc<IndexSync>,
    pub(crate) transfer: Arc<Transfer>,
    pub(crate) inviter: Arc<Inviter>,
}

impl Connector {
    pub(crate) fn new(p: Parts, server_tls: tls::ServerTls) -> Self {
        Connector {
            links: p.links,
            local: p.local,
            rates: p.rates,
            sync: p.sync,
            transfer: p.transfer,
            inviter: p.inviter,
            server_tls,
            refused_in: RefusalLog::default(),
            refused_out: RefusalLog::default(),
        }
    }

    /// The connection table and identity.
    pub(crate) fn links(&self) -> &Links {
        &self.links
    }

    /// This node's role.
    pub(crate) fn role(&self) -> Role {
        self.local.role
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
        let members = Some(self.links.members.clone());
        let cfg = tls::client_config_noting(&self.links.key, expected, members, ALPN, Some(slot))?;
        let connecting = self.links.endpoint().connect_with(cfg, addr, "fossa")?;
        let conn = tokio::time::timeout(self.links.cfg.connect_timeout, connecting)
            .await
            .map_err(|_| NetError::Link(LinkError::Timeout))??;
        let guard = self.links.track(&conn);
        let peer = tls::peer_device(&conn)
            .ok_or(NetError::Peer(PeerError::Violation("peer certificate")))?;
        if peer == self.links.key.id() {
            conn.close(code::DONE.into(), b"self");
            return Err(NetError::Peer(PeerError::Violation("connected to self")));
        }
        let (mut send, mut recv) = conn.open_bi().await?;
        let neg = self.negotiate(&conn, peer, &mut send, &mut recv).await?;
        let node = self.clone();
        let me = self.links.key.id();
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
            self.links.cfg.connect_timeout,
            session::negotiate(&self.sync, conn, peer, send, recv),
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
                Err(NetError::Link(LinkError::Timeout))
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
            Ok(c) => tokio::time::timeout(self.links.cfg.connect_timeout, c).await,
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
        let guard = self.links.track(&conn);
        let Some(peer) = tls::peer_device(&conn) else {
            conn.close(code::PROTOCOL.into(), b"certificate");
            return;
        };
        let alpn = conn
            .handshake_data()
            .and_then(|h| h.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
            .and_then(|h| h.protocol);
        match alpn.as_deref() {
            Some(a) if a == ALPN_JOIN => serve_join(&self.inviter, conn, peer).await,
            Some(a) if a == ALPN && self.links.members.is_member(&peer) => {
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
        let control = tokio::time::timeout(self.links.cfg.connect_timeout, conn.accept_bi()).await;
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
        if !self.links.register(peer, &conn, opener) {
            conn.close(code::DONE.into(), b"duplicate");
            return;
        }
        self.links
            .members
            .set_addrs(&peer, vec![conn.remote_address()]);
        info!(%peer, addr = %conn.remote_address(), "session up");
        let serve = tokio::spawn(self.clone().serve_streams(conn.clone(), peer));
        session::run(&self.sync, &conn, peer, send, recv, neg).await;
        serve.abort();
        self.links.unregister(&peer, &conn);
        info!(%peer, reason = ?conn.close_reason(), "session down");
    }

    /// Serves the block streams the peer opens on `conn` until it closes.
    async fn serve_streams(self: Arc<Self>, conn: quinn::Connection, peer: DeviceId) {
        while let Ok((send, recv)) = conn.accept_bi().await {
            tokio::spawn(self.clone().serve_stream(conn.clone(), peer, send, recv));
        }
    }

    async fn serve_stream(
        self: Arc<Self>,
        conn: quinn::Connection,
        peer: DeviceId,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
    ) {
        let result = async {
            // Only member devices ask anything of a node: a keeper never opens a stream.
            if self.links.members.role(&peer) != Some(Role::Device) {
                return Err(FrameError::Malformed);
            }
            match read_msg(&mut recv).await? {
                Message::GetBlocks(req) => self.transfer.serve_get(req, &mut send).await,
                other => {
                    keep::serve_request(&self.local, &self.rates.recv, peer, other, &mut send).await
                }
            }
        }
        .await;
        match result {
            Ok(()) => {}
            Err(e) if e.is_protocol() => protocol_violation(&conn, &peer, &e),
            Err(e) => debug!(%peer, error = %e, "block stream ended"),
        }
    }
}

/// True if `e` says the peer refused this device: a TLS alert about our certificate, or a
/// close with `REVOKED`.
fn refused_by_peer(e: &NetError) -> bool {
    let Some(c) = (match e {
        NetError::Link(l) => l.connection(),
        _ => None,
    }) else {
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

/// Accepts connections until the endpoint closes or the node is gone.
pub(crate) async fn accept_loop(endpoint: quinn::Endpoint, node: Weak<Connector>) {
    while let Some(incoming) = endpoint.accept().await {
        let Some(node) = node.upgrade() else { break };
        if node.links.is_stopped() {
            incoming.refuse();
            continue;
        }
        tokio::spawn(node.handle_incoming(incoming));
    }
}
