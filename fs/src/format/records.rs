//! Directory entry, xattr, snapshot and superblock records.
use super::inode::{kind_from, put_kind};
use super::sealed::{BLOCK_REF_LEN, BlockRef};
use super::{FORMAT_VERSION, Rd, put_long, put_short, put_time};
use crate::FsError;
use crate::attr::{FileKind, Ino};
use std::time::SystemTime;

/// A directory entry (table 2, key = parent ino LE ‖ name tag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dirent {
    pub(crate) name: Vec<u8>,
    pub(crate) ino: Ino,
    pub(crate) kind: FileKind,
}

/// An extended attribute (table 3, key = ino LE ‖ name tag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Xattr {
    pub(crate) name: Vec<u8>,
    pub(crate) value: Vec<u8>,
}

/// A snapshot (table 4, key = name tag under inode 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SnapRecord {
    pub(crate) name: String,
    pub(crate) time: SystemTime,
    /// The snapshot's root directory block.
    pub(crate) root: BlockRef,
}

/// Volume counters (table 5, key "super").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Super {
    /// Next inode number to hand out (never reused).
    pub(crate) next_ino: Ino,
}

/// Encodes a directory entry.
pub(crate) fn encode_dirent(d: &Dirent) -> Vec<u8> {
    let mut o = Vec::with_capacity(12 + d.name.len());
    o.push(FORMAT_VERSION);
    put_kind(&mut o, d.kind);
    o.extend_from_slice(&d.ino.to_le_bytes());
    put_short(&mut o, &d.name);
    o
}

/// Decodes a directory entry.
pub(crate) fn decode_dirent(b: &[u8]) -> Result<Dirent, FsError> {
    const W: &str = "directory entry";
    let mut r = Rd::versioned(b, W)?;
    let kind = kind_from(r.u8()?, W)?;
    let ino = r.u64()?;
    let name = r.short_bytes()?.to_vec();
    r.end()?;
    Ok(Dirent { name, ino, kind })
}

/// Encodes an xattr.
pub(crate) fn encode_xattr(x: &Xattr) -> Vec<u8> {
    let mut o = Vec::with_capacity(7 + x.name.len() + x.value.len());
    o.push(FORMAT_VERSION);
    put_short(&mut o, &x.name);
    put_long(&mut o, &x.value);
    o
}

/// Decodes an xattr.
pub(crate) fn decode_xattr(b: &[u8]) -> Result<Xattr, FsError> {
    let mut r = Rd::versioned(b, "xattr record")?;
    let name = r.short_bytes()?.to_vec();
    let value = r.long_bytes()?.to_vec();
    r.end()?;
    Ok(Xattr { name, value })
}

/// Encodes a snapshot record.
pub(crate) fn encode_snap(s: &SnapRecord) -> Vec<u8> {
    let mut o = Vec::with_capacity(80 + s.name.len());
    o.push(FORMAT_VERSION);
    put_time(&mut o, s.time);
    s.root.encode(&mut o);
    put_short(&mut o, s.name.as_bytes());
    o
}

/// Decodes a snapshot record.
pub(crate) fn decode_snap(b: &[u8]) -> Result<SnapRecord, FsError> {
    const W: &str = "snapshot record";
    let mut r = Rd::versioned(b, W)?;
    let time = r.time()?;
    let root = BlockRef::decode(r.bytes(BLOCK_REF_LEN)?)?;
    let name = String::from_utf8(r.short_bytes()?.to_vec()).map_err(|_| FsError::BadRecord(W))?;
    r.end()?;
    Ok(SnapRecord { name, time, root })
}

/// Encodes the superblock record.
pub(crate) fn encode_super(s: &Super) -> Vec<u8> {
    let mut o = vec![FORMAT_VERSION];
    o.extend_from_slice(&s.next_ino.to_le_bytes());
    o
}

/// Decodes the superblock record.
pub(crate) fn decode_super(b: &[u8]) -> Result<Super, FsError> {
    let mut r = Rd::versioned(b, "superblock record")?;
    let next_ino = r.u64()?;
    r.end()?;
    Ok(Super { next_ino })
}

#[cfg(test)]
mod tests {
    use super::*;
    use blockstore::BlockId;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn records_round_trip() {
        let d = Dirent {
            name: b"n\xffame".to_vec(),
            ino: 77,
            kind: FileKind::Fifo,
        };
        assert_eq!(decode_dirent(&encode_dirent(&d)).unwrap(), d);
        let x = Xattr {
            name: b"user.a".to_vec(),
            value: vec![0; 70_000],
        };
        assert_eq!(decode_xattr(&encode_xattr(&x)).unwrap(), x);
        let s = SnapRecord {
            name: "2026-11-23".into(),
            time: UNIX_EPOCH + Duration::new(9, 9),
            root: BlockRef {
                id: BlockId([3; 32]),
                key: [4; 32],
            },
        };
        assert_eq!(decode_snap(&encode_snap(&s)).unwrap(), s);
        let sb = Super { next_ino: 1 << 40 };
        assert_eq!(decode_super(&encode_super(&sb)).unwrap(), sb);
        assert!(decode_dirent(&[1, 0]).is_err());
        assert!(decode_super(&[2, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
