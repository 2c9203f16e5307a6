//! Attribute types exchanged between the fs core and its callers (no fuser types here).
use std::time::SystemTime;

/// Inode number. 1 is the root directory.
pub type Ino = u64;
/// The root directory's inode number.
pub const ROOT_INO: Ino = 1;

/// Kind of an inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
    /// Character device.
    CharDev,
    /// Block device.
    BlockDev,
}

/// Full POSIX attributes of an inode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: Ino,
    /// Kind.
    pub kind: FileKind,
    /// Size in bytes (symlinks: target length).
    pub size: u64,
    /// 512-byte blocks allocated (for `du`).
    pub blocks: u64,
    /// Permission bits incl. setuid/setgid/sticky (mode & 0o7777).
    pub perm: u16,
    /// Link count.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number for device nodes.
    pub rdev: u32,
    /// Access time.
    pub atime: SystemTime,
    /// Modification time.
    pub mtime: SystemTime,
    /// Status change time.
    pub ctime: SystemTime,
    /// Creation time.
    pub crtime: SystemTime,
}

/// A time to set in `setattr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSet {
    /// The current time.
    Now,
    /// A given time.
    At(SystemTime),
}

/// Changes requested by `setattr`; `None` leaves a field alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits (mode & 0o7777).
    pub perm: Option<u16>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// Truncate or extend to this size.
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<TimeSet>,
    /// New modification time.
    pub mtime: Option<TimeSet>,
    /// New change time (otherwise set to now when anything changes).
    pub ctime: Option<SystemTime>,
}

/// Who is calling: used for ownership of new inodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Effective uid.
    pub uid: u32,
    /// Effective gid.
    pub gid: u32,
    /// umask to apply to new inodes' permission bits.
    pub umask: u16,
}

/// One directory entry from `readdir`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Inode of the entry.
    pub ino: Ino,
    /// Opaque cookie: passing it back to `readdir` resumes after this entry, stable across
    /// concurrent inserts and removals.
    pub cookie: u64,
    /// Kind.
    pub kind: FileKind,
    /// Name (raw bytes; names are arbitrary bytes except `/` and NUL).
    pub name: Vec<u8>,
}

/// How `rename` treats an existing target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RenameMode {
    /// Replace the target if it exists (POSIX rename).
    #[default]
    Replace,
    /// Fail with `Exists` if the target exists (RENAME_NOREPLACE).
    NoReplace,
    /// Swap source and target atomically; both must exist (RENAME_EXCHANGE).
    Exchange,
}

/// How `setxattr` treats an existing attribute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XattrMode {
    /// Create or replace.
    #[default]
    Any,
    /// Fail with `Exists` if present (XATTR_CREATE).
    Create,
    /// Fail with `NoAttr` if absent (XATTR_REPLACE).
    Replace,
}

/// Filesystem statistics for `statfs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatFs {
    /// Total blocks of `bsize` on the underlying device.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Blocks available to unprivileged users.
    pub bavail: u64,
    /// Inodes in use plus free (an estimate).
    pub files: u64,
    /// Free inodes (an estimate).
    pub ffree: u64,
    /// Block size.
    pub bsize: u32,
    /// Maximum name length.
    pub namelen: u32,
}

/// Flags of `open`/`create` that the core cares about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenFlags {
    /// Opened for writing (O_WRONLY or O_RDWR).
    pub write: bool,
    /// O_TRUNC.
    pub truncate: bool,
    /// O_APPEND.
    pub append: bool,
}
