//! Sync records (docs/formats/sync.md): index entries, the local index record, the sync
//! superblock and peer progress.
use super::{FILE_CONTENT_LEN, FileContent};
use super::{FORMAT_VERSION, Rd, put_long, put_short, put_time};
use crate::FsError;
use std::time::SystemTime;

/// Longest path accepted in an entry.
pub(crate) const PATH_MAX: usize = 4096;
/// Most version vector components accepted.
const VV_MAX: usize = 4096;
/// Most extended attributes accepted on one entry.
pub(crate) const XATTRS_MAX: usize = 256;
/// Largest extended attribute value (Linux XATTR_SIZE_MAX).
const XATTR_VALUE_MAX: usize = 64 << 10;
/// The only synced xattr namespace.
pub(crate) const SYNCED_XATTR_PREFIX: &[u8] = b"user.";

/// A version vector: (short device id, counter), sorted by device, counters > 0.
pub type Version = Vec<(u64, u64)>;

/// What an entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EntryKind {
    /// Regular file.
    File = 1,
    /// Directory.
    Dir = 2,
    /// Symbolic link.
    Symlink = 3,
}

impl EntryKind {
    /// The kind of encoding byte `b`.
    pub(crate) fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(EntryKind::File),
            2 => Some(EntryKind::Dir),
            3 => Some(EntryKind::Symlink),
            _ => None,
        }
    }
}

/// One path's state in the index (docs/protocol.md, "Model").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Components joined by `/`, relative to the volume root.
    pub path: Vec<u8>,
    /// File, directory or symlink.
    pub kind: EntryKind,
    /// A tombstone.
    pub deleted: bool,
    /// Mode bits (07777).
    pub perm: u16,
    /// Modification time.
    pub mtime: SystemTime,
    /// Files: the content (size and Merkle root).
    pub content: FileContent,
    /// Symlinks: the target.
    pub target: Vec<u8>,
    /// Version vector.
    pub version: Version,
    /// DeviceId of the device that made this version.
    pub author: [u8; 32],
    /// `user.*` extended attributes (name, value), sorted by name. Other namespaces
    /// (`security.*`, `trusted.*`) belong to the machine and are not synced.
    pub xattrs: Xattrs,
}

/// Extended attributes as (name, value) pairs.
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

impl Entry {
    /// Same state apart from version and author: both tombstones, or the same kind, perm,
    /// content, target and (except directories, whose mtime moves with their entries) mtime.
    pub(crate) fn same_state(&self, o: &Entry) -> bool {
        (self.deleted && o.deleted)
            || (!self.deleted
                && !o.deleted
                && self.kind == o.kind
                && self.perm == o.perm
                && self.content == o.content
                && self.target == o.target
                && self.xattrs == o.xattrs
                && (self.kind == EntryKind::Dir || self.mtime == o.mtime))
    }

    /// Rule 3's "equal content": same kind, deleted flag, content and target (two
    /// tombstones are always equal).
    pub(crate) fn same_content(&self, o: &Entry) -> bool {
        (self.deleted && o.deleted)
            || (self.kind == o.kind
                && self.deleted == o.deleted
                && self.content == o.content
                && self.target == o.target)
    }
}

/// Encodes an index entry (the plaintext that is sealed for the wire).
pub(crate) fn encode_entry(e: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + e.path.len() + e.target.len());
    out.push(FORMAT_VERSION);
    out.push(e.kind as u8);
    out.push(u8::from(e.deleted));
    out.extend_from_slice(&e.perm.to_le_bytes());
    put_time(&mut out, e.mtime);
    put_short(&mut out, &e.path);
    e.content.encode(&mut out);
    put_short(&mut out, &e.target);
    let n = u16::try_from(e.version.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_le_bytes());
    for (d, c) in e.version.iter().take(n as usize) {
        out.extend_from_slice(&d.to_le_bytes());
        out.extend_from_slice(&c.to_le_bytes());
    }
    out.extend_from_slice(&e.author);
    let n = u16::try_from(e.xattrs.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_le_bytes());
    for (name, value) in e.xattrs.iter().take(n as usize) {
        put_short(&mut out, name);
        put_long(&mut out, value);
    }
    out
}

/// Decodes and validates an index entry.
pub(crate) fn decode_entry(b: &[u8]) -> Result<Entry, FsError> {
    let bad = || FsError::BadRecord("sync entry");
    let mut r = Rd::versioned(b, "sync entry")?;
    let kind = EntryKind::from_u8(r.u8()?).ok_or_else(bad)?;
    let deleted = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(bad()),
    };
    let perm = r.u16()?;
    let mtime = r.time()?;
    let path = r.short_bytes()?.to_vec();
    let content = FileContent::decode(r.bytes(FILE_CONTENT_LEN)?)?;
    let target = r.short_bytes()?.to_vec();
    let n = r.u16()? as usize;
    let mut version = Vec::with_capacity(n.min(VV_MAX));
    for _ in 0..n {
        version.push((r.u64()?, r.u64()?));
    }
    let mut author = [0u8; 32];
    author.copy_from_slice(r.bytes(32)?);
    let n = r.u16()? as usize;
    let mut xattrs = Vec::with_capacity(n.min(XATTRS_MAX));
    for _ in 0..n {
        xattrs.push((r.short_bytes()?.to_vec(), r.long_bytes()?.to_vec()));
    }
    r.end()?;
    let e = Entry {
        path,
        kind,
        deleted,
        perm,
        mtime,
        content,
        target,
        version,
        author,
        xattrs,
    };
    valid(&e).then_some(e).ok_or_else(bad)
}

