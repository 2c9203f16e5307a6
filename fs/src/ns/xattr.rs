//! Extended attributes, indexed by `name_tag(ino, name)`.
use crate::FsError;
use crate::attr::{FileKind, Ino, XattrMode};
use crate::core::Core;
use crate::format::Xattr;
use crate::write::State;
use std::time::SystemTime;

/// Longest xattr name (Linux XATTR_NAME_MAX).
const XATTR_NAME_MAX: usize = 255;
/// Largest xattr value (Linux XATTR_SIZE_MAX).
const XATTR_SIZE_MAX: usize = 64 << 10;

/// A file capability: executing the file grants these capabilities.
pub(crate) const CAPABILITY_XATTR: &[u8] = b"security.capability";

/// POSIX ACLs travel as `system.posix_acl_*` xattrs; fossa does not implement ACLs.
fn is_posix_acl(name: &[u8]) -> bool {
    name.starts_with(b"system.posix_acl_")
}

impl Core {
    /// `setxattr` with create/replace semantics.
    pub(crate) fn setxattr(
        &self,
        ino: Ino,
        name: &[u8],
        value: &[u8],
        mode: XattrMode,
    ) -> Result<(), FsError> {
        if name.is_empty() || name.len() > XATTR_NAME_MAX {
            return Err(FsError::Range);
        }
        if value.len() > XATTR_SIZE_MAX {
            return Err(FsError::TooBig);
        }
        // A level is stored in canonical form (`" 2"`, `02` → `2`), so every reader and every
        // device sees one spelling.
        let level = if name == crate::redundancy::REDUNDANCY_XATTR {
            Some(crate::redundancy::parse_level(value)?.to_string())
        } else {
            None
        };
        let value = level.as_ref().map_or(value, |l| l.as_bytes());
        if is_posix_acl(name) {
            // Stored as a plain xattr, an ACL would not change the mode the kernel checks; refusing
            // it makes `cp -a`/`rsync -A` fall back to chmod, as on filesystems without ACLs.
            return Err(FsError::NotSupported);
        }
        let mut st = self.st.lock();
        let kind = st.inode(ino)?.kind;
        if level.is_some() && kind != FileKind::Dir {
            // Levels are set on directories (docs/redundancy.md); `fossa redundancy` refuses a
            // file the same way.
            return Err(FsError::NotDir);
        }
        let tag = self.keys.name_tag(ino, name);
        let exists = st.xattrs(ino)?.contains_key(&tag);
        match (mode, exists) {
            (XattrMode::Create, true) => return Err(FsError::Exists),
            (XattrMode::Replace, false) => return Err(FsError::NoAttr),
            _ => {}
        }
        let x = Xattr {
            name: name.to_vec(),
            value: value.to_vec(),
        };
        st.set_xattr(ino, tag, Some(x));
        st.inode_mut(ino)?.ctime = SystemTime::now();
        Ok(())
    }

    /// `getxattr`.
    pub(crate) fn getxattr(&self, ino: Ino, name: &[u8]) -> Result<Vec<u8>, FsError> {
        let mut st = self.st.lock();
        st.inode(ino)?;
        let tag = self.keys.name_tag(ino, name);
        let x = st.xattrs(ino)?.get(&tag).ok_or(FsError::NoAttr)?;
        Ok(x.value.clone())
    }

    /// `listxattr`: names in tag order.
    pub(crate) fn listxattr(&self, ino: Ino) -> Result<Vec<Vec<u8>>, FsError> {
        let mut st = self.st.lock();
        st.inode(ino)?;
        Ok(st.xattrs(ino)?.values().map(|x| x.name.clone()).collect())
    }

    /// Drops `ino`'s file capability (`security.capability`) because it is being written.
    /// Linux's VFS does this on every write, by root too (`file_remove_privs`), but the FUSE
    /// kernel module skips that step for direct-I/O handles, so the fs layer does it. Most
    /// files have no xattrs at all: that costs one lookup of the in-memory map.
    pub(crate) fn write_drops_capability(&self, st: &mut State, ino: Ino) -> Result<(), FsError> {
        if st.xattrs(ino)?.is_empty() {
            return Ok(());
        }
        self.drop_xattr(st, ino, CAPABILITY_XATTR).map(|_| ())
    }

    /// `removexattr`.
    pub(crate) fn removexattr(&self, ino: Ino, name: &[u8]) -> Result<(), FsError> {
        let mut st = self.st.lock();
        st.inode(ino)?;
        match self.drop_xattr(&mut st, ino, name)? {
            true => Ok(()),
            false => Err(FsError::NoAttr),
        }
    }

    /// Removes xattr `name` of `ino` (touching ctime) under the held state lock; whether it
    /// was there.
    fn drop_xattr(&self, st: &mut State, ino: Ino, name: &[u8]) -> Result<bool, FsError> {
        let tag = self.keys.name_tag(ino, name);
        if !st.xattrs(ino)?.contains_key(&tag) {
            return Ok(false);
        }
        st.set_xattr(ino, tag, None);
        st.inode_mut(ino)?.ctime = SystemTime::now();
        Ok(true)
    }
}
