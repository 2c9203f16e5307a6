//! Browsing snapshots: the hidden `/.snapshots` directory and everything below it, served
//! read-only from snapshot directory blocks through virtual inode numbers (high bit set).
use crate::FsError;
use crate::attr::{Attr, DirEntry, FileKind, Ino, ROOT_INO};
use crate::core::Core;
use crate::crypto::BlockRef;
use crate::format::Inode;
use crate::meta::Tag;
use crate::ns::dir::{attr_of, cookie_of};
use parking_lot::Mutex;
use std::collections::HashMap;

/// Name of the hidden snapshot directory in the root.
pub(crate) const SNAP_DIR: &[u8] = b".snapshots";
/// High bit marking virtual (snapshot) inode numbers.
const VIRT: Ino = 1 << 63;
/// The virtual inode of `/.snapshots`.
pub(crate) const SNAP_ROOT: Ino = VIRT | 1;

/// Whether `ino` is a virtual snapshot inode.
pub(crate) fn is_virtual(ino: Ino) -> bool {
    ino & VIRT != 0
}

/// A snapshot inode seen through the view.
#[derive(Clone)]
struct VNode {
    snap: Tag,
    /// The archived inode, renumbered to its virtual number.
    inode: Inode,
    /// Its directory block, for directories.
    dir: Option<BlockRef>,
    parent: Ino,
}

/// Virtual inodes handed out so far; the same (snapshot, inode) keeps its number.
#[derive(Default)]
struct SnapView {
    nodes: HashMap<Ino, VNode>,
    ids: HashMap<(Tag, Ino), Ino>,
    next: u64,
}

impl SnapView {
    fn register(&mut self, snap: Tag, mut inode: Inode, dir: Option<BlockRef>, parent: Ino) -> Ino {
        let next = &mut self.next;
        let vino = *self.ids.entry((snap, inode.ino)).or_insert_with(|| {
            *next += 1;
            SNAP_ROOT + *next
        });
        inode.ino = vino;
        self.nodes.insert(
            vino,
            VNode {
                snap,
                inode,
                dir,
                parent,
            },
        );
        vino
    }

    fn node(&self, vino: Ino) -> Result<VNode, FsError> {
        self.nodes.get(&vino).cloned().ok_or(FsError::NotFound)
    }

    /// Drops the virtual inodes of a removed snapshot.
    pub(crate) fn forget(&mut self, snap: Tag) {
        self.nodes.retain(|_, n| n.snap != snap);
        self.ids.retain(|(t, _), _| *t != snap);
    }
}

fn dot(ino: Ino, cookie: u64, name: &[u8]) -> DirEntry {
    DirEntry {
        ino,
        cookie,
        kind: FileKind::Dir,
        name: name.to_vec(),
    }
}

/// The `.snapshots` tree: the virtual inodes handed out so far (owned by the volume, beside
/// the core it reads through).
#[derive(Default)]
pub(crate) struct Snapshots {
    view: Mutex<SnapView>,
}

impl Snapshots {
    /// Drops the virtual inodes of removed snapshot `snap`.
    pub(crate) fn forget(&self, snap: Tag) {
        self.view.lock().forget(snap);
    }
}

impl Snapshots {
    /// Attributes of a virtual inode.
    pub(crate) fn getattr(&self, core: &Core, vino: Ino) -> Result<Attr, FsError> {
        if vino == SNAP_ROOT {
            let mut a = attr_of(&mut core.st.lock(), ROOT_INO)?;
            (a.ino, a.perm, a.nlink) = (SNAP_ROOT, 0o555, 2);
            return Ok(a);
        }
        let n = self.view.lock().node(vino)?;
        Ok(n.inode.attr(n.inode.stored_size()))
    }

    fn parent_of(&self, vino: Ino) -> Result<Ino, FsError> {
        match vino {
            SNAP_ROOT => Ok(ROOT_INO),
            _ => Ok(self.view.lock().node(vino)?.parent),
        }
    }

    fn attr_any(&self, core: &Core, ino: Ino) -> Result<Attr, FsError> {
        match is_virtual(ino) {
            true => self.getattr(core, ino),
            false => attr_of(&mut core.st.lock(), ino),
        }
    }

