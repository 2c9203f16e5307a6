//! Making the live tree match an index entry (under the state lock): creating missing parent
//! directories, replacing or updating nodes, removing deleted ones.
use super::ApplyReport;
use super::scan::join;
use super::{Entry, EntryKind};
use crate::FsError;
use crate::attr::{Caller, FileKind, Ino, ROOT_INO};
use crate::core::Core;
use crate::format::Inode;
use crate::format::sync::SYNCED_XATTR_PREFIX;
use crate::format::{Dirent, Xattr};
use crate::meta::Tag;
use crate::ns::dir::{add_links, touch_dir, unlink_inode};
use crate::write::State;
use std::time::SystemTime;

/// Permissions of directories created because an entry below them arrived first.
const IMPLIED_DIR_PERM: u16 = 0o755;

/// What became of an entry applied to the tree.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The tree now matches the entry.
    Done,
    /// A directory with live children was to be deleted or replaced: it stays.
    Kept,
}

/// Applies entries to the live tree, collecting what FUSE must invalidate.
pub(crate) struct Applier<'a> {
    pub(crate) core: &'a Core,
    pub(crate) st: &'a mut State,
    pub(crate) report: &'a mut ApplyReport,
    /// Paths of directories created as missing parents (they need index entries).
    pub(crate) created_dirs: Vec<Vec<u8>>,
    /// Files whose content was set (their blocks may not be local).
    pub(crate) files: Vec<Ino>,
    /// Paths of non-directories removed because a directory had to take their place.
    pub(crate) displaced: Vec<Vec<u8>>,
    /// Paths whose node was removed (`None`) or created, in order (for the path map).
    pub(crate) moved: Vec<(Vec<u8>, Option<Ino>)>,
}

fn file_kind(k: EntryKind) -> FileKind {
    match k {
        EntryKind::File => FileKind::File,
        EntryKind::Dir => FileKind::Dir,
        EntryKind::Symlink => FileKind::Symlink,
    }
}

/// Splits a path into its parent path and last component.
pub(crate) fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(k) => (&path[..k], &path[k + 1..]),
        None => (&[], path),
    }
}

