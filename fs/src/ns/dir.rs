//! Namespace operations: lookup, creation of nodes, links, removal, readdir.
use crate::FsError;
use crate::attr::{Attr, Caller, DirEntry, FileKind, Ino};
use crate::core::Core;
use crate::format::Dirent;
use crate::format::Inode;
use crate::meta::Tag;
use crate::write::State;
use crate::write::size_of;
use std::time::SystemTime;

/// Longest name accepted.
pub(crate) const NAME_MAX: usize = 255;

/// Rejects names no directory entry may have.
pub(crate) fn check_name(name: &[u8]) -> Result<(), FsError> {
    if name.len() > NAME_MAX {
        return Err(FsError::NameTooLong);
    }
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(FsError::Invalid("bad name"));
    }
    if name == b"." || name == b".." {
        return Err(FsError::Exists);
    }
    Ok(())
}

/// Attributes of `ino` with its logical size.
pub(crate) fn attr_of(st: &mut State, ino: Ino) -> Result<Attr, FsError> {
    let size = size_of(st, ino)?;
    Ok(st.inode(ino)?.attr(size))
}

/// Updates mtime and ctime of a directory whose entries changed.
pub(crate) fn touch_dir(st: &mut State, dir: Ino, now: SystemTime) -> Result<(), FsError> {
    st.inode_mut(dir)?.touch_mtime(now);
    Ok(())
}

/// Adds `delta` to the link count of `ino`.
pub(crate) fn add_links(st: &mut State, ino: Ino, delta: i32) -> Result<(), FsError> {
    let i = st.inode_mut(ino)?;
    i.nlink = i.nlink.saturating_add_signed(delta);
    Ok(())
}

/// Drops the inode if its last link is gone and no handle holds it.
pub(crate) fn reap(st: &mut State, ino: Ino) -> Result<(), FsError> {
    if st.inode(ino)?.nlink == 0 && !st.files.is_open(ino) {
        st.forget(ino)?;
    }
    Ok(())
}

impl Core {
    /// The tag and entry `name` in directory `dir` (which must be a directory).
    pub(crate) fn entry(
        &self,
        st: &mut State,
        dir: Ino,
        name: &[u8],
    ) -> Result<(Tag, Option<Dirent>), FsError> {
        if st.inode(dir)?.kind != FileKind::Dir {
            return Err(FsError::NotDir);
        }
        if name.len() > NAME_MAX {
            return Err(FsError::NameTooLong);
        }
        let tag = self.keys.name_tag(dir, name);
        Ok((tag, st.dir(dir)?.get(&tag).cloned()))
    }

    /// `lookup`, including `.` and `..`.
    pub(crate) fn lookup(&self, parent: Ino, name: &[u8]) -> Result<Attr, FsError> {
        let mut st = self.st.lock();
        let (_, e) = self.entry(&mut st, parent, name)?;
        let ino = match (name, e) {
            (b".", _) => parent,
            (b"..", _) => st.inode(parent)?.parent,
            (_, Some(e)) => e.ino,
            (_, None) => return Err(FsError::NotFound),
        };
        attr_of(&mut st, ino)
    }

    /// Creates a node of any kind; `fill` sets kind-specific fields.
    pub(crate) fn make(
        &self,
        who: Caller,
        parent: Ino,
        name: &[u8],
        (kind, perm): (FileKind, u16),
        fill: impl FnOnce(&mut Inode),
    ) -> Result<Attr, FsError> {
        check_name(name)?;
        let mut st = self.st.lock();
        let (tag, e) = self.entry(&mut st, parent, name)?;
        if e.is_some() {
            return Err(FsError::Exists);
        }
        let now = SystemTime::now();
        let ino = st.alloc_ino();
        let mut i = Inode::new(ino, kind, who, perm, now);
        let p = st.inode_mut(parent)?;
        if p.perm & 0o2000 != 0 {
            // BSD/SysV setgid directories: new entries take the directory's group.
            i.gid = p.gid;
            if kind == FileKind::Dir {
                i.perm |= 0o2000;
            }
        }
        if kind == FileKind::Dir {
            i.parent = parent;
            p.nlink += 1;
        }
        p.touch_mtime(now);
        fill(&mut i);
        let name = name.to_vec();
        st.set_dent(parent, tag, Some(Dirent { name, ino, kind }));
        st.insert_inode(i);
        attr_of(&mut st, ino)
    }

