//! The `Fs` handle: every filesystem operation, on `&self`, returning `Result<_, FsError>`.
//!
//! Signatures are fixed (mountd's FUSE adapter is written against them). This file only
//! routes: the live tree goes to [`Core`] (dir, rename, handles, setattr, xattr), the
//! read-only `.snapshots` tree to the snapshot view; the background flusher and the
//! writeback thread (see `writeback`) are owned here.
use crate::FsError;
use crate::attr::*;
use crate::core::Core;
use crate::core::FsOptions;
use crate::crypto::VolumeSecret;
use crate::maint::{FsckReport, GcReport, VolumeStats};
use crate::redundancy::{LevelDir, Redundancy};
use crate::snapshot::SnapshotInfo;
use crate::snapshot::{SNAP_DIR, Snapshots, is_virtual};
use crate::sync::{SyncHandle, SyncSlot};
use crate::write::{self, Job};
use blockstore::{BlockId, BlockSource, BlockStore};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often dirty metadata and data are made durable in the background (ext4's default).
const COMMIT_INTERVAL: Duration = Duration::from_secs(5);

/// What [`Fs::read_local`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum LocalRead {
    /// The bytes read.
    Data(Vec<u8>),
    /// Blocks the read needs that are not at hand, in the order found (nothing was read).
    Missing(Vec<BlockId>),
}

/// The mounted filesystem core. `Send + Sync`.
pub struct Fs {
    core: Arc<Core>,
    /// The `.snapshots` tree's virtual inodes.
    snaps: Snapshots,
    /// Sync state, `None` until enabled (see [`Fs::sync_handle`]).
    sync: SyncSlot,
    flusher: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
    writeback: Option<(mpsc::Sender<Job>, JoinHandle<()>)>,
}

impl Drop for Fs {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.flusher.take() {
            drop(stop);
            let _ = thread.join();
        }
        // Waits for the flights, which need the writeback thread: stop it only afterwards.
        if let Err(e) = self.core.flush_all(true) {
            tracing::error!(error = %e, "final flush failed");
        }
        if let Some((jobs, thread)) = self.writeback.take() {
            drop(jobs);
            let _ = thread.join();
        }
    }
}

/// Flushes everything every [`COMMIT_INTERVAL`] until the sender is dropped.
fn spawn_flusher(core: Arc<Core>) -> Result<(mpsc::Sender<()>, JoinHandle<()>), FsError> {
    let (tx, rx) = mpsc::channel::<()>();
    let h = std::thread::Builder::new()
        .name("fossa-flush".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(COMMIT_INTERVAL) {
                if let Err(e) = core.flush_all(true) {
                    tracing::warn!(error = %e, "background flush failed");
                }
            }
        })?;
    Ok((tx, h))
}

impl Fs {
    /// Opens the volume whose metadata database is `meta_path` (created with an empty root
    /// directory owned by `root_owner` if absent), storing blocks in `store` and reading them
    /// through `source`.
    pub fn open(
        store: Arc<BlockStore>,
        source: Arc<dyn BlockSource>,
        meta_path: &Path,
        vs: &VolumeSecret,
        root_owner: Caller,
        opts: FsOptions,
    ) -> Result<Self, FsError> {
        let core = Arc::new(Core::open(store, source, meta_path, vs, root_owner, opts)?);
        core.ensure_anchor()?;
        let flusher = Some(spawn_flusher(core.clone())?);
        let writeback = Some(write::spawn_thread(core.clone())?);
        Ok(Fs {
            core,
            snaps: Snapshots::default(),
            sync: SyncSlot::default(),
            flusher,
            writeback,
        })
    }

