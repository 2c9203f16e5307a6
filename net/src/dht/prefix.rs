//! Address groups for the routing table's prefix limits (docs/protocol.md, "Routing table").
use std::net::{IpAddr, SocketAddr};

/// Most contacts of one address group in one bucket.
pub(crate) const PER_BUCKET: u16 = 2;
/// Most contacts of one address group in the whole table.
pub(crate) const PER_TABLE: u16 = 10;

/// The group an address counts against (docs/swarm.md, "Address groups"): its IPv4 /24 or
/// IPv6 /48; a loopback, private, shared, link-local, unique-local or unspecified address is
/// its own group (a test bed on 127.0.0.x or a LAN is not limited).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum AddrGroup {
    /// An IPv4 /24.
    V4([u8; 3]),
    /// An IPv6 /48.
    V6([u8; 6]),
    /// A loopback or local-network address: the whole address.
    Host(IpAddr),
}

impl AddrGroup {
    /// The group of `addr` (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn of(addr: &SocketAddr) -> AddrGroup {
        let ip = addr.ip().to_canonical();
        if is_local(&ip) {
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

/// Loopback, private (10/8, 172.16/12, 192.168/16), shared (100.64/10), link-local
/// (169.254/16, fe80::/10), unique-local (fc00::/7) or unspecified.
fn is_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups() {
        let a: SocketAddr = "11.1.2.3:5".parse().unwrap();
        let b: SocketAddr = "11.1.2.200:6".parse().unwrap();
        let c: SocketAddr = "11.1.3.3:5".parse().unwrap();
        assert_eq!(AddrGroup::of(&a), AddrGroup::of(&b));
        assert_ne!(AddrGroup::of(&a), AddrGroup::of(&c));
        let l1: SocketAddr = "127.0.0.1:5".parse().unwrap();
        let l2: SocketAddr = "127.0.0.2:5".parse().unwrap();
        assert_ne!(AddrGroup::of(&l1), AddrGroup::of(&l2));
        let m: SocketAddr = "[::ffff:11.1.2.9]:1".parse().unwrap();
        assert_eq!(AddrGroup::of(&m), AddrGroup::of(&a));
        for local in [
            ["10.1.2.3:5", "10.1.2.4:5"],
            ["172.16.0.1:5", "172.16.0.2:5"],
            ["192.168.1.1:5", "192.168.1.2:5"],
            ["100.64.0.1:5", "100.64.0.2:5"],
            ["169.254.0.1:5", "169.254.0.2:5"],
            ["[fd00::1]:5", "[fd00::2]:5"],
            ["[fe80::1]:5", "[fe80::2]:5"],
        ] {
            let (x, y): (SocketAddr, SocketAddr) =
                (local[0].parse().unwrap(), local[1].parse().unwrap());
            assert_ne!(
                AddrGroup::of(&x),
                AddrGroup::of(&y),
                "{local:?} share a group"
            );
        }
        let g1: SocketAddr = "[2001:db8:1::1]:5".parse().unwrap();
        let g2: SocketAddr = "[2001:db8:1:ff::1]:5".parse().unwrap();
        assert_eq!(AddrGroup::of(&g1), AddrGroup::of(&g2), "one /48");
    }
}
