//! Version vectors, short device ids and the DeviceId display form.
use std::cmp::Ordering;

pub use crate::format::sync::Version;

/// How two version vectors relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// Same counters.
    Equal,
    /// The first is dominated by the second.
    Less,
    /// The first dominates the second.
    Greater,
    /// Neither dominates.
    Concurrent,
}

fn counter(v: &Version, dev: u64) -> u64 {
    v.binary_search_by_key(&dev, |(d, _)| *d)
        .map_or(0, |k| v[k].1)
}

/// Compares `a` with `b`.
pub(crate) fn compare(a: &Version, b: &Version) -> Order {
    let (mut less, mut greater) = (false, false);
    for (d, _) in a.iter().chain(b.iter()) {
        match counter(a, *d).cmp(&counter(b, *d)) {
            Ordering::Less => less = true,
            Ordering::Greater => greater = true,
            Ordering::Equal => {}
        }
    }
    match (less, greater) {
        (false, false) => Order::Equal,
        (true, false) => Order::Less,
        (false, true) => Order::Greater,
        (true, true) => Order::Concurrent,
    }
}

/// The per-device maximum of `a` and `b`.
pub(crate) fn merge(a: &Version, b: &Version) -> Version {
    let mut out: Version = a.clone();
    for (d, c) in b {
        match out.binary_search_by_key(d, |(x, _)| *x) {
            Ok(k) => out[k].1 = out[k].1.max(*c),
            Err(k) => out.insert(k, (*d, *c)),
        }
    }
    out
}

/// `v` with device `dev`'s counter set to `c`.
pub(crate) fn bump(v: &Version, dev: u64, c: u64) -> Version {
    merge(v, &vec![(dev, c)])
}

/// The short device id: the first 8 bytes of the DeviceId as u64 LE.
pub fn short_id(dev: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&dev[..8]);
    u64::from_le_bytes(b)
}

/// A DeviceId's display form: base32 (RFC 4648 alphabet, upper case, no padding).
pub fn device_display(dev: &[u8; 32]) -> String {
    const ALPHA: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(52);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in dev {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHA[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHA[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_and_merge() {
        let a = vec![(1, 2), (3, 1)];
        let b = vec![(1, 2)];
        assert_eq!(compare(&a, &b), Order::Greater);
        assert_eq!(compare(&b, &a), Order::Less);
        assert_eq!(compare(&a, &a), Order::Equal);
        let c = vec![(1, 3)];
        assert_eq!(compare(&a, &c), Order::Concurrent);
        assert_eq!(merge(&a, &c), vec![(1, 3), (3, 1)]);
        assert_eq!(bump(&b, 2, 9), vec![(1, 2), (2, 9)]);
    }

    #[test]
    fn base32_display_matches_rfc4648() {
        // RFC 4648 test vector "foobar" → "MZXW6YTBOI" (unpadded), checked on a prefix.
        let mut d = [0u8; 32];
        d[..6].copy_from_slice(b"foobar");
        let s = device_display(&d);
        assert!(s.starts_with("MZXW6YTBOI"));
        assert_eq!(s.len(), 52);
        assert_eq!(short_id(&d), u64::from_le_bytes(*b"foobar\0\0"));
    }
}
