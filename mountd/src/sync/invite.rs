//! Making invitation codes (crypto.md, "Invitations"): the wrapped volume secret, the one-time
//! secret, and the addresses the joiner will call.
use anyhow::{Result, bail};
use fossa_fs::crypto::{VolumeSecret, random_array};
use fossa_fs::volkey;
use fossa_net::{DeviceId, InviteCode};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A new invitation: the printable code, and the `(s, K_wrap)` the inviter keeps.
pub(crate) struct NewInvite {
    /// The `FOSSA2-…` code.
    pub(crate) code: String,
    /// The one-time secret `s`.
    pub(crate) secret: [u8; 32],
    /// The key that unwraps the code's `W`.
    pub(crate) k_wrap: [u8; 32],
}

/// Makes an invitation to `volume` from `inviter` listening on `listen`, valid for `valid`.
/// `addrs` replaces the advertised addresses when not empty.
pub(crate) fn wrap_code(
    vs: &VolumeSecret,
    volume: [u8; 16],
    inviter: DeviceId,
    listen: SocketAddr,
    addrs: Vec<SocketAddr>,
    valid: Duration,
) -> Result<NewInvite> {
    let secret: [u8; 32] = random_array()?;
    let k_wrap: [u8; 32] = random_array()?;
    let wrapped = volkey::wrap_for_invite(vs, &k_wrap, &volume)?;
    let expiry = (SystemTime::now() + valid)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let addrs = if addrs.is_empty() {
        advertised(listen)
    } else {
        addrs
    };
    let code = InviteCode {
        volume,
        secret,
        wrapped,
        inviter,
        addrs,
        expiry,
        role: fossa_net::Role::Device,
    }
    .encode();
    Ok(NewInvite {
        code,
        secret,
        k_wrap,
    })
}

/// Where a joiner can reach a node listening on `listen`: the address itself if it names one
/// host; for a wildcard, this machine's outgoing address (found by routing, no packet sent)
/// and loopback, on the same port.
pub(crate) fn advertised(listen: SocketAddr) -> Vec<SocketAddr> {
    if !listen.ip().is_unspecified() {
        return vec![listen];
    }
    let mut out = Vec::new();
    if let Some(ip) = outgoing_ip() {
        out.push(SocketAddr::new(ip, listen.port()));
    }
    out.push(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        listen.port(),
    ));
    out
}

fn outgoing_ip() -> Option<IpAddr> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    // TEST-NET-1: connecting a UDP socket only picks a route; nothing is sent.
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Resolves `HOST:PORT` strings (the first address of each).
pub(crate) fn parse_addr_list(addrs: &[String]) -> Result<Vec<SocketAddr>> {
    addrs.iter().map(|a| resolve(a)).collect()
}

/// Resolves one `HOST:PORT`.
pub(crate) fn resolve(addr: &str) -> Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    let mut it = addr
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("{addr}: {e} (expected HOST:PORT)"))?;
    it.next()
        .ok_or_else(|| anyhow::anyhow!("{addr}: no address"))
}

/// Parses a rate in bytes per second: `0` (unlimited), `500K`, `10M`, `1G` (powers of 1024).
pub(crate) fn parse_rate(s: &str) -> Result<u64> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    match num.parse::<u64>() {
        Ok(n) => Ok(n.saturating_mul(mult)),
        Err(_) => bail!("bad rate {s:?} (bytes per second, e.g. 500K, 10M, 0 for unlimited)"),
    }
}

/// Parses `90s`, `30m`, `1h`, `7d` (a bare number is seconds).
pub(crate) fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = match num.parse() {
        Ok(n) if n > 0 => n,
        _ => bail!("bad duration {s:?} (e.g. 30m, 1h, 7d)"),
    };
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => bail!("bad duration {s:?} (e.g. 30m, 1h, 7d)"),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172800));
        for bad in ["", "h", "0s", "1y", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("0").unwrap(), 0);
        assert_eq!(parse_rate("1500").unwrap(), 1500);
        assert_eq!(parse_rate("500K").unwrap(), 500 << 10);
        assert_eq!(parse_rate("10M").unwrap(), 10 << 20);
        assert_eq!(parse_rate("1g").unwrap(), 1 << 30);
        for bad in ["", "M", "x", "-1"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn specific_listen_address_is_advertised_as_is() {
        let a: SocketAddr = "127.0.0.2:4000".parse().unwrap();
        assert_eq!(advertised(a), vec![a]);
        let any: SocketAddr = "0.0.0.0:4000".parse().unwrap();
        let adv = advertised(any);
        assert!(
            adv.iter()
                .all(|x| x.port() == 4000 && !x.ip().is_unspecified())
        );
        assert!(adv.contains(&"127.0.0.1:4000".parse().unwrap()));
    }
}
