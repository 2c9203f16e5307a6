//! The FUSE adapter: a thin `fuser::Filesystem` over [`fossa_fs::Fs`]. Each callback decodes
//! its arguments, calls the core, maps errors in one place ([`errno`]) and replies.
//!
//! Choices: entries and attributes are cached 1 s, except non-directories with nlink > 1
//! (0 s, see [`attr::ttl`]); writes up to 1 MiB per request; 4 worker threads, each with its
//! own `/dev/fuse` descriptor (`clone_fd`), so a slow fsync does not stall lookups; the kernel
//! checks permissions (`default_permissions`), so `access` always succeeds. No session thread
//! waits on the network: a read that needs blocks from peers is handed off ([`remote`]).
mod attr;
mod dir;
mod errno;
mod file;
mod remote;
mod xattr;

use fossa_fs::Fs;
use fuser::{
    AccessFlags, Config, Errno, FileHandle, INodeNo, IoctlFlags, KernelConfig, LockOwner,
    MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request,
    Session, SessionACL, TimeOrNow, WriteFlags,
};
use remote::ReadArgs;
pub(crate) use remote::RemoteReads;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

/// Largest write the kernel sends in one request (the kernel caps at 256 pages by default).
const MAX_WRITE: u32 = 1 << 20;
/// Session threads reading `/dev/fuse`.
const THREADS: usize = 4;
/// Background requests (read-ahead, mostly) the kernel keeps outstanding before it queues
/// more. Reads waiting on a frozen peer hold their slots until the deadline; with fuser's 16,
/// sixteen of them made every other buffered read of the mount queue behind them.
const MAX_BACKGROUND: u16 = 256;
/// Outstanding background requests at which the kernel stops issuing async read-ahead.
const CONGESTION: u16 = 192;

/// How to mount.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MountOpts {
    /// Mount read-only.
    pub(crate) read_only: bool,
    /// Let other users (and root) access the mount.
    pub(crate) allow_other: bool,
    /// Writable handles go through the kernel's page cache (FUSE write-through) instead of
    /// direct I/O (see [`FossaFs::direct_writes`]).
    pub(crate) cached_writes: bool,
}

/// Mounts `fs` at `dir`; the returned session serves it when run. Reads that need blocks
/// from peers go to `remote`.
pub(crate) fn mount(
    fs: Arc<Fs>,
    remote: Arc<RemoteReads>,
    dir: &Path,
    opts: MountOpts,
) -> std::io::Result<Session<FossaFs>> {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("fossa".into()),
        MountOption::Subtype("fossa".into()),
        MountOption::DefaultPermissions,
        if opts.read_only {
            MountOption::RO
        } else {
            MountOption::RW
        },
    ];
    if opts.allow_other {
        config.acl = SessionACL::All;
    }
    config.n_threads = Some(THREADS);
    config.clone_fd = true;
    // Resolved before mounting: afterwards resolving the path would ask this unserved mount.
    let abs = crate::mountinfo::resolve(dir).unwrap_or_else(|_| dir.to_path_buf());
    let fossa = FossaFs {
        fs,
        remote,
        direct_writes: false,
        want_direct_writes: !opts.cached_writes,
    };
    let session = Session::new(fossa, dir, &config)?;
    if let Err(e) = raise_readahead(&abs) {
        tracing::debug!(error = %e, "could not raise the mount's read-ahead");
    }
    Ok(session)
}

/// Kernel read-ahead we ask for, in KiB. FUSE's INIT can only lower the 128 KiB default, and
/// 128 KiB requests cost a round trip per two chunks. Requests stay at most `MAX_WRITE`; a
/// window of several lets the kernel keep more than one in flight for a sequential reader, so
/// several session threads serve it at once.
const READ_AHEAD_KB: u32 = 4096;

/// Raises the read-ahead of the mount at `dir` (canonical) through its device's sysfs knob
/// (root only; others keep the default). Finds the device in `/proc/self/mountinfo` rather
/// than by `stat`, which would be a request to this not yet served mount.
fn raise_readahead(dir: &Path) -> std::io::Result<()> {
    let m = crate::mountinfo::mount_at(dir)?
        .ok_or_else(|| std::io::Error::other("mount not found in mountinfo"))?;
    let knob = format!("/sys/class/bdi/{}/read_ahead_kb", m.dev);
    std::fs::write(knob, READ_AHEAD_KB.to_string())
}

/// The `fuser::Filesystem` of a fossa volume.
pub(crate) struct FossaFs {
    fs: Arc<Fs>,
    /// Where reads that need the network are handed off.
    remote: Arc<RemoteReads>,
    /// Handles opened for writing are direct I/O (`FOPEN_DIRECT_IO`): a write's bytes go from
    /// the writer's pages into the request, not first into page-cache pages the kernel then
    /// copies again, and the written data is not cached twice (the page cache and the
    /// daemon's buffers). That copy and its page allocation were ~8% of the machine in a
    /// 1 GiB sequential write, and sequential writes ran 8% faster without them. Reads through
    /// such a handle come from the daemon (its chunk cache and read-ahead); read-only handles
    /// keep the page cache. Only with `FUSE_DIRECT_IO_ALLOW_MMAP` (Linux 6.6): without it a
    /// shared mapping of a direct-I/O file fails, and the kernel would not drop cached pages
    /// of other handles on a direct write. Set at INIT.
    direct_writes: bool,
    /// Whether to ask for direct writes (`--cached-writes` turns them off).
    want_direct_writes: bool,
}

