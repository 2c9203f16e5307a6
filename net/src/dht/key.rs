//! Ids and the XOR metric (docs/protocol.md, "Ids and distance").

/// A 256-bit DHT id: a node id (DeviceId bytes) or a key (BlockId bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Key(pub [u8; 32]);

/// XOR distance, ordered as a 256-bit big-endian integer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Distance(pub [u8; 32]);

impl Key {
    /// The XOR of the two ids.
    pub fn distance(&self, other: &Key) -> Distance {
        let mut d = [0u8; 32];
        for (i, b) in d.iter_mut().enumerate() {
            *b = self.0[i] ^ other.0[i];
        }
        Distance(d)
    }

    /// Bucket index (0..=255) of `other` in `self`'s table; None when equal.
    pub fn bucket_of(&self, other: &Key) -> Option<u8> {
        self.distance(other).bucket()
    }
}

impl Distance {
    /// Position of the highest set bit (`255 - leading zeros`); None for zero.
    pub fn bucket(&self) -> Option<u8> {
        let lz = self.leading_zeros();
        (lz < 256).then(|| (255 - lz) as u8)
    }

    /// Bit `i` (0 = least significant, 255 = most).
    pub fn bit(&self, i: u8) -> bool {
        self.0[31 - usize::from(i / 8)] & (1 << (i % 8)) != 0
    }

    /// Number of leading zero bits (256 for zero).
    pub fn leading_zeros(&self) -> u32 {
        let mut n = 0;
        for b in self.0 {
            if b != 0 {
                return n + b.leading_zeros();
            }
            n += 8;
        }
        n
    }
}

impl From<crate::DeviceId> for Key {
    fn from(id: crate::DeviceId) -> Key {
        Key(id.0)
    }
}

impl From<blockstore::BlockId> for Key {
    fn from(id: blockstore::BlockId) -> Key {
        Key(id.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(first: u8, last: u8) -> Key {
        let mut k = [0u8; 32];
        k[0] = first;
        k[31] = last;
        Key(k)
    }

    #[test]
    fn bucket_is_highest_differing_bit() {
        let a = key(0, 0);
        assert_eq!(a.bucket_of(&a), None);
        assert_eq!(a.bucket_of(&key(0x80, 0)), Some(255));
        assert_eq!(a.bucket_of(&key(0x01, 0)), Some(248));
        assert_eq!(a.bucket_of(&key(0, 1)), Some(0));
        assert_eq!(a.bucket_of(&key(0, 3)), Some(1));
        let d = a.distance(&key(0x80, 2));
        assert!(d.bit(255) && d.bit(1) && !d.bit(0) && !d.bit(254));
    }

    #[test]
    fn distance_orders_big_endian() {
        let a = key(0, 0);
        assert!(a.distance(&key(0, 0xff)) < a.distance(&key(1, 0)));
        assert_eq!(a.distance(&key(5, 7)), key(5, 7).distance(&a));
    }
}
