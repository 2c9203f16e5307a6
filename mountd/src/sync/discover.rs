//! LAN discovery in the daemon (docs/protocol.md, "LAN discovery"): announce this device on
//! the segment's broadcast address and add where members were heard to their known addresses,
//! which the node's dial loop tries. Only with other members: a lone device has nobody to find.
use fossa_net::{DISCOVERY_PORT, Discovery, DiscoveryConfig, Members, Node, Role, Sighting};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Test knob: announcement interval in milliseconds (default 30 s).
const INTERVAL_ENV: &str = "FOSSA_DISCOVERY_INTERVAL_MS";

/// Starts announcing and listening (inside the runtime); None if off or failed (logged).
pub(super) fn start(
    broadcast: Ipv4Addr,
    node: &Arc<Node>,
    members: Arc<Members>,
) -> Option<Discovery> {
    if members.devices().len() < 2 {
        return None;
    }
    let mut cfg = DiscoveryConfig {
        port: DISCOVERY_PORT,
        broadcast,
        ..DiscoveryConfig::default()
    };
    if let Some(ms) = std::env::var(INTERVAL_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
    {
        cfg.interval = Duration::from_millis(ms);
    }
    let me = node.id();
    let (tx, rx) = mpsc::unbounded_channel();
    match Discovery::start(cfg, me, node.local_addr().port(), tx) {
        Ok(d) => {
            tokio::spawn(learn(rx, members, me));
            tracing::info!(%broadcast, "LAN discovery on");
            Some(d)
        }
        Err(e) => {
            tracing::warn!(error = %e, "LAN discovery off");
            None
        }
    }
}

/// Records where members were heard; everything else on the LAN is ignored.
async fn learn(
    mut rx: mpsc::UnboundedReceiver<Sighting>,
    members: Arc<Members>,
    me: fossa_net::DeviceId,
) {
    while let Some(s) = rx.recv().await {
        if s.device != me
            && members.role(&s.device) == Some(Role::Device)
            && members.is_member(&s.device)
        {
            let known = members
                .list()
                .iter()
                .any(|m| m.device == s.device && m.addrs.first() == Some(&s.addr));
            if !known {
                tracing::debug!(device = %s.device, addr = %s.addr, "heard a member on the LAN");
                members.add_addr(&s.device, s.addr);
            }
        }
    }
}