    /// `link`: a new name for a non-directory.
    pub(crate) fn link(&self, ino: Ino, dir: Ino, name: &[u8]) -> Result<Attr, FsError> {
        check_name(name)?;
        let mut st = self.st.lock();
        let (tag, e) = self.entry(&mut st, dir, name)?;
        let i = st.inode(ino)?;
        if i.kind == FileKind::Dir {
            return Err(FsError::NotPermitted);
        }
        if i.nlink == 0 {
            return Err(FsError::NotFound);
        }
        if e.is_some() {
            return Err(FsError::Exists);
        }
        let kind = i.kind;
        let now = SystemTime::now();
        let i = st.inode_mut(ino)?;
        i.nlink = i.nlink.checked_add(1).ok_or(FsError::TooManyLinks)?;
        i.ctime = now;
        st.set_dent(
            dir,
            tag,
            Some(Dirent {
                name: name.to_vec(),
                ino,
                kind,
            }),
        );
        touch_dir(&mut st, dir, now)?;
        attr_of(&mut st, ino)
    }

    /// `unlink` (`dir = false`) or `rmdir` (`dir = true`).
    pub(crate) fn remove(&self, parent: Ino, name: &[u8], dir: bool) -> Result<(), FsError> {
        match (name, dir) {
            (b".", true) => return Err(FsError::Invalid("rmdir .")),
            (b"..", true) => return Err(FsError::NotEmpty),
            (b"." | b"..", false) => return Err(FsError::IsDir),
            _ => {}
        }
        let mut st = self.st.lock();
        let (tag, e) = self.entry(&mut st, parent, name)?;
        let e = e.ok_or(FsError::NotFound)?;
        match (e.kind == FileKind::Dir, dir) {
            (true, false) => return Err(FsError::IsDir),
            (false, true) => return Err(FsError::NotDir),
            (true, true) if !st.dir(e.ino)?.is_empty() => return Err(FsError::NotEmpty),
            _ => {}
        }
        let now = SystemTime::now();
        st.set_dent(parent, tag, None);
        touch_dir(&mut st, parent, now)?;
        unlink_inode(&mut st, parent, e.ino, now)
    }

    /// `readdir`: `.` (cookie 1), `..` (cookie 2), then entries in tag order with cookies
    /// derived from their tags, so that removals between calls neither skip nor repeat.
    pub(crate) fn readdir(
        &self,
        ino: Ino,
        after: u64,
        max: usize,
    ) -> Result<Vec<DirEntry>, FsError> {
        let mut st = self.st.lock();
        let i = st.inode(ino)?;
        if i.kind != FileKind::Dir {
            return Err(FsError::NotDir);
        }
        let parent = i.parent;
        let mut out = Vec::new();
        for (c, n, x) in [(1, &b"."[..], ino), (2, &b".."[..], parent)] {
            if after < c {
                out.push(DirEntry {
                    ino: x,
                    cookie: c,
                    kind: FileKind::Dir,
                    name: n.to_vec(),
                });
            }
        }
        if after == u64::MAX {
            return Ok(Vec::new());
        }
        let start = if after <= 2 {
            [0; 32]
        } else {
            tag_floor(after + 1)
        };
        for (tag, d) in st.dir(ino)?.range(start..) {
            let cookie = cookie_of(tag);
            out.push(DirEntry {
                ino: d.ino,
                cookie,
                kind: d.kind,
                name: d.name.clone(),
            });
            if out.len() >= max {
                break;
            }
        }
        out.truncate(max);
        Ok(out)
    }
}

/// Drops one link of `ino` (just removed from `parent`): directories lose all.
pub(crate) fn unlink_inode(
    st: &mut State,
    parent: Ino,
    ino: Ino,
    now: SystemTime,
) -> Result<(), FsError> {
    let i = st.inode_mut(ino)?;
    i.ctime = now;
    if i.kind == FileKind::Dir {
        i.nlink = 0;
        add_links(st, parent, -1)?;
    } else {
        i.nlink = i.nlink.saturating_sub(1);
    }
    reap(st, ino)
}

/// The readdir cookie of a tag: its first 8 bytes read big-endian (so cookie order is tag
/// order), never below 3.
pub(crate) fn cookie_of(tag: &Tag) -> u64 {
    tag[..8]
        .iter()
        .fold(0u64, |a, b| (a << 8) | u64::from(*b))
        .max(3)
}

/// The smallest tag whose cookie is at least `c`.
fn tag_floor(c: u64) -> Tag {
    let mut t = [0u8; 32];
    for (k, b) in t[..8].iter_mut().enumerate() {
        *b = (c >> (56 - 8 * k)) as u8;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_follow_tag_order() {
        let mut a = [0u8; 32];
        a[0] = 0x12;
        a[7] = 0x34;
        let c = cookie_of(&a);
        assert_eq!(c, 0x1200_0000_0000_0034);
        assert_eq!(tag_floor(c)[..8], a[..8]);
        assert!(tag_floor(c + 1) > a);
        assert!(check_name(&[b'a'; 256]).is_err());
        assert!(check_name(b"a/b").is_err());
        assert!(check_name(b"ok").is_ok());
    }
}