    /// `lookup` below `/.snapshots`.
    pub(crate) fn lookup(&self, core: &Core, parent: Ino, name: &[u8]) -> Result<Attr, FsError> {
        match name {
            b"." => return self.getattr(core, parent),
            b".." => return self.attr_any(core, self.parent_of(parent)?),
            _ => {}
        }
        if parent == SNAP_ROOT {
            let rec = core.find_snapshot(name)?.ok_or(FsError::NotFound)?;
            let d = core.snap_dir(&rec.root)?;
            let tag = core.snap_tag(name);
            let vino = self
                .view
                .lock()
                .register(tag, d.this, Some(rec.root), SNAP_ROOT);
            return self.getattr(core, vino);
        }
        let n = self.view.lock().node(parent)?;
        let d = core.snap_dir(&n.dir.ok_or(FsError::NotDir)?)?;
        let e = d
            .entries
            .into_iter()
            .find(|e| e.name == name)
            .ok_or(FsError::NotFound)?;
        let vino = self.view.lock().register(n.snap, e.inode, e.sub, parent);
        self.getattr(core, vino)
    }

    /// `readdir` below `/.snapshots`: snapshots by tag, or a directory block's entries by
    /// position (blocks never change, so positions are stable cookies).
    pub(crate) fn readdir(
        &self,
        core: &Core,
        vino: Ino,
        after: u64,
        max: usize,
    ) -> Result<Vec<DirEntry>, FsError> {
        let mut out = Vec::new();
        for (c, n, x) in [(1, &b"."[..], vino), (2, &b".."[..], self.parent_of(vino)?)] {
            if after < c {
                out.push(dot(x, c, n));
            }
        }
        let mut listed = Vec::new();
        if vino == SNAP_ROOT {
            let mut snaps = core.db.snapshots()?;
            snaps.sort_by_key(|(t, _)| *t);
            for (tag, rec) in snaps {
                let d = core.snap_dir(&rec.root)?;
                let ino = self
                    .view
                    .lock()
                    .register(tag, d.this, Some(rec.root), SNAP_ROOT);
                listed.push((
                    cookie_of(&tag),
                    DirEntry {
                        ino,
                        cookie: 0,
                        kind: FileKind::Dir,
                        name: rec.name.into_bytes(),
                    },
                ));
            }
        } else {
            let n = self.view.lock().node(vino)?;
            let d = core.snap_dir(&n.dir.ok_or(FsError::NotDir)?)?;
            let mut view = self.view.lock();
            for (k, e) in d.entries.into_iter().enumerate() {
                let kind = e.inode.kind;
                let ino = view.register(n.snap, e.inode, e.sub, vino);
                listed.push((
                    3 + k as u64,
                    DirEntry {
                        ino,
                        cookie: 0,
                        kind,
                        name: e.name,
                    },
                ));
            }
        }
        for (cookie, e) in listed.into_iter().filter(|(c, _)| *c > after) {
            out.push(DirEntry { cookie, ..e });
        }
        out.truncate(max);
        Ok(out)
    }

    /// `readlink` of a snapshot symlink.
    pub(crate) fn readlink(&self, vino: Ino) -> Result<Vec<u8>, FsError> {
        let n = self.view.lock().node(vino)?;
        match n.inode.kind {
            FileKind::Symlink => Ok(n.inode.target),
            _ => Err(FsError::Invalid("not a symlink")),
        }
    }

    /// Opens a snapshot file for reading; the handle is the virtual inode number.
    pub(crate) fn open(&self, core: &Core, vino: Ino) -> Result<u64, FsError> {
        match self.getattr(core, vino)?.kind {
            FileKind::File => Ok(vino),
            FileKind::Dir => Err(FsError::IsDir),
            _ => Err(FsError::NotSupported),
        }
    }

    /// Reads a snapshot file from its recorded content.
    pub(crate) fn read(
        &self,
        core: &Core,
        vino: Ino,
        off: u64,
        len: usize,
    ) -> Result<Vec<u8>, FsError> {
        let n = self.view.lock().node(vino)?;
        core.engine.read(&n.inode.content, off, len)
    }

    /// Closes a snapshot file handle (nothing to do).
    pub(crate) fn release(&self, _fh: u64) -> Result<(), FsError> {
        Ok(())
    }
}
