//! The in-memory inode and its conversion to [`Attr`].
use crate::attr::{Attr, Caller, FileKind, Ino};
use crate::file::FileContent;
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
