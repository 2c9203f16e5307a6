//! Reconnecting: calls `cfg.peers` and members' last known addresses while not connected to
//! them, each address with its own bounded exponential backoff (docs/protocol.md,
//! "Connections").
use crate::connect::Connector;
use crate::identity::DeviceId;
use crate::members::Role;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tracing::debug;

/// First reconnect delay; doubled after each failure up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often the dial loop looks for members to call.
const DIAL_TICK: Duration = Duration::from_millis(250);

struct DialState {
    next: Instant,
    backoff: Duration,
    device: Option<DeviceId>,
    busy: bool,
}

/// Keeps calling `cfg.peers` and members' last known addresses while not connected to them.
pub(crate) async fn dial_loop(node: Weak<Connector>) {
    let state: Arc<Mutex<HashMap<SocketAddr, DialState>>> = Arc::new(Mutex::new(HashMap::new()));
    loop {
        let Some(n) = node.upgrade() else { return };
        let links = n.links();
        if links.is_stopped() {
            return;
        }
        let connected = links.connected();
        let me = links.id();
        let mut targets: Vec<(SocketAddr, Option<DeviceId>)> =
            links.cfg.peers.iter().map(|a| (*a, None)).collect();
        for m in links.members.list() {
            // Keepers talk only to devices.
            let useless = n.role() == Role::Keeper && m.role == Role::Keeper;
            if m.revoked || m.device == me || connected.contains(&m.device) || useless {
                continue;
            }
            targets.extend(m.addrs.iter().map(|a| (*a, Some(m.device))));
        }
        let local = links.local_addr();
        let now = Instant::now();
        for (addr, device) in targets {
            if addr == local {
                continue;
            }
            {
                let mut st = state.lock();
                let s = st.entry(addr).or_insert(DialState {
                    next: now,
                    backoff: BACKOFF_MIN,
                    device,
                    busy: false,
                });
                if device.is_some() {
                    s.device = device;
                }
                if s.busy || now < s.next || s.device.is_some_and(|d| connected.contains(&d)) {
                    continue;
                }
                s.busy = true;
            }
            let expected = state.lock().get(&addr).and_then(|s| s.device);
            tokio::spawn(dial_once(n.clone(), state.clone(), addr, expected));
        }
        drop(n);
        tokio::time::sleep(DIAL_TICK).await;
    }
}

async fn dial_once(
    node: Arc<Connector>,
    state: Arc<Mutex<HashMap<SocketAddr, DialState>>>,
    addr: SocketAddr,
    expected: Option<DeviceId>,
) {
    let result = node.dial(addr, expected).await;
    drop(node);
    let ok = match result {
        Ok((peer, task)) => {
            if let Some(s) = state.lock().get_mut(&addr) {
                s.device = Some(peer);
            }
            let _ = task.await;
            true
        }
        Err(e) => {
            debug!(%addr, error = %e, "dial failed");
            false
        }
    };
    if let Some(s) = state.lock().get_mut(&addr) {
        s.busy = false;
        if ok {
            s.backoff = BACKOFF_MIN;
            s.next = Instant::now() + BACKOFF_MIN;
        } else {
            s.next = Instant::now() + s.backoff;
            s.backoff = (s.backoff * 2).min(BACKOFF_MAX);
        }
    }
}