/// Whether an entry is well formed: a clean path, perm within 07777, a strictly sorted
/// version vector with non-zero counters, content only on files, a target only on symlinks.
fn valid(e: &Entry) -> bool {
    let vv_ok = !e.version.is_empty()
        && e.version.len() <= VV_MAX
        && e.version.windows(2).all(|w| w[0].0 < w[1].0)
        && e.version.iter().all(|(_, c)| *c > 0);
    let content_ok = e.kind == EntryKind::File || e.content == FileContent::default();
    let target_ok = e.kind == EntryKind::Symlink || e.target.is_empty();
    let xattrs_ok = e.xattrs.len() <= XATTRS_MAX
        && e.xattrs.windows(2).all(|w| w[0].0 < w[1].0)
        && e.xattrs.iter().all(|(n, v)| {
            n.starts_with(SYNCED_XATTR_PREFIX) && n.len() <= 255 && v.len() <= XATTR_VALUE_MAX
        });
    valid_path(&e.path) && e.perm <= 0o7777 && vv_ok && content_ok && target_ok && xattrs_ok
}

/// A path is non-empty, ≤ 4096 bytes, without NUL, leading `/`, or empty, `.`, `..` or
/// over-long (> 255) components.
pub(crate) fn valid_path(p: &[u8]) -> bool {
    !p.is_empty()
        && p.len() <= PATH_MAX
        && !p.contains(&0)
        && p.split(|b| *b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b".." && c.len() <= 255)
}

/// Encodes a local index record: local seq ‖ signed blob.
pub(crate) fn encode_index_rec(seq: u64, blob: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(13 + blob.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&seq.to_le_bytes());
    put_long(&mut out, blob);
    out
}

/// Decodes a local index record into (seq, signed blob).
pub(crate) fn decode_index_rec(b: &[u8]) -> Result<(u64, Vec<u8>), FsError> {
    let mut r = Rd::versioned(b, "sync index record")?;
    let seq = r.u64()?;
    let blob = r.long_bytes()?.to_vec();
    r.end()?;
    Ok((seq, blob))
}

/// Encodes a pair of counters (sync superblock: index_id ‖ seq; peer: index_id ‖ seq).
pub(crate) fn encode_pair(a: u64, b: u64) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    out.extend_from_slice(&a.to_le_bytes());
    out.extend_from_slice(&b.to_le_bytes());
    out
}

/// Decodes what [`encode_pair`] made.
pub(crate) fn decode_pair(b: &[u8]) -> Result<(u64, u64), FsError> {
    let mut r = Rd::versioned(b, "sync counters")?;
    let v = (r.u64()?, r.u64()?);
    r.end()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn entry() -> Entry {
        Entry {
            path: b"a/b.txt".to_vec(),
            kind: EntryKind::File,
            deleted: false,
            perm: 0o644,
            mtime: UNIX_EPOCH + Duration::new(1_700_000_000, 5),
            content: FileContent::default(),
            target: Vec::new(),
            version: vec![(1, 2), (7, 1)],
            author: [9; 32],
            xattrs: vec![(b"user.fossa.redundancy".to_vec(), b"3".to_vec())],
        }
    }

    #[test]
    fn entry_round_trips_and_rejects_bad_ones() {
        let e = entry();
        assert_eq!(decode_entry(&encode_entry(&e)).unwrap(), e);
        let enc = encode_entry(&e);
        assert!(decode_entry(&enc[..enc.len() - 1]).is_err());
        for p in [&b"/a"[..], b"a//b", b"a/../b", b".", b""] {
            let bad = Entry {
                path: p.to_vec(),
                ..entry()
            };
            assert!(decode_entry(&encode_entry(&bad)).is_err());
        }
        let unsorted = Entry {
            version: vec![(7, 1), (1, 2)],
            ..entry()
        };
        assert!(decode_entry(&encode_entry(&unsorted)).is_err());
    }

    proptest::proptest! {
        /// Decoding arbitrary bytes, or a valid entry with bytes flipped, cut or appended,
        /// returns an error or a valid entry; it never panics, and what decodes re-encodes to
        /// the same bytes (one encoding per entry).
        #[test]
        fn decoding_hostile_bytes_never_panics(
            junk in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            flips in proptest::collection::vec((0usize..400, 1u8..=255), 0..4),
            cut in 0usize..400,
        ) {
            if let Ok(e) = decode_entry(&junk) {
                proptest::prop_assert_eq!(encode_entry(&e), junk.clone());
            }
            let mut b = encode_entry(&entry());
            for (at, x) in flips {
                let n = b.len();
                b[at % n] ^= x;
            }
            if let Ok(e) = decode_entry(&b) {
                proptest::prop_assert!(valid(&e));
                proptest::prop_assert_eq!(encode_entry(&e), b.clone());
            }
            b.truncate(cut);
            let _ = decode_entry(&b);
            b.extend_from_slice(&junk);
            let _ = decode_entry(&b);
            let _ = decode_index_rec(&junk);
            let _ = decode_pair(&junk);
        }
    }

    #[test]
    fn records_round_trip() {
        let r = encode_index_rec(5, b"blob");
        assert_eq!(decode_index_rec(&r).unwrap(), (5, b"blob".to_vec()));
        assert_eq!(decode_pair(&encode_pair(3, 4)).unwrap(), (3, 4));
    }
}