    /// Sync on this volume: the index, scans, merges of peers' updates.
    pub fn sync_handle(&self) -> SyncHandle<'_> {
        SyncHandle::new(&self.core, &self.sync)
    }

    /// Fails with `ReadOnly` on a read-only mount, in a snapshot, or on `.snapshots` itself.
    fn writable(&self, ino: Ino, name: Option<&[u8]>) -> Result<(), FsError> {
        let snapdir = ino == ROOT_INO && name == Some(SNAP_DIR);
        if self.core.opts.read_only || is_virtual(ino) || snapdir {
            return Err(FsError::ReadOnly);
        }
        Ok(())
    }

    /// Looks `name` up in directory `parent` (`.` and `..` included).
    pub fn lookup(&self, parent: Ino, name: &[u8]) -> Result<Attr, FsError> {
        if is_virtual(parent) {
            return self.snaps.lookup(&self.core, parent, name);
        }
        if parent == ROOT_INO && name == SNAP_DIR {
            return self.snaps.getattr(&self.core, crate::snapshot::SNAP_ROOT);
        }
        self.core.lookup(parent, name)
    }
    /// Attributes of `ino`.
    pub fn getattr(&self, ino: Ino) -> Result<Attr, FsError> {
        if is_virtual(ino) {
            return self.snaps.getattr(&self.core, ino);
        }
        let mut st = self.core.st.lock();
        crate::ns::dir::attr_of(&mut st, ino)
    }
    /// Changes attributes (chmod, chown, truncate, utimens).
    pub fn setattr(&self, ino: Ino, set: &SetAttr, fh: Option<u64>) -> Result<Attr, FsError> {
        self.writable(ino, None)?;
        let _ = fh;
        self.core.setattr(ino, set)
    }

    /// Drops what a write, truncate or change of owner must take from a file when the FUSE
    /// adapter handles it rather than the kernel (`FUSE_HANDLE_KILLPRIV_V2`): the setuid bit,
    /// the setgid bit if the file is group-executable (otherwise it marks mandatory locking),
    /// and the file capability (`security.capability`), as Linux's VFS does. Directories keep
    /// theirs. Changes nothing (not even ctime) when there is nothing to drop.
    pub fn kill_privs(&self, ino: Ino) -> Result<(), FsError> {
        if is_virtual(ino) {
            return Ok(());
        }
        let a = self.getattr(ino)?;
        if a.kind == FileKind::Dir {
            return Ok(());
        }
        let mut perm = a.perm & !0o4000;
        if perm & 0o2010 == 0o2010 {
            perm &= !0o2000;
        }
        if perm != a.perm {
            let set = SetAttr {
                perm: Some(perm),
                ..SetAttr::default()
            };
            self.setattr(ino, &set, None)?;
        }
        match self.removexattr(ino, crate::ns::xattr::CAPABILITY_XATTR) {
            Ok(()) | Err(FsError::NoAttr) => Ok(()),
            Err(e) => Err(e),
        }
    }
    /// Creates a regular file, fifo, socket or device node.
    pub fn mknod(
        &self,
        who: Caller,
        parent: Ino,
        name: &[u8],
        kind: FileKind,
        perm: u16,
        rdev: u32,
    ) -> Result<Attr, FsError> {
        self.writable(parent, Some(name))?;
        match kind {
            FileKind::Dir => return Err(FsError::Invalid("mknod of a directory")),
            FileKind::Symlink => return Err(FsError::Invalid("mknod of a symlink")),
            _ => {}
        }
        let dev = matches!(kind, FileKind::CharDev | FileKind::BlockDev);
        self.core.make(who, parent, name, (kind, perm), |i| {
            i.rdev = if dev { rdev } else { 0 }
        })
    }
    /// Creates a directory.
    pub fn mkdir(&self, who: Caller, parent: Ino, name: &[u8], perm: u16) -> Result<Attr, FsError> {
        self.writable(parent, Some(name))?;
        self.core
            .make(who, parent, name, (FileKind::Dir, perm), |_| {})
    }
    /// Creates a symbolic link to `target`.
    pub fn symlink(
        &self,
        who: Caller,
        parent: Ino,
        name: &[u8],
        target: &[u8],
    ) -> Result<Attr, FsError> {
        self.writable(parent, Some(name))?;
        if target.is_empty() || target.len() > 4095 {
            return Err(FsError::Invalid("symlink target length"));
        }
        let who = Caller { umask: 0, ..who };
        let kp = (FileKind::Symlink, 0o777);
        self.core
            .make(who, parent, name, kp, |i| i.target = target.to_vec())
    }
    /// Target of symlink `ino`.
    pub fn readlink(&self, ino: Ino) -> Result<Vec<u8>, FsError> {
        if is_virtual(ino) {
            return self.snaps.readlink(ino);
        }
        self.core.readlink(ino)
    }
    /// A new name `new_name` in `new_parent` for non-directory `ino`.
    pub fn link(&self, ino: Ino, new_parent: Ino, new_name: &[u8]) -> Result<Attr, FsError> {
        self.writable(ino, None)?;
        self.writable(new_parent, Some(new_name))?;
        self.core.link(ino, new_parent, new_name)
    }
    /// Removes a non-directory entry.
    pub fn unlink(&self, parent: Ino, name: &[u8]) -> Result<(), FsError> {
        self.writable(parent, Some(name))?;
        self.core.remove(parent, name, false)
    }
    /// Removes an empty directory.
    pub fn rmdir(&self, parent: Ino, name: &[u8]) -> Result<(), FsError> {
        self.writable(parent, Some(name))?;
        self.core.remove(parent, name, true)
    }
    /// Renames an entry (see [`RenameMode`]).
    pub fn rename(
        &self,
        parent: Ino,
        name: &[u8],
        new_parent: Ino,
        new_name: &[u8],
        mode: RenameMode,
    ) -> Result<(), FsError> {
        self.writable(parent, Some(name))?;
        self.writable(new_parent, Some(new_name))?;
        self.core
            .rename((parent, name), (new_parent, new_name), mode)
    }
    /// Creates and opens a regular file.
    pub fn create(
        &self,
        who: Caller,
        parent: Ino,
        name: &[u8],
        perm: u16,
        flags: OpenFlags,
    ) -> Result<(Attr, u64), FsError> {
        self.writable(parent, Some(name))?;
        let attr = self
            .core
            .make(who, parent, name, (FileKind::File, perm), |_| {})?;
        let fh = write::open(&mut self.core.st.lock(), attr.ino, flags)?;
        Ok((attr, fh))
    }
    /// Opens regular file `ino`, truncating it with `flags.truncate`.
    pub fn open_file(&self, ino: Ino, flags: OpenFlags) -> Result<u64, FsError> {
        if is_virtual(ino) {
            if flags.write || flags.truncate {
                return Err(FsError::ReadOnly);
            }
            return self.snaps.open(&self.core, ino);
        }
        if flags.write || flags.truncate {
            self.writable(ino, None)?;
        }
        let fh = write::open(&mut self.core.st.lock(), ino, flags)?;
        if flags.truncate && self.getattr(ino)?.size > 0 {
            let set = SetAttr {
                size: Some(0),
                ..SetAttr::default()
            };
            self.core.setattr(ino, &set)?;
        }
        Ok(fh)
    }
    /// Reads up to `size` bytes at `offset`.
    pub fn read(&self, ino: Ino, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>, FsError> {
        if is_virtual(ino) {
            return self.snaps.read(&self.core, ino, offset, size as usize);
        }
        // Content I/O runs outside the state lock, on what the file held when planned.
        let plan = write::plan(&mut self.core.st.lock(), (ino, fh), offset, size as usize)?;
        write::read(&self.core.engine, &plan)
            .inspect_err(|e| self.core.log_bad_read(ino, offset, e))
    }
    /// [`Fs::read`] that never waits on a remote block source: when blocks the read needs are
    /// not at hand (local store or read cache), it reads nothing and names them, for the
    /// caller to fetch before it asks again. Snapshot files are read as by [`Fs::read`].
    pub fn read_local(
        &self,
        ino: Ino,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> Result<LocalRead, FsError> {
        if is_virtual(ino) {
            return self
                .snaps
                .read(&self.core, ino, offset, size as usize)
                .map(LocalRead::Data);
        }
        let plan = write::plan(&mut self.core.st.lock(), (ino, fh), offset, size as usize)?;
        let missing = write::read_missing(&self.core.engine, &plan)?;
        if !missing.is_empty() {
            return Ok(LocalRead::Missing(missing));
        }
        write::read(&self.core.engine, &plan)
            .inspect_err(|e| self.core.log_bad_read(ino, offset, e))
            .map(LocalRead::Data)
    }
    /// Writes `data` at `offset` (at the end for append handles); returns bytes written.
    pub fn write(&self, ino: Ino, fh: u64, offset: u64, data: &[u8]) -> Result<u32, FsError> {
        self.writable(ino, None)?;
        let n = u32::try_from(data.len()).map_err(|_| FsError::Invalid("write too large"))?;
        let spawn = |j: Job| match &self.writeback {
            Some((jobs, _)) => jobs.send(j).map_err(|e| e.0),
            None => Err(j),
        };
        let mut st = self.core.st.lock();
        self.core.write_drops_capability(&mut st, ino)?;
        let lim = self.core.limits();
        write::write(&mut st, (ino, fh), offset, data, lim, &spawn)?;
        Ok(n)
    }
    /// On close of a descriptor: moves the file's buffered writes into blocks, then soft-
    /// commits all dirty metadata (the journal: it survives the daemon's death, and a
    /// `sync(1)` makes it durable; the next fsync or background commit makes it durable
    /// anyway). Reports a failed background flush first, and `NoSpace` when the journal
    /// cannot be written.
    pub fn flush(&self, ino: Ino, fh: u64) -> Result<(), FsError> {
        if is_virtual(ino) {
            return Ok(());
        }
        {
            let mut st = self.core.st.lock();
            write::settle(&mut st, ino, Some(fh))?;
            write::flush_data(&self.core.engine, &mut st, ino, None)?;
        }
        self.core.soft_commit()
    }
    /// Makes the file's data and all metadata durable (see [`Fs::sync`]); other files'
    /// buffered writes stay buffered, as their data would under a kernel fsync. A background
    /// flush of this file that failed is reported (once) instead; its data stays buffered
    /// and is retried by the next flush.
    pub fn fsync(&self, ino: Ino, fh: Option<u64>, datasync: bool) -> Result<(), FsError> {
        let _ = datasync;
        if is_virtual(ino) {
            return Ok(());
        }
        write::settle(&mut self.core.st.lock(), ino, fh)?;
        self.core.flush_file(ino)?;
        write::synced(&mut self.core.st.lock(), ino);
        Ok(())
    }
    /// Closes handle `fh`; the last close of an unlinked file deletes it.
    pub fn release(&self, ino: Ino, fh: u64) -> Result<(), FsError> {
        if is_virtual(ino) {
            return self.snaps.release(fh);
        }
        let mut st = self.core.st.lock();
        if write::release(&self.core.engine, &mut st, ino, fh)? {
            crate::ns::dir::reap(&mut st, ino)?;
        }
        Ok(())
    }
    /// Lists directory `ino` after cookie `after`, at most `max` entries.
    pub fn readdir(&self, ino: Ino, after: u64, max: usize) -> Result<Vec<DirEntry>, FsError> {
        if is_virtual(ino) {
            return self.snaps.readdir(&self.core, ino, after, max);
        }
        self.core.readdir(ino, after, max)
    }
    /// Space of the filesystem holding the block store.
    pub fn statfs(&self) -> Result<StatFs, FsError> {
        self.core.statfs()
    }
    /// Sets an extended attribute.
    pub fn setxattr(
        &self,
        ino: Ino,
        name: &[u8],
        value: &[u8],
        mode: XattrMode,
    ) -> Result<(), FsError> {
        self.writable(ino, None)?;
        self.core.setxattr(ino, name, value, mode)
    }
    /// Value of an extended attribute.
    pub fn getxattr(&self, ino: Ino, name: &[u8]) -> Result<Vec<u8>, FsError> {
        if is_virtual(ino) {
            return Err(FsError::NoAttr);
        }
        self.core.getxattr(ino, name)
    }
    /// Names of the extended attributes of `ino`.
    pub fn listxattr(&self, ino: Ino) -> Result<Vec<Vec<u8>>, FsError> {
        if is_virtual(ino) {
            return Ok(Vec::new());
        }
        self.core.listxattr(ino)
    }
    /// Removes an extended attribute.
    pub fn removexattr(&self, ino: Ino, name: &[u8]) -> Result<(), FsError> {
        self.writable(ino, None)?;
        self.core.removexattr(ino, name)
    }
    /// Extends the file with a hole (modes 0 and KEEP_SIZE); other modes are not supported
    /// by the adapter's contract.
    pub fn fallocate(
        &self,
        ino: Ino,
        fh: u64,
        offset: u64,
        len: u64,
        keep_size: bool,
    ) -> Result<(), FsError> {
        self.writable(ino, None)?;
        let end = offset.checked_add(len).ok_or(FsError::TooBig)?;
        self.core.fallocate(ino, fh, end, keep_size)
    }
    /// `fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)`: bytes `offset..offset + len`
    /// (clipped to the size) read as zeros from now on and store nothing; the size stays.
    pub fn punch_hole(&self, ino: Ino, fh: u64, offset: u64, len: u64) -> Result<(), FsError> {
        self.writable(ino, None)?;
        let end = punch_end(offset, len)?;
        self.core.punch(ino, fh, (offset, end), true)
    }
    /// `fallocate(FALLOC_FL_ZERO_RANGE)`: as [`Fs::punch_hole`], and without `keep_size` a
    /// range past the end extends the file to `offset + len` (with a hole).
    pub fn zero_range(
        &self,
        ino: Ino,
        fh: u64,
        (offset, len): (u64, u64),
        keep_size: bool,
    ) -> Result<(), FsError> {
        self.writable(ino, None)?;
        let end = punch_end(offset, len)?;
        self.core.punch(ino, fh, (offset, end), keep_size)
    }
    /// Makes everything durable: buffered data into blocks, `store.commit()`, then one
    /// durable redb transaction with all dirty metadata.
    pub fn sync(&self) -> Result<(), FsError> {
        self.core.flush_all(true)
    }
    /// Retains the current tree as snapshot `name`.
    pub fn snapshot(&self, name: &str) -> Result<SnapshotInfo, FsError> {
        self.writable(ROOT_INO, None)?;
        self.core.snapshot(name)
    }
    /// Snapshots, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>, FsError> {
        self.core.snapshots()
    }
    /// Forgets snapshot `name` (its blocks go at the next gc).
    pub fn remove_snapshot(&self, name: &str) -> Result<(), FsError> {
        self.core.remove_snapshot(&self.snaps, name)
    }
    /// Deletes blocks reachable from neither the tree nor any snapshot.
    pub fn gc(&self) -> Result<GcReport, FsError> {
        self.core.gc()
    }
    /// Verifies every reachable block and the metadata's consistency.
    pub fn fsck(&self, repair: bool) -> Result<FsckReport, FsError> {
        self.core.fsck(repair)
    }
    /// Volume counts.
    pub fn stats(&self) -> Result<VolumeStats, FsError> {
        self.core.stats()
    }
    /// The redundancy level that applies at `path` (relative to the volume root).
    pub fn redundancy(&self, path: &[u8]) -> Result<Redundancy, FsError> {
        self.core.redundancy_at(path)
    }

    /// The blocks of the file at `path` (stored content; those below pointer blocks that are
    /// not local are not listed). Empty for anything but a regular file.
    pub fn blocks_at(&self, path: &[u8]) -> Result<Vec<BlockId>, FsError> {
        self.core.blocks_at(path)
    }

    /// The directories whose own `user.fossa.redundancy` sets a level, with the blocks each
    /// setting governs (for `fossa status`).
    pub fn level_dirs(&self) -> Result<Vec<LevelDir>, FsError> {
        self.core.level_dirs()
    }

    /// Every locally known block of the live tree with the number of distinct nodes that
    /// must hold it (the placement and repair loop's input).
    pub fn block_levels(&self) -> Result<HashMap<BlockId, u8>, FsError> {
        self.core.block_levels()
    }
}

/// End of a punched or zeroed range; an empty range is invalid (as `fallocate(2)` says).
fn punch_end(offset: u64, len: u64) -> Result<u64, FsError> {
    if len == 0 {
        return Err(FsError::Invalid("empty fallocate range"));
    }
    offset.checked_add(len).ok_or(FsError::TooBig)
}
