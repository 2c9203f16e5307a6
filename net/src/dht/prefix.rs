//! Address groups for the routing table's prefix limits (docs/protocol.md, "Routing table").
use std::net::{IpAddr, SocketAddr};

/// Most contacts of one address group in one bucket.
pub(crate) const PER_BUCKET: u16 = 2;
/// Most contacts of one address group in the whole table.
pub(crate) const PER_TABLE: u16 = 10;

/// The group an address counts against: its IPv4 /24 or IPv6 /48; a loopback address is its
/// own group (every node of a local test swarm shares 127.0.0.0/24).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum AddrGroup {
    /// An IPv4 /24.
    V4([u8; 3]),
    /// An IPv6 /48.
    V6([u8; 6]),
    /// A loopback address.
    Host(IpAddr),
}

impl AddrGroup {
    /// The group of `addr` (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn of(addr: &SocketAddr) -> AddrGroup {
        let ip = addr.ip().to_canonical();
        if ip.is_loopback() {
            return AddrGroup::Host(ip);
        }
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                AddrGroup::V4([o[0], o[1], o[2]])
            }
            IpAddr::V6(v6) => {
                let o = v6.octets();
                AddrGroup::V6([o[0], o[1], o[2], o[3], o[4], o[5]])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups() {
        let a: SocketAddr = "10.1.2.3:5".parse().unwrap();
        let b: SocketAddr = "10.1.2.200:6".parse().unwrap();
        let c: SocketAddr = "10.1.3.3:5".parse().unwrap();
        assert_eq!(AddrGroup::of(&a), AddrGroup::of(&b));
        assert_ne!(AddrGroup::of(&a), AddrGroup::of(&c));
        let l1: SocketAddr = "127.0.0.1:5".parse().unwrap();
        let l2: SocketAddr = "127.0.0.2:5".parse().unwrap();
        assert_ne!(AddrGroup::of(&l1), AddrGroup::of(&l2));
        let m: SocketAddr = "[::ffff:10.1.2.9]:1".parse().unwrap();
        assert_eq!(AddrGroup::of(&m), AddrGroup::of(&a));
    }
}
