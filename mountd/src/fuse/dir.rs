//! Namespace operations: creating, linking, renaming, removing and listing entries.
use super::attr::{caller, file_type, kind_from_mode, reply_entry};
use super::errno::errno;
use fossa_fs::{Fs, FsError, RenameMode};
use fuser::{
    Errno, INodeNo, RenameFlags, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, Request,
};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Entries fetched from the core per `readdir` request; the kernel's buffer (usually 4 KiB)
/// rarely holds more, and the next request resumes from the last cookie sent.
const READDIR_BATCH: usize = 128;

/// `mknod`: regular files, fifos, sockets and device nodes.
pub(crate) fn mknod(
    fs: &Fs,
    req: &Request,
    parent: INodeNo,
    name: &OsStr,
    (mode, umask, rdev): (u32, u32, u32),
    reply: ReplyEntry,
) {
    let Some(kind) = kind_from_mode(mode) else {
        return reply.error(Errno::EINVAL);
    };
    let perm = (mode & 0o7777) as u16;
    let who = caller(req, umask);
    let r = fs.mknod(who, parent.0, name.as_bytes(), kind, perm, rdev);
    reply_entry(reply, "mknod", parent.0, r);
}

/// `mkdir`.
pub(crate) fn mkdir(
    fs: &Fs,
    req: &Request,
    parent: INodeNo,
    name: &OsStr,
    (mode, umask): (u32, u32),
    reply: ReplyEntry,
) {
    let r = fs.mkdir(
        caller(req, umask),
        parent.0,
        name.as_bytes(),
        (mode & 0o7777) as u16,
    );
    reply_entry(reply, "mkdir", parent.0, r);
}

/// `symlink`: no umask applies to symlinks.
pub(crate) fn symlink(
    fs: &Fs,
    req: &Request,
    parent: INodeNo,
    name: &OsStr,
    target: &Path,
    reply: ReplyEntry,
) {
    let target = target.as_os_str().as_bytes();
    let r = fs.symlink(caller(req, 0), parent.0, name.as_bytes(), target);
    reply_entry(reply, "symlink", parent.0, r);
}

/// `readlink`.
pub(crate) fn readlink(fs: &Fs, ino: INodeNo, reply: ReplyData) {
    match fs.readlink(ino.0) {
        Ok(t) => reply.data(&t),
        Err(e) => reply.error(errno("readlink", ino.0, e)),
    }
}

/// Replies to an operation with no result.
pub(crate) fn reply_empty(reply: ReplyEmpty, op: &'static str, ino: u64, r: Result<(), FsError>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(op, ino, e)),
    }
}

/// The core's rename mode for the `renameat2` flags; `None` for unsupported combinations.
pub(crate) fn rename_mode(flags: RenameFlags) -> Option<RenameMode> {
    if flags.is_empty() {
        Some(RenameMode::Replace)
    } else if flags == RenameFlags::RENAME_NOREPLACE {
        Some(RenameMode::NoReplace)
    } else if flags == RenameFlags::RENAME_EXCHANGE {
        Some(RenameMode::Exchange)
    } else {
        None
    }
}

/// `rename` / `renameat2`.
pub(crate) fn rename(
    fs: &Fs,
    (parent, name): (INodeNo, &OsStr),
    (new_parent, new_name): (INodeNo, &OsStr),
    flags: RenameFlags,
    reply: ReplyEmpty,
) {
    let Some(mode) = rename_mode(flags) else {
        return reply.error(Errno::EINVAL);
    };
    let r = fs.rename(
        parent.0,
        name.as_bytes(),
        new_parent.0,
        new_name.as_bytes(),
        mode,
    );
    reply_empty(reply, "rename", parent.0, r);
}

/// `link`.
pub(crate) fn link(fs: &Fs, ino: INodeNo, new_parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
    let r = fs.link(ino.0, new_parent.0, name.as_bytes());
    reply_entry(reply, "link", ino.0, r);
}

/// `readdir`: the offset is the cookie of the last entry the kernel received.
pub(crate) fn readdir(fs: &Fs, ino: INodeNo, offset: u64, mut reply: ReplyDirectory) {
    let entries = match fs.readdir(ino.0, offset, READDIR_BATCH) {
        Ok(v) => v,
        Err(e) => return reply.error(errno("readdir", ino.0, e)),
    };
    for e in entries {
        let name = OsStr::from_bytes(&e.name);
        if reply.add(INodeNo(e.ino), e.cookie, file_type(e.kind), name) {
            break; // Buffer full: the kernel asks again from the last cookie added.
        }
    }
    reply.ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_flags_map_to_modes() {
        assert_eq!(rename_mode(RenameFlags::empty()), Some(RenameMode::Replace));
        assert_eq!(
            rename_mode(RenameFlags::RENAME_NOREPLACE),
            Some(RenameMode::NoReplace)
        );
        assert_eq!(
            rename_mode(RenameFlags::RENAME_EXCHANGE),
            Some(RenameMode::Exchange)
        );
        assert_eq!(rename_mode(RenameFlags::RENAME_WHITEOUT), None);
        let both = RenameFlags::RENAME_NOREPLACE | RenameFlags::RENAME_EXCHANGE;
        assert_eq!(rename_mode(both), None);
    }
}