impl fuser::Filesystem for FossaFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // fuser asks for 16 MiB; the kernel would clamp, but say what we mean.
        if let Err(nearest) = config.set_max_write(MAX_WRITE) {
            let _ = config.set_max_write(nearest);
        }
        let _ = config.set_max_readahead(MAX_WRITE);
        let _ = config.set_max_background(MAX_BACKGROUND);
        let _ = config.set_congestion_threshold(CONGESTION);
        // We drop setuid/setgid/file capabilities on write, truncate and chown ourselves
        // (`kill_privs`). Without this the kernel asks `getxattr("security.capability")`
        // before every write, a synchronous round trip: 4 KiB random writes ran at 26k IOPS
        // with it and 34.5k without.
        let _ = config.add_capabilities(fuser::InitFlags::FUSE_HANDLE_KILLPRIV_V2);
        self.direct_writes = self.want_direct_writes
            && config
                .add_capabilities(fuser::InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP)
                .is_ok();
        tracing::debug!(
            direct_writes = self.direct_writes,
            "FUSE session initialized"
        );
        Ok(())
    }

    fn destroy(&mut self) {
        if let Err(e) = self.fs.sync() {
            tracing::error!(error = %e, "sync at unmount failed");
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let r = self.fs.lookup(parent.0, name.as_bytes());
        attr::reply_entry(reply, "lookup", parent.0, r);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        attr::reply_attr(reply, "getattr", ino.0, self.fs.getattr(ino.0));
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let (mode, uid, gid, size) = (mode, uid, gid, size);
        let args = attr::SetAttrArgs {
            mode,
            uid,
            gid,
            size,
            atime,
            mtime,
            ctime,
            fh,
        };
        attr::setattr(&self.fs, ino, args, req.uid() == 0, reply);
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        dir::readlink(&self.fs, ino, reply);
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        dir::mknod(&self.fs, req, parent, name, (mode, umask, rdev), reply);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        dir::mkdir(&self.fs, req, parent, name, (mode, umask), reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.fs.unlink(parent.0, name.as_bytes());
        dir::reply_empty(reply, "unlink", parent.0, r);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = self.fs.rmdir(parent.0, name.as_bytes());
        dir::reply_empty(reply, "rmdir", parent.0, r);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        dir::symlink(&self.fs, req, parent, link_name, target, reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        dir::rename(&self.fs, (parent, name), (newparent, newname), flags, reply);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        dir::link(&self.fs, ino, newparent, newname, reply);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        file::open(&self.fs, ino, flags.0, self.direct_writes, reply);
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let (ino, fh, pid) = (ino.0, fh.0, req.pid());
        let args = ReadArgs {
            ino,
            fh,
            offset,
            size,
            pid,
        };
        file::read(&self.fs, &self.remote, args, reply);
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        // Set by the kernel when the writer lacks CAP_FSETID (FUSE_HANDLE_KILLPRIV_V2).
        let kill = write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID);
        file::write(&self.fs, ino, fh, (offset, data, kill), reply);
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        file::flush(&self.fs, ino, fh, reply);
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        file::release(&self.fs, ino, fh, reply);
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, fh: FileHandle, ds: bool, reply: ReplyEmpty) {
        file::fsync(&self.fs, ino, fh, ds, reply);
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // Stateless: readdir resumes from cookies, so no handle is needed.
        reply.opened(FileHandle(0), fuser::FopenFlags::empty());
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        dir::readdir(&self.fs, ino, offset, reply);
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, ds: bool, reply: ReplyEmpty) {
        // Directory changes are metadata: fsync of the directory inode makes them durable.
        dir::reply_empty(reply, "fsyncdir", ino.0, self.fs.fsync(ino.0, None, ds));
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        attr::statfs(&self.fs, reply);
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        position: u32,
        reply: ReplyEmpty,
    ) {
        xattr::setxattr(&self.fs, ino, name, value, (flags, position), reply);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        xattr::getxattr(&self.fs, ino, name, size, reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        xattr::listxattr(&self.fs, ino, size, reply);
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        xattr::removexattr(&self.fs, ino, name, reply);
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let direct = self.direct_writes;
        file::create(
            &self.fs,
            req,
            parent,
            name,
            (mode, umask, flags, direct),
            reply,
        );
    }

    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        // No ioctl is supported. ENOTTY is what a regular file answers to a terminal ioctl, and
        // `isatty()` sends one (TCGETS) for every file a program probes: no log line per call.
        reply.error(Errno::from_i32(libc::ENOTTY));
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let kill = req.uid() != 0;
        file::fallocate(&self.fs, ino, fh, (offset, length, mode, kill), reply);
    }
}
