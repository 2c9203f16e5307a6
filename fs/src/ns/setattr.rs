//! `setattr`, `readlink` and `fallocate`: changes to one inode.
use super::dir::attr_of;
use crate::FsError;
use crate::attr::{Attr, FileKind, Ino, SetAttr, TimeSet};
use crate::core::Core;
use crate::write::punch_data;
use crate::write::{flush_data, size_of};
use std::time::SystemTime;

fn resolve(t: TimeSet, now: SystemTime) -> SystemTime {
    match t {
        TimeSet::Now => now,
        TimeSet::At(t) => t,
    }
}

impl Core {
    /// `setattr`: chmod, chown, truncate, utimens; ctime becomes now unless given.
    pub(crate) fn setattr(&self, ino: Ino, set: &SetAttr) -> Result<Attr, FsError> {
        let mut st = self.st.lock();
        let now = SystemTime::now();
        if let Some(size) = set.size {
            match st.inode(ino)?.kind {
                FileKind::File => {}
                FileKind::Dir => return Err(FsError::IsDir),
                _ => return Err(FsError::Invalid("truncate of a special file")),
            }
            flush_data(&self.engine, &mut st, ino, Some(size))?;
            st.inode_mut(ino)?.touch_mtime(now);
        }
        let i = st.inode_mut(ino)?;
        if let Some(p) = set.perm {
            i.perm = p & 0o7777;
        }
        if let Some(u) = set.uid {
            i.uid = u;
        }
        if let Some(g) = set.gid {
            i.gid = g;
        }
        if let Some(t) = set.atime {
            i.atime = resolve(t, now);
        }
        if let Some(t) = set.mtime {
            i.mtime = resolve(t, now);
        }
        i.ctime = set.ctime.unwrap_or(now);
        attr_of(&mut st, ino)
    }

    /// `readlink`.
    pub(crate) fn readlink(&self, ino: Ino) -> Result<Vec<u8>, FsError> {
        let mut st = self.st.lock();
        let i = st.inode(ino)?;
        if i.kind != FileKind::Symlink {
            return Err(FsError::Invalid("not a symlink"));
        }
        Ok(i.target.clone())
    }

    /// `fallocate` modes 0 and KEEP_SIZE: extends the size with a hole (no preallocation:
    /// blocks are content-addressed, so there is nothing to reserve).
    pub(crate) fn fallocate(
        &self,
        ino: Ino,
        fh: u64,
        end: u64,
        keep_size: bool,
    ) -> Result<(), FsError> {
        let mut st = self.st.lock();
        st.files.handle(ino, fh)?;
        if keep_size || end <= size_of(&mut st, ino)? {
            return Ok(());
        }
        flush_data(&self.engine, &mut st, ino, Some(end))?;
        st.inode_mut(ino)?.ctime = SystemTime::now();
        Ok(())
    }

    /// `fallocate` PUNCH_HOLE and ZERO_RANGE: bytes `a..b` (clipped to the size) become a
    /// hole; without `keep_size` (ZERO_RANGE only) a range past the end grows the file to
    /// `b`, the new part a hole too.
    pub(crate) fn punch(
        &self,
        ino: Ino,
        fh: u64,
        (a, b): (u64, u64),
        keep_size: bool,
    ) -> Result<(), FsError> {
        let mut st = self.st.lock();
        st.files.handle(ino, fh)?;
        let size = size_of(&mut st, ino)?;
        if a < b.min(size) {
            punch_data(&self.engine, &mut st, ino, (a, b.min(size)))?;
        }
        if !keep_size && b > size {
            flush_data(&self.engine, &mut st, ino, Some(b))?;
        }
        st.inode_mut(ino)?.touch_mtime(SystemTime::now());
        Ok(())
    }
}
