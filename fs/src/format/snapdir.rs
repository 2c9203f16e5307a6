//! Snapshot directory block payload (`BlockKind::Dir`): a directory's own inode record and
//! every entry with the child's full inode record and, for subdirectories, its block.
use super::sealed::{BLOCK_REF_LEN, BlockRef};
use super::{FORMAT_VERSION, Rd, decode_inode, encode_inode, put_long, put_short};
use crate::FsError;
use crate::attr::Ino;
use crate::format::Inode;

const WHAT: &str = "snapshot directory block";

/// One entry of a snapshot directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SnapEntry {
    pub(crate) name: Vec<u8>,
    /// The child's inode record (hard links share the inode number).
    pub(crate) inode: Inode,
    /// The child's own directory block, for subdirectories.
    pub(crate) sub: Option<BlockRef>,
}

/// A decoded snapshot directory block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SnapDir {
    pub(crate) this: Inode,
    pub(crate) entries: Vec<SnapEntry>,
}

fn put_inode(o: &mut Vec<u8>, i: &Inode) {
    o.extend_from_slice(&i.ino.to_le_bytes());
    put_long(o, &encode_inode(i));
}

fn get_inode(r: &mut Rd<'_>) -> Result<Inode, FsError> {
    let ino: Ino = r.u64()?;
    decode_inode(ino, r.long_bytes()?)
}

/// Encodes a snapshot directory.
pub(crate) fn encode_snapdir(d: &SnapDir) -> Vec<u8> {
    let mut o = vec![FORMAT_VERSION];
    put_inode(&mut o, &d.this);
    let n = u32::try_from(d.entries.len()).unwrap_or(u32::MAX);
    o.extend_from_slice(&n.to_le_bytes());
    for e in d.entries.iter().take(n as usize) {
        put_short(&mut o, &e.name);
        put_inode(&mut o, &e.inode);
        match &e.sub {
            None => o.push(0),
            Some(b) => {
                o.push(1);
                b.encode(&mut o);
            }
        }
    }
    o
}

/// Decodes a snapshot directory.
pub(crate) fn decode_snapdir(b: &[u8]) -> Result<SnapDir, FsError> {
    let mut r = Rd::versioned(b, WHAT)?;
    let this = get_inode(&mut r)?;
    let n = r.u32()?;
    let mut entries = Vec::new();
    for _ in 0..n {
        let name = r.short_bytes()?.to_vec();
        let inode = get_inode(&mut r)?;
        let sub = match r.u8()? {
            0 => None,
            1 => Some(BlockRef::decode(r.bytes(BLOCK_REF_LEN)?)?),
            _ => return Err(FsError::BadRecord(WHAT)),
        };
        entries.push(SnapEntry { name, inode, sub });
    }
    r.end()?;
    Ok(SnapDir { this, entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::{Caller, FileKind};
    use blockstore::BlockId;
    use std::time::UNIX_EPOCH;

    #[test]
    fn snapdir_round_trips() {
        let who = Caller {
            uid: 1,
            gid: 2,
            umask: 0,
        };
        let this = Inode::new(1, FileKind::Dir, who, 0o755, UNIX_EPOCH);
        let f = Inode::new(5, FileKind::File, who, 0o644, UNIX_EPOCH);
        let d = Inode::new(6, FileKind::Dir, who, 0o755, UNIX_EPOCH);
        let sub = Some(BlockRef {
            id: BlockId([1; 32]),
            key: [2; 32],
        });
        let sd = SnapDir {
            this,
            entries: vec![
                SnapEntry {
                    name: b"f".to_vec(),
                    inode: f,
                    sub: None,
                },
                SnapEntry {
                    name: b"d".to_vec(),
                    inode: d,
                    sub,
                },
            ],
        };
        let b = encode_snapdir(&sd);
        assert_eq!(decode_snapdir(&b).unwrap(), sd);
        assert!(decode_snapdir(&b[..b.len() - 3]).is_err());
    }
}
