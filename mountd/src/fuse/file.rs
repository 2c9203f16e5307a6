//! File I/O: open/create, read/write, flush/fsync/release, fallocate.
use super::attr::{caller, file_attr, ttl};
use super::dir::reply_empty;
use super::errno::errno;
use super::remote::{ReadArgs, RemoteReads};
use fossa_fs::{Fs, LocalRead, OpenFlags};
use fuser::{
    Errno, FileHandle, FopenFlags, Generation, INodeNo, ReplyCreate, ReplyData, ReplyEmpty,
    ReplyOpen, ReplyWrite, Request,
};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

/// The open flags the core cares about, from the raw `open(2)` flags.
pub(crate) fn open_flags(raw: i32) -> OpenFlags {
    OpenFlags {
        write: raw & libc::O_ACCMODE != libc::O_RDONLY,
        truncate: raw & libc::O_TRUNC != 0,
        append: raw & libc::O_APPEND != 0,
    }
}

/// The kernel's mode for a new handle: direct I/O for writable handles when the mount uses
/// direct writes (see `FossaFs::direct_writes`), the page cache otherwise.
fn fopen_flags(flags: OpenFlags, direct_writes: bool) -> FopenFlags {
    if direct_writes && flags.write {
        FopenFlags::FOPEN_DIRECT_IO
    } else {
        FopenFlags::empty()
    }
}

/// `open`.
pub(crate) fn open(fs: &Fs, ino: INodeNo, raw_flags: i32, direct_writes: bool, reply: ReplyOpen) {
    let flags = open_flags(raw_flags);
    match fs.open_file(ino.0, flags) {
        Ok(fh) => reply.opened(FileHandle(fh), fopen_flags(flags, direct_writes)),
        Err(e) => reply.error(errno("open", ino.0, e)),
    }
}

/// `create`: makes a regular file and opens it.
pub(crate) fn create(
    fs: &Fs,
    req: &Request,
    parent: INodeNo,
    name: &OsStr,
    (mode, umask, raw_flags, direct_writes): (u32, u32, i32, bool),
    reply: ReplyCreate,
) {
    let who = caller(req, umask);
    let perm = (mode & 0o7777) as u16;
    let flags = open_flags(raw_flags);
    match fs.create(who, parent.0, name.as_bytes(), perm, flags) {
        Ok((a, fh)) => {
            let (ttl, attr) = (ttl(&a), file_attr(&a));
            reply.created(
                &ttl,
                &attr,
                Generation(0),
                FileHandle(fh),
                fopen_flags(flags, direct_writes),
            );
        }
        Err(e) => reply.error(errno("create", parent.0, e)),
    }
}

/// `read`: answered here when every block it needs is local, else handed off (see
/// [`RemoteReads`]) so that this session thread never waits on the network.
pub(crate) fn read(fs: &Fs, remote: &Arc<RemoteReads>, a: ReadArgs, reply: ReplyData) {
    match fs.read_local(a.ino, a.fh, a.offset, a.size) {
        Ok(LocalRead::Data(data)) => reply.data(&data),
        Ok(LocalRead::Missing(ids)) => remote.hand_off(a, ids, reply),
        Err(e) => reply.error(errno("read", a.ino, e)),
    }
}

/// `write`; `kill`: the writer may not keep setuid/setgid/capabilities (see `Fs::kill_privs`).
pub(crate) fn write(
    fs: &Fs,
    ino: INodeNo,
    fh: FileHandle,
    (offset, data, kill): (u64, &[u8], bool),
    reply: ReplyWrite,
) {
    if kill && let Err(e) = fs.kill_privs(ino.0) {
        return reply.error(errno("write", ino.0, e));
    }
    match fs.write(ino.0, fh.0, offset, data) {
        Ok(n) => reply.written(n),
        Err(e) => reply.error(errno("write", ino.0, e)),
    }
}

/// `flush` (on every `close` of a descriptor; `close` waits for the answer). Stores the
/// file's buffered writes and soft-commits the metadata (`Fs::flush`), so that a `sync(1)`
/// after the `close` makes the file durable: the kernel does not pass `sync`/`syncfs` on to
/// a FUSE daemon (docs/ARCHITECTURE.md, "What `close`, `sync` and `fsync` guarantee"). A
/// file that cannot be stored fails its `close` with ENOSPC.
pub(crate) fn flush(fs: &Fs, ino: INodeNo, fh: FileHandle, reply: ReplyEmpty) {
    reply_empty(reply, "flush", ino.0, fs.flush(ino.0, fh.0));
}

/// `fsync`.
pub(crate) fn fsync(fs: &Fs, ino: INodeNo, fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
    reply_empty(reply, "fsync", ino.0, fs.fsync(ino.0, Some(fh.0), datasync));
}

/// `release` (the last descriptor of an open file is gone).
pub(crate) fn release(fs: &Fs, ino: INodeNo, fh: FileHandle, reply: ReplyEmpty) {
    reply_empty(reply, "release", ino.0, fs.release(ino.0, fh.0));
}

/// `fallocate`: plain allocation and `FALLOC_FL_KEEP_SIZE` (a hole, nothing to reserve),
/// `FALLOC_FL_PUNCH_HOLE` (always with KEEP_SIZE, as the kernel requires) and
/// `FALLOC_FL_ZERO_RANGE` (a hole too); other modes (collapse, insert, unshare) are refused.
/// `kill`: the caller is not root, so setuid/setgid/capabilities go (as on a write).
pub(crate) fn fallocate(
    fs: &Fs,
    ino: INodeNo,
    fh: FileHandle,
    (offset, len, mode, kill): (u64, u64, i32, bool),
    reply: ReplyEmpty,
) {
    const KEEP: i32 = libc::FALLOC_FL_KEEP_SIZE;
    const PUNCH: i32 = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    const ZERO: i32 = libc::FALLOC_FL_ZERO_RANGE;
    if ![0, KEEP, PUNCH, ZERO, ZERO | KEEP].contains(&mode) {
        return reply.error(Errno::from_i32(libc::EOPNOTSUPP));
    }
    if kill && let Err(e) = fs.kill_privs(ino.0) {
        return reply.error(errno("fallocate", ino.0, e));
    }
    let keep_size = mode & KEEP != 0;
    let r = match mode {
        PUNCH => fs.punch_hole(ino.0, fh.0, offset, len),
        m if m & ZERO != 0 => fs.zero_range(ino.0, fh.0, (offset, len), keep_size),
        _ => fs.fallocate(ino.0, fh.0, offset, len, keep_size),
    };
    reply_empty(reply, "fallocate", ino.0, r);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_decode() {
        assert_eq!(open_flags(libc::O_RDONLY), OpenFlags::default());
        let f = open_flags(libc::O_WRONLY | libc::O_TRUNC);
        assert!(f.write && f.truncate && !f.append);
        let f = open_flags(libc::O_RDWR | libc::O_APPEND);
        assert!(f.write && !f.truncate && f.append);
    }
}
