//! Attribute conversions, the cache-lifetime policy, and getattr/setattr/statfs.
use super::errno::errno;
use fossa_fs::{Attr, Caller, FileKind, Fs, FsError, SetAttr, TimeSet};
use fuser::{
    FileAttr, FileHandle, FileType, Generation, INodeNo, ReplyAttr, ReplyEntry, ReplyStatfs,
    Request, TimeOrNow,
};
use std::time::{Duration, SystemTime};

/// How long the kernel may cache attributes and entries.
const TTL: Duration = Duration::from_secs(1);

/// Cache lifetime for `a`: none for non-directories with several links, whose `nlink` and
/// `ctime` change through other names (the kernel served stale values otherwise, see
/// PLATFORM-NOTES.md); one second for everything else.
pub(crate) fn ttl(a: &Attr) -> Duration {
    if a.kind != FileKind::Dir && a.nlink > 1 {
        Duration::ZERO
    } else {
        TTL
    }
}

/// fuser's view of `a`.
pub(crate) fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.crtime,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: 4096,
        flags: 0,
    }
}

/// fuser's file type for `k`.
pub(crate) fn file_type(k: FileKind) -> FileType {
    match k {
        FileKind::File => FileType::RegularFile,
        FileKind::Dir => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::Socket => FileType::Socket,
        FileKind::CharDev => FileType::CharDevice,
        FileKind::BlockDev => FileType::BlockDevice,
    }
}

/// The kind encoded in the `S_IFMT` bits of `mode`.
pub(crate) fn kind_from_mode(mode: u32) -> Option<FileKind> {
    Some(match mode & libc::S_IFMT {
        libc::S_IFREG => FileKind::File,
        libc::S_IFDIR => FileKind::Dir,
        libc::S_IFLNK => FileKind::Symlink,
        libc::S_IFIFO => FileKind::Fifo,
        libc::S_IFSOCK => FileKind::Socket,
        libc::S_IFCHR => FileKind::CharDev,
        libc::S_IFBLK => FileKind::BlockDev,
        _ => return None,
    })
}

/// The caller of `req`, for ownership and mode of new inodes.
pub(crate) fn caller(req: &Request, umask: u32) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
        umask: (umask & 0o777) as u16,
    }
}

/// Replies to an entry-creating operation (`op` on inode `ino`).
pub(crate) fn reply_entry(reply: ReplyEntry, op: &'static str, ino: u64, r: Result<Attr, FsError>) {
    match r {
        Ok(a) => reply.entry(&ttl(&a), &file_attr(&a), Generation(0)),
        Err(e) => reply.error(errno(op, ino, e)),
    }
}

/// Replies with attributes.
pub(crate) fn reply_attr(reply: ReplyAttr, op: &'static str, ino: u64, r: Result<Attr, FsError>) {
    match r {
        Ok(a) => reply.attr(&ttl(&a), &file_attr(&a)),
        Err(e) => reply.error(errno(op, ino, e)),
    }
}

/// The fields of a FUSE setattr that fossa stores (BSD flags and macOS times are ignored).
pub(crate) struct SetAttrArgs {
    pub(crate) mode: Option<u32>,
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) size: Option<u64>,
    pub(crate) atime: Option<TimeOrNow>,
    pub(crate) mtime: Option<TimeOrNow>,
    pub(crate) ctime: Option<SystemTime>,
    pub(crate) fh: Option<FileHandle>,
}

/// `setattr`: chmod, chown, truncate (through the handle when given), utimens.
///
/// With `FUSE_HANDLE_KILLPRIV_V2` the kernel leaves dropping setuid/setgid/capabilities to
/// us: on a change of owner or group always (as Linux does, for root too), on a truncate
/// when the caller lacks CAP_FSETID. fuser does not pass the kernel's `FATTR_KILL_SUIDGID`
/// flag, so "not root" (`privileged` false) stands in for that.
pub(crate) fn setattr(fs: &Fs, ino: INodeNo, a: SetAttrArgs, privileged: bool, reply: ReplyAttr) {
    let chown = (a.uid.is_some() || a.gid.is_some()) && a.mode.is_none();
    let truncate = a.size.is_some() && !privileged;
    if (chown || truncate)
        && let Err(e) = fs.kill_privs(ino.0)
    {
        return reply.error(errno("setattr", ino.0, e));
    }
    let time = |t: TimeOrNow| match t {
        TimeOrNow::Now => TimeSet::Now,
        TimeOrNow::SpecificTime(t) => TimeSet::At(t),
    };
    let set = SetAttr {
        perm: a.mode.map(|m| (m & 0o7777) as u16),
        uid: a.uid,
        gid: a.gid,
        size: a.size,
        atime: a.atime.map(time),
        mtime: a.mtime.map(time),
        ctime: a.ctime,
    };
    reply_attr(
        reply,
        "setattr",
        ino.0,
        fs.setattr(ino.0, &set, a.fh.map(|f| f.0)),
    );
}

/// `statfs`.
pub(crate) fn statfs(fs: &Fs, reply: ReplyStatfs) {
    match fs.statfs() {
        Ok(s) => reply.statfs(
            s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.bsize,
        ),
        Err(e) => reply.error(errno("statfs", 1, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn attr(kind: FileKind, nlink: u32) -> Attr {
        Attr {
            ino: 5,
            kind,
            size: 3,
            blocks: 1,
            perm: 0o644,
            nlink,
            uid: 1,
            gid: 2,
            rdev: 0,
            atime: UNIX_EPOCH,
            mtime: UNIX_EPOCH,
            ctime: UNIX_EPOCH,
            crtime: UNIX_EPOCH,
        }
    }

    #[test]
    fn hard_linked_files_are_not_cached() {
        assert_eq!(ttl(&attr(FileKind::File, 1)), TTL);
        assert_eq!(ttl(&attr(FileKind::File, 2)), Duration::ZERO);
        assert_eq!(ttl(&attr(FileKind::Dir, 5)), TTL);
    }

    #[test]
    fn modes_and_kinds_convert() {
        assert_eq!(kind_from_mode(libc::S_IFIFO | 0o644), Some(FileKind::Fifo));
        assert_eq!(kind_from_mode(libc::S_IFCHR), Some(FileKind::CharDev));
        assert_eq!(kind_from_mode(0o644), None);
        let fa = file_attr(&attr(FileKind::Symlink, 1));
        assert_eq!(fa.kind, FileType::Symlink);
        assert_eq!((fa.ino, fa.perm, fa.uid, fa.gid), (INodeNo(5), 0o644, 1, 2));
    }
}