impl Applier<'_> {
    /// The directory at `path`, created (with parents) if `create`; `None` if absent.
    pub(crate) fn dir_at(&mut self, path: &[u8], create: bool) -> Result<Option<Ino>, FsError> {
        let mut dir = ROOT_INO;
        let mut at = Vec::new();
        for c in path.split(|b| *b == b'/').filter(|c| !c.is_empty()) {
            at = join(&at, c);
            dir = match self.core.entry(self.st, dir, c)?.1 {
                Some(d) if d.kind == FileKind::Dir => d.ino,
                None | Some(_) if !create => return Ok(None),
                Some(d) => {
                    // A directory beats a file: the file moves to its conflict copy.
                    self.displaced.push(at.clone());
                    self.remove((dir, c), &at, &d)?;
                    self.created_dirs.push(at.clone());
                    self.create(dir, c, &implied_dir(&at))?
                }
                None => {
                    let e = implied_dir(&at);
                    self.created_dirs.push(at.clone());
                    self.create(dir, c, &e)?
                }
            };
        }
        Ok(Some(dir))
    }

    /// Makes the tree match `e`.
    pub(crate) fn realize(&mut self, e: &Entry) -> Result<Outcome, FsError> {
        let (parent, name) = split(&e.path);
        if e.deleted {
            return self.delete(parent, name);
        }
        let dir = self.dir_at(parent, true)?.ok_or(FsError::NotFound)?;
        match self.core.entry(self.st, dir, name)?.1 {
            Some(d) if self.fits(&d, e)? => self.update(d.ino, e)?,
            Some(d) if d.kind == FileKind::Dir && !self.st.dir(d.ino)?.is_empty() => {
                return Ok(Outcome::Kept);
            }
            Some(d) => {
                self.remove((dir, name), &e.path, &d)?;
                self.create(dir, name, e)?;
            }
            None => {
                self.create(dir, name, e)?;
            }
        }
        Ok(Outcome::Done)
    }

    fn delete(&mut self, parent: &[u8], name: &[u8]) -> Result<Outcome, FsError> {
        let Some(dir) = self.dir_at(parent, false)? else {
            return Ok(Outcome::Done);
        };
        let Some(d) = self.core.entry(self.st, dir, name)?.1 else {
            return Ok(Outcome::Done);
        };
        if d.kind == FileKind::Dir && !self.st.dir(d.ino)?.is_empty() {
            return Ok(Outcome::Kept);
        }
        self.remove((dir, name), &join(parent, name), &d)?;
        Ok(Outcome::Done)
    }

    /// Whether node `d` can take `e`'s state in place: same kind, and for non-directories
    /// neither open (open handles keep the old inode, like unlink-while-open) nor hard-linked.
    fn fits(&mut self, d: &Dirent, e: &Entry) -> Result<bool, FsError> {
        if d.kind != file_kind(e.kind) {
            return Ok(false);
        }
        if d.kind == FileKind::Dir {
            return Ok(true);
        }
        Ok(!self.st.files.is_open(d.ino) && self.st.inode(d.ino)?.nlink == 1)
    }

    fn update(&mut self, ino: Ino, e: &Entry) -> Result<(), FsError> {
        let i = self.st.inode_mut(ino)?;
        i.perm = e.perm;
        i.ctime = SystemTime::now();
        if e.kind != EntryKind::Dir {
            i.mtime = e.mtime;
            i.content = e.content;
            i.target = e.target.clone();
        }
        if e.kind == EntryKind::File {
            self.files.push(ino);
        }
        self.set_xattrs(ino, &e.xattrs)?;
        self.report.changed_inodes.push(ino);
        Ok(())
    }

    /// Makes the `user.*` xattrs of `ino` exactly `want` (others are left alone).
    fn set_xattrs(&mut self, ino: Ino, want: &[(Vec<u8>, Vec<u8>)]) -> Result<(), FsError> {
        let have: Vec<(Tag, Xattr)> = self
            .st
            .xattrs(ino)?
            .iter()
            .filter(|(_, x)| x.name.starts_with(SYNCED_XATTR_PREFIX))
            .map(|(t, x)| (*t, x.clone()))
            .collect();
        for (tag, x) in &have {
            if !want.iter().any(|(n, _)| *n == x.name) {
                self.st.set_xattr(ino, *tag, None);
            }
        }
        for (name, value) in want {
            if have
                .iter()
                .any(|(_, x)| x.name == *name && x.value == *value)
            {
                continue;
            }
            let tag = self.core.keys.name_tag(ino, name);
            let x = Xattr {
                name: name.clone(),
                value: value.clone(),
            };
            self.st.set_xattr(ino, tag, Some(x));
        }
        Ok(())
    }

    fn create(&mut self, dir: Ino, name: &[u8], e: &Entry) -> Result<Ino, FsError> {
        let (tag, _) = self.core.entry(self.st, dir, name)?;
        let p = self.st.inode(dir)?;
        let who = Caller {
            uid: p.uid,
            gid: p.gid,
            umask: 0,
        };
        let now = SystemTime::now();
        let ino = self.st.alloc_ino();
        self.moved.push((e.path.clone(), Some(ino)));
        let kind = file_kind(e.kind);
        let mut i = Inode::new(ino, kind, who, e.perm, now);
        if kind == FileKind::Dir {
            i.parent = dir;
            add_links(self.st, dir, 1)?;
        } else {
            i.mtime = e.mtime;
            i.content = e.content;
            i.target = e.target.clone();
        }
        touch_dir(self.st, dir, now)?;
        let d = Dirent {
            name: name.to_vec(),
            ino,
            kind,
        };
        self.st.set_dent(dir, tag, Some(d));
        self.st.insert_inode(i);
        self.set_xattrs(ino, &e.xattrs)?;
        if kind == FileKind::File {
            self.files.push(ino);
        }
        self.changed(dir, name);
        Ok(ino)
    }

    fn remove(
        &mut self,
        (dir, name): (Ino, &[u8]),
        path: &[u8],
        d: &Dirent,
    ) -> Result<(), FsError> {
        self.moved.push((path.to_vec(), None));
        if d.kind == FileKind::Dir && !self.st.dir(d.ino)?.is_empty() {
            return Err(FsError::NotEmpty);
        }
        let (tag, _) = self.core.entry(self.st, dir, name)?;
        let now = SystemTime::now();
        self.st.set_dent(dir, tag, None);
        touch_dir(self.st, dir, now)?;
        unlink_inode(self.st, dir, d.ino, now)?;
        self.report.changed_inodes.push(d.ino);
        self.changed(dir, name);
        Ok(())
    }

    fn changed(&mut self, dir: Ino, name: &[u8]) {
        self.report.changed_entries.push((dir, name.to_vec()));
        self.report.changed_inodes.push(dir);
    }
}

/// The state of a directory created because something below it arrived.
fn implied_dir(path: &[u8]) -> Entry {
    Entry {
        path: path.to_vec(),
        kind: EntryKind::Dir,
        deleted: false,
        perm: IMPLIED_DIR_PERM,
        mtime: SystemTime::UNIX_EPOCH,
        content: Default::default(),
        target: Vec::new(),
        version: Vec::new(),
        author: [0; 32],
        xattrs: Vec::new(),
    }
}
