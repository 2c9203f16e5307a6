//! Byte encodings of the metadata records (docs/formats/fs.md). Pure: bytes in, values out.
//!
//! Every record starts with a format-version byte; integers are little-endian. These are the
//! plaintexts that `VolumeKeys::seal_record` seals (or that snapshot directory blocks hold).
pub(crate) mod anchor;
mod content;
#[cfg(test)]
mod golden_tests;
mod inode;
pub(crate) mod pointer;
mod records;
pub(crate) mod sealed;
mod snapdir;
pub(crate) mod sync;

pub use content::{BlockKind, FILE_CONTENT_LEN, FileContent, TreeRoot};
pub(crate) use inode::{Inode, decode_inode, encode_inode};
pub(crate) use records::{
    Dirent, SnapRecord, Super, Xattr, decode_dirent, decode_snap, decode_super, decode_xattr,
    encode_dirent, encode_snap, encode_super, encode_xattr,
};
pub(crate) use snapdir::{SnapDir, SnapEntry, decode_snapdir, encode_snapdir};

use crate::FsError;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// (database key, record plaintext) pairs of a whole table.
pub(crate) type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// Format version of every record defined here.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// A bounds-checked little-endian reader; every failure is `BadRecord(what)`.
pub(crate) struct Rd<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Rd<'a> {
    /// A reader over `b` that checks the leading version byte.
    pub(crate) fn versioned(b: &'a [u8], what: &'static str) -> Result<Self, FsError> {
        let mut r = Rd { b, what };
        if r.u8()? != FORMAT_VERSION {
            return Err(FsError::BadRecord(what));
        }
        Ok(r)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], FsError> {
        if self.b.len() < n {
            return Err(FsError::BadRecord(self.what));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FsError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FsError> {
        Ok(self.bytes(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, FsError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, FsError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, FsError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A time written by [`put_time`].
    pub(crate) fn time(&mut self) -> Result<SystemTime, FsError> {
        let secs = i64::from_le_bytes(self.array()?);
        let nanos = self.u32()?;
        if nanos >= 1_000_000_000 {
            return Err(FsError::BadRecord(self.what));
        }
        let t = if secs >= 0 {
            UNIX_EPOCH.checked_add(Duration::new(secs.unsigned_abs(), nanos))
        } else {
            UNIX_EPOCH
                .checked_sub(Duration::from_secs(secs.unsigned_abs()))
                .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanos))))
        };
        t.ok_or(FsError::BadRecord(self.what))
    }

    /// Bytes with a u16 length prefix.
    pub(crate) fn short_bytes(&mut self) -> Result<&'a [u8], FsError> {
        let n = self.u16()? as usize;
        self.bytes(n)
    }

    /// Bytes with a u32 length prefix.
    pub(crate) fn long_bytes(&mut self) -> Result<&'a [u8], FsError> {
        let n = self.u32()? as usize;
        self.bytes(n)
    }

    /// Fails unless everything was consumed.
    pub(crate) fn end(&self) -> Result<(), FsError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(FsError::BadRecord(self.what))
        }
    }
}

/// Appends a time as i64 seconds since the epoch (floor) ‖ u32 nanoseconds.
pub(crate) fn put_time(out: &mut Vec<u8>, t: SystemTime) {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            // In i128: `-(2^63)` seconds (the earliest time `Rd::time` accepts) must come
            // back as itself, not clamped.
            let d = e.duration();
            let s = -i128::from(d.as_secs());
            let (s, n) = match d.subsec_nanos() {
                0 => (s, 0),
                n => (s - 1, 1_000_000_000 - n),
            };
            (i64::try_from(s).unwrap_or(i64::MIN), n)
        }
    };
    out.extend_from_slice(&secs.to_le_bytes());
    out.extend_from_slice(&nanos.to_le_bytes());
}

/// Appends bytes with a u16 length prefix (callers bound the length to 255 or 64 KiB − 1).
pub(crate) fn put_short(out: &mut Vec<u8>, b: &[u8]) {
    let n = u16::try_from(b.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&b[..n as usize]);
}

/// Appends bytes with a u32 length prefix.
pub(crate) fn put_long(out: &mut Vec<u8>, b: &[u8]) {
    let n = u32::try_from(b.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&b[..n as usize]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_before_and_after_epoch() {
        for t in [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            UNIX_EPOCH - Duration::new(5, 250_000_000),
            UNIX_EPOCH - Duration::from_secs(1 << 63),
            UNIX_EPOCH - Duration::new((1 << 63) - 1, 1),
        ] {
            let mut v = vec![FORMAT_VERSION];
            put_time(&mut v, t);
            let mut r = Rd::versioned(&v, "t").unwrap();
            assert_eq!(r.time().unwrap(), t);
            r.end().unwrap();
        }
    }
}
