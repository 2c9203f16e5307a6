//! Inode record: the plaintext sealed under table 1 with key = inode number (LE).
//!
//! The in-memory inode (what the cache holds) and its conversion to [`Attr`].
use super::{FILE_CONTENT_LEN, FileContent};
use super::{FORMAT_VERSION, Rd, put_long, put_time};
use crate::FsError;
use crate::attr::{Attr, Caller, FileKind, Ino};
use std::time::SystemTime;
/// Reported size of a directory (its entries live elsewhere; tools only want something sane).
const DIR_SIZE: u64 = 4096;

/// One inode as held in the cache and sealed into the inodes table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Inode {
    pub(crate) ino: Ino,
    pub(crate) kind: FileKind,
    pub(crate) perm: u16,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) nlink: u32,
    pub(crate) rdev: u32,
    /// Directories: the parent directory (the root is its own parent). Others: 0.
    pub(crate) parent: Ino,
    pub(crate) atime: SystemTime,
    pub(crate) mtime: SystemTime,
    pub(crate) ctime: SystemTime,
    pub(crate) crtime: SystemTime,
    /// Stored content (regular files); buffered writes are not in here yet.
    pub(crate) content: FileContent,
    /// Symlink target.
    pub(crate) target: Vec<u8>,
}

impl Inode {
    /// A new inode owned by `who`, with `perm & !umask`, all times now.
    pub(crate) fn new(ino: Ino, kind: FileKind, who: Caller, perm: u16, now: SystemTime) -> Self {
        Inode {
            ino,
            kind,
            perm: perm & 0o7777 & !who.umask,
            uid: who.uid,
            gid: who.gid,
            nlink: if kind == FileKind::Dir { 2 } else { 1 },
            rdev: 0,
            parent: 0,
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
            content: FileContent::default(),
            target: Vec::new(),
        }
    }

    /// Attributes, with `size` the logical size (stored content plus buffered writes).
    pub(crate) fn attr(&self, size: u64) -> Attr {
        Attr {
            ino: self.ino,
            kind: self.kind,
            size,
            blocks: size.div_ceil(512),
            perm: self.perm,
            nlink: self.nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: self.rdev,
            atime: self.atime,
            mtime: self.mtime,
            ctime: self.ctime,
            crtime: self.crtime,
        }
    }

    /// Size as stored (no buffered writes).
    pub(crate) fn stored_size(&self) -> u64 {
        match self.kind {
            FileKind::File => self.content.size,
            FileKind::Dir => DIR_SIZE,
            FileKind::Symlink => self.target.len() as u64,
            _ => 0,
        }
    }

    /// Marks a content change (write, truncate).
    pub(crate) fn touch_mtime(&mut self, now: SystemTime) {
        self.mtime = now;
        self.ctime = now;
    }
}

const WHAT: &str = "inode record";

fn kind_byte(k: FileKind) -> u8 {
    match k {
        FileKind::File => 0,
        FileKind::Dir => 1,
        FileKind::Symlink => 2,
        FileKind::Fifo => 3,
        FileKind::Socket => 4,
        FileKind::CharDev => 5,
        FileKind::BlockDev => 6,
    }
}

/// Decodes a kind byte (shared by dirents).
pub(super) fn kind_from(b: u8, what: &'static str) -> Result<FileKind, FsError> {
    Ok(match b {
        0 => FileKind::File,
        1 => FileKind::Dir,
        2 => FileKind::Symlink,
        3 => FileKind::Fifo,
        4 => FileKind::Socket,
        5 => FileKind::CharDev,
        6 => FileKind::BlockDev,
        _ => return Err(FsError::BadRecord(what)),
    })
}

/// Encodes a kind byte (shared by dirents).
pub(super) fn put_kind(out: &mut Vec<u8>, k: FileKind) {
    out.push(kind_byte(k));
}

/// Encodes an inode (its number is the database key, not part of the record).
pub(crate) fn encode_inode(i: &Inode) -> Vec<u8> {
    let mut o = Vec::with_capacity(154 + i.target.len());
    o.push(FORMAT_VERSION);
    o.push(kind_byte(i.kind));
    o.extend_from_slice(&i.perm.to_le_bytes());
    for v in [i.uid, i.gid, i.nlink, i.rdev] {
        o.extend_from_slice(&v.to_le_bytes());
    }
    o.extend_from_slice(&i.parent.to_le_bytes());
    for t in [i.atime, i.mtime, i.ctime, i.crtime] {
        put_time(&mut o, t);
    }
    i.content.encode(&mut o);
    put_long(&mut o, &i.target);
    o
}

/// Decodes a record made by [`encode_inode`] for inode `ino`.
pub(crate) fn decode_inode(ino: u64, b: &[u8]) -> Result<Inode, FsError> {
    let mut r = Rd::versioned(b, WHAT)?;
    let kind = kind_from(r.u8()?, WHAT)?;
    let perm = r.u16()?;
    let (uid, gid, nlink, rdev) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
    let parent = r.u64()?;
    let (atime, mtime, ctime, crtime) = (r.time()?, r.time()?, r.time()?, r.time()?);
    let content = FileContent::decode(r.bytes(FILE_CONTENT_LEN)?)?;
    let target = r.long_bytes()?.to_vec();
    r.end()?;
    Ok(Inode {
        ino,
        kind,
        perm,
        uid,
        gid,
        nlink,
        rdev,
        parent,
        atime,
        mtime,
        ctime,
        crtime,
        content,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::Caller;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn inode_round_trips_and_rejects_garbage() {
        let who = Caller {
            uid: 7,
            gid: 8,
            umask: 0o022,
        };
        let mut i = Inode::new(42, FileKind::Symlink, who, 0o7777, UNIX_EPOCH);
        i.target = b"/some/where".to_vec();
        i.mtime = UNIX_EPOCH + Duration::new(3, 4);
        i.parent = 9;
        let b = encode_inode(&i);
        assert_eq!(b.len(), 154 + 11);
        assert_eq!(decode_inode(42, &b).unwrap(), i);
        assert!(decode_inode(42, &b[..b.len() - 1]).is_err());
        let mut bad = b.clone();
        bad[1] = 99;
        assert!(decode_inode(42, &bad).is_err());
        bad = b;
        bad[0] = 2;
        assert!(decode_inode(42, &bad).is_err());
    }
}
