//! Who this node is and whom it is connected to: its config, key and member list, the QUIC
//! endpoint, the live session per member, the byte counters and the stop flag. Every part of
//! a node reaches peers through one shared `Arc<Links>`; nothing here speaks a protocol.
use crate::identity::{DeviceId, DeviceKey};
use crate::members::Members;
use crate::proto::code;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tracing::warn;

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

/// The live session with one peer.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) conn: quinn::Connection,
    /// Who opened the connection (dedupe: the greater opener wins).
    pub(crate) opener: DeviceId,
}

/// UDP payload bytes of every connection, closed ones included, and how many are open.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) connections: usize,
}

/// The connection table and identity of a node (see the module docs).
pub(crate) struct Links {
    pub(crate) cfg: NodeConfig,
    pub(crate) key: Arc<DeviceKey>,
    pub(crate) members: Arc<Members>,
    endpoint: quinn::Endpoint,
    /// At most one session per member (see [`Links::register`]).
    sessions: Mutex<HashMap<DeviceId, Session>>,
    /// Every open connection (sessions, joins, duplicates being closed), by stable id.
    conns: Mutex<HashMap<usize, quinn::Connection>>,
    closed_tx: AtomicU64,
    closed_rx: AtomicU64,
    stop: watch::Sender<bool>,
}

/// Removes a connection from the live set and adds its bytes to the totals when dropped.
pub(crate) struct ConnGuard {
    links: Arc<Links>,
    id: usize,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Some(c) = self.links.conns.lock().remove(&self.id) {
            let s = c.stats();
            let l = &self.links;
            l.closed_tx.fetch_add(s.udp_tx.bytes, Ordering::Relaxed);
            l.closed_rx.fetch_add(s.udp_rx.bytes, Ordering::Relaxed);
        }
    }
}

impl Links {
    pub(crate) fn new(
        cfg: NodeConfig,
        key: Arc<DeviceKey>,
        members: Arc<Members>,
        endpoint: quinn::Endpoint,
    ) -> Self {
        Links {
            cfg,
            key,
            members,
            endpoint,
            sessions: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            closed_tx: AtomicU64::new(0),
            closed_rx: AtomicU64::new(0),
            stop: watch::Sender::new(false),
        }
    }

    pub(crate) fn endpoint(&self) -> &quinn::Endpoint {
        &self.endpoint
    }

    /// The bound address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.endpoint
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// This node's device id.
    pub(crate) fn id(&self) -> DeviceId {
        self.key.id()
    }

    pub(crate) fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Closes every connection (code DONE) and the endpoint; the loops see the stop flag.
    pub(crate) async fn shutdown(&self) {
        self.stop.send_replace(true);
        let conns: Vec<quinn::Connection> = self.conns.lock().values().cloned().collect();
        for c in conns {
            c.close(code::DONE.into(), b"shutdown");
        }
        self.endpoint.close(code::DONE.into(), b"shutdown");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
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

    /// Devices with a live session.
    pub(crate) fn connected(&self) -> Vec<DeviceId> {
        self.sessions().into_iter().map(|(d, _)| d).collect()
    }

    /// The live session connection to `peer`.
    pub(crate) fn session_conn(&self, peer: &DeviceId) -> Option<quinn::Connection> {
        self.sessions()
            .into_iter()
            .find(|(d, _)| d == peer)
            .map(|(_, s)| s.conn)
    }

    /// Counts `conn` among the open connections until the guard drops.
    pub(crate) fn track(self: &Arc<Self>, conn: &quinn::Connection) -> ConnGuard {
        self.conns.lock().insert(conn.stable_id(), conn.clone());
        ConnGuard {
            links: self.clone(),
            id: conn.stable_id(),
        }
    }

    /// Bytes on the wire since start, and the connections open now.
    pub(crate) fn traffic(&self) -> Traffic {
        let conns = self.conns.lock();
        let mut t = Traffic {
            sent: self.closed_tx.load(Ordering::Relaxed),
            received: self.closed_rx.load(Ordering::Relaxed),
            connections: conns.len(),
        };
        for c in conns.values() {
            let s = c.stats();
            t.sent += s.udp_tx.bytes;
            t.received += s.udp_rx.bytes;
        }
        t
    }

    /// Makes `conn` the session with `peer` unless a better one exists (the connection opened
    /// by the greater DeviceId wins; between two opened by the same side, the newer).
    pub(crate) fn register(
        &self,
        peer: DeviceId,
        conn: &quinn::Connection,
        opener: DeviceId,
    ) -> bool {
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

    /// Forgets the session with `peer` if `conn` is still it.
    pub(crate) fn unregister(&self, peer: &DeviceId, conn: &quinn::Connection) {
        let mut sessions = self.sessions.lock();
        if sessions
            .get(peer)
            .is_some_and(|s| s.conn.stable_id() == conn.stable_id())
        {
            sessions.remove(peer);
        }
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
