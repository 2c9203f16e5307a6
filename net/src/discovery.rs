//! LAN discovery (docs/protocol.md, "LAN discovery"): every device announces its DeviceId and
//! sync port by UDP broadcast on the local segment; a device that hears a member learns where
//! to connect. The announcement carries nothing secret; the pinned TLS handshake is what
//! authenticates the device that answers on that address.
use crate::error::LocalError;
use crate::identity::DeviceId;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Magic of an announcement packet.
const MAGIC: &[u8; 4] = b"FSD1";
/// magic ‖ DeviceId ‖ sync port (u16 LE) ‖ instance (u64 LE).
const PACKET_LEN: usize = 4 + 32 + 2 + 8;
/// The default discovery port.
pub const DISCOVERY_PORT: u16 = 21027;

/// Where and how often to announce.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// Port every device listens on (shared: SO_REUSEADDR).
    pub port: u16,
    /// Broadcast address announcements go to (the LAN's, or 127.255.255.255 in tests).
    pub broadcast: Ipv4Addr,
    /// Time between announcements.
    pub interval: Duration,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            port: DISCOVERY_PORT,
            broadcast: Ipv4Addr::BROADCAST,
            interval: Duration::from_secs(30),
        }
    }
}

/// A device heard on the LAN: its id and the address of its sync endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// Who announced.
    pub device: DeviceId,
    /// Source IP of the announcement with the announced sync port.
    pub addr: SocketAddr,
}

/// Running announce and listen tasks; stopped on drop.
pub struct Discovery {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Discovery {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Discovery {
    /// Starts announcing `me` (sync endpoint on `sync_port`) and reports other devices'
    /// announcements on `found`. Must run inside a tokio runtime.
    pub fn start(
        cfg: DiscoveryConfig,
        me: DeviceId,
        sync_port: u16,
        found: mpsc::UnboundedSender<Sighting>,
    ) -> Result<Self, LocalError> {
        let instance = u64::from_le_bytes(rand_bytes()?);
        let sock = std::sync::Arc::new(bind(cfg.port)?);
        let packet = encode(&me, sync_port, instance);
        let to = SocketAddr::V4(SocketAddrV4::new(cfg.broadcast, cfg.port));
        let tx = sock.clone();
        let announce = tokio::spawn(async move {
            let mut tick = tokio::time::interval(cfg.interval);
            loop {
                tick.tick().await;
                if let Err(e) = tx.send_to(&packet, to).await {
                    tracing::debug!("discovery announce to {to}: {e}");
                }
            }
        });
        let listen = tokio::spawn(listen(sock, instance, found));
        Ok(Discovery {
            tasks: vec![announce, listen],
        })
    }
}

async fn listen(sock: std::sync::Arc<UdpSocket>, me: u64, found: mpsc::UnboundedSender<Sighting>) {
    let mut buf = [0u8; 64];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("discovery: {e}");
                return;
            }
        };
        let Some((device, port, instance)) = decode(&buf[..n]) else {
            continue; // Not ours, or garbage: a LAN carries all sorts.
        };
        if instance == me {
            continue;
        }
        let addr = SocketAddr::new(from.ip(), port);
        if found.send(Sighting { device, addr }).is_err() {
            return; // Nobody listens any more.
        }
    }
}

/// A UDP socket on 0.0.0.0:`port` that several processes can share and that may broadcast.
fn bind(port: u16) -> Result<UdpSocket, LocalError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let io = LocalError::Discovery;
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(io)?;
    s.set_reuse_address(true).map_err(io)?;
    s.set_broadcast(true).map_err(io)?;
    s.set_nonblocking(true).map_err(io)?;
    let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
    s.bind(&addr.into()).map_err(io)?;
    UdpSocket::from_std(s.into()).map_err(io)
}

fn encode(me: &DeviceId, port: u16, instance: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(PACKET_LEN);
    p.extend_from_slice(MAGIC);
    p.extend_from_slice(&me.0);
    p.extend_from_slice(&port.to_le_bytes());
    p.extend_from_slice(&instance.to_le_bytes());
    p
}

fn decode(p: &[u8]) -> Option<(DeviceId, u16, u64)> {
    if p.len() != PACKET_LEN || &p[..4] != MAGIC {
        return None;
    }
    let device = DeviceId(p[4..36].try_into().ok()?);
    let port = u16::from_le_bytes(p[36..38].try_into().ok()?);
    let instance = u64::from_le_bytes(p[38..46].try_into().ok()?);
    (port != 0).then_some((device, port, instance))
}

fn rand_bytes() -> Result<[u8; 8], LocalError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|_| LocalError::NoRandomness)?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_and_garbage_is_ignored() {
        let d = DeviceId([7; 32]);
        let p = encode(&d, 22000, 99);
        assert_eq!(decode(&p), Some((d, 22000, 99)));
        assert_eq!(decode(&p[..45]), None);
        let mut bad = p.clone();
        bad[0] = b'X';
        assert_eq!(decode(&bad), None);
        let mut zero_port = p;
        zero_port[36] = 0;
        zero_port[37] = 0;
        assert_eq!(decode(&zero_port), None);
    }

    /// Two "devices" in one process, on a loopback broadcast: each hears the other, not itself.
    #[tokio::test]
    async fn devices_on_one_segment_find_each_other() {
        let cfg = DiscoveryConfig {
            port: 21900 + (std::process::id() % 90) as u16,
            broadcast: Ipv4Addr::new(127, 255, 255, 255),
            interval: Duration::from_millis(50),
        };
        let (a, b) = (DeviceId([1; 32]), DeviceId([2; 32]));
        let (ta, mut ra) = mpsc::unbounded_channel();
        let (tb, mut rb) = mpsc::unbounded_channel();
        let _da = Discovery::start(cfg.clone(), a, 4001, ta).unwrap();
        let _db = Discovery::start(cfg, b, 4002, tb).unwrap();
        let wait = Duration::from_secs(5);
        let sa = tokio::time::timeout(wait, ra.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sa.device, b);
        assert_eq!(sa.addr.port(), 4002);
        assert!(sa.addr.ip().is_loopback());
        let sb = tokio::time::timeout(wait, rb.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sb.device, a);
        assert_eq!(sb.addr.port(), 4001);
    }
}
