//! Errors of the filesystem layer.
//!
//! Rules: variants carry the inode, block or name they concern, not prose; POSIX-shaped
//! failures (`NotFound`, `Exists`, …) are what a caller maps to an errno in exactly one place
//! (mountd's FUSE adapter); storage and integrity failures keep their cause so it can be logged.
use blockstore::{BlockId, StoreError};

/// Everything an [`crate::Fs`] operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// No such file or directory (ENOENT).
    #[error("not found")]
    NotFound,
    /// Entry already exists (EEXIST).
    #[error("already exists")]
    Exists,
    /// Not a directory (ENOTDIR).
    #[error("not a directory")]
    NotDir,
    /// Is a directory (EISDIR).
    #[error("is a directory")]
    IsDir,
    /// Directory not empty (ENOTEMPTY).
    #[error("directory not empty")]
    NotEmpty,
    /// Invalid argument (EINVAL), e.g. renaming a directory into itself.
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    /// Name too long (ENAMETOOLONG).
    #[error("name too long")]
    NameTooLong,
    /// Operation not permitted (EPERM), e.g. writing in a snapshot.
    #[error("operation not permitted")]
    NotPermitted,
    /// Read-only filesystem (EROFS): snapshots.
    #[error("read-only")]
    ReadOnly,
    /// No such extended attribute (ENODATA).
    #[error("no such attribute")]
    NoAttr,
    /// Value does not fit the caller's buffer (ERANGE).
    #[error("result too large")]
    Range,
    /// Operation not supported (EOPNOTSUPP).
    #[error("not supported")]
    NotSupported,
    /// Too many links (EMLINK).
    #[error("too many links")]
    TooManyLinks,
    /// File too large (EFBIG).
    #[error("file too large")]
    TooBig,
    /// Bad file handle (EBADF).
    #[error("bad file handle {0}")]
    BadHandle(u64),
    /// No space left on the device holding the volume (ENOSPC).
    #[error("no space left on device")]
    NoSpace,
    /// A block failed to decrypt or decode (EIO, logged with the block id).
    #[error("block {0} does not decrypt or decode")]
    BadBlock(BlockId),
    /// A metadata record failed to open or decode (EIO).
    #[error("bad record: {0}")]
    BadRecord(&'static str),
    /// A cryptographic primitive failed (EIO).
    #[error("crypto failure: {0}")]
    Crypto(&'static str),
    /// Wrong passphrase or key file.
    #[error("wrong passphrase or key file")]
    WrongKey,
    /// The block store failed (EIO or ENOSPC; corrupt blocks are named).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The metadata database failed (EIO).
    #[error("metadata database: {0}")]
    Meta(#[source] redb::Error),
    /// The metadata database cannot be opened or read: `fossa fsck --repair` recovers it
    /// (docs/cli.md, "Recovery").
    #[error("the metadata database {path} is damaged: {damage}")]
    MetaDamaged {
        /// The database file.
        path: std::path::PathBuf,
        /// What opening or reading it showed.
        #[source]
        damage: MetaDamage,
    },
    /// An I/O error outside the block store (EIO).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A broken internal invariant: a bug in fossa, not a property of the request or of the
    /// stored data (EIO). Made with [`FsError::bug`], which logs it where it is raised.
    #[error("internal error: {0}")]
    Internal(Bug),
}

/// What internal invariant broke, with the values that showed it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Bug {
    /// A flight landed for an inode that had none in the air.
    #[error("flight of inode {ino} landed twice")]
    FlightLandedTwice {
        /// The file.
        ino: u64,
    },
    /// A buffer was handed to the writeback thread after it stopped.
    #[error("writeback thread gone with the buffer of inode {ino}")]
    WritebackGone {
        /// The file whose buffer it was.
        ino: u64,
    },
    /// The leaves a content update or hole punch built do not cover the range they replace.
    #[error("{op} lost track of lengths: the leaves cover {got} bytes, not {want}")]
    LengthsLost {
        /// "content update" or "hole punch".
        op: &'static str,
        /// Bytes the new leaves cover.
        got: u64,
        /// Bytes they had to cover.
        want: u64,
    },
    /// A stored tree's trailing hole is longer than the file.
    #[error("file tree lengths disagree: size {size}, trailing hole {trailing}")]
    TreeLengths {
        /// The file's size.
        size: u64,
        /// The trailing hole the tree ends in.
        trailing: u64,
    },
    /// A tree grew past the deepest the pointer-block format allows.
    #[error("file tree deeper than {max} levels")]
    TreeTooDeep {
        /// The format's limit.
        max: u8,
    },
    /// A content update found no pointer block holding a byte inside the old tree.
    #[error("content update lost track of the tree at byte {at}, height {height}")]
    TreeLost {
        /// The byte looked for.
        at: u64,
        /// The height of the pointer block looked for.
        height: u8,
    },
}

/// What showed a metadata database to be damaged.
#[derive(Debug, thiserror::Error)]
pub enum MetaDamage {
    /// redb could not open or read the file.
    #[error("{0}")]
    Unreadable(#[source] redb::Error),
    /// A record in it did not decode or authenticate.
    #[error("{0}")]
    Record(#[source] Box<FsError>),
}

impl FsError {
    /// Whether this is a full disk (ENOSPC), here or in the block store.
    pub fn is_no_space(&self) -> bool {
        matches!(
            self,
            FsError::NoSpace | FsError::Store(StoreError::NoSpace(_))
        )
    }

    /// The error for broken invariant `bug`, logged here (the caller sees only EIO).
    pub(crate) fn bug(bug: Bug) -> Self {
        tracing::error!(%bug, "internal invariant broken");
        FsError::Internal(bug)
    }

    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            FsError::NoSpace => true,
            FsError::Store(e) => e.is_transient(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_invariant_says_what_broke() {
        let e = FsError::bug(Bug::LengthsLost {
            op: "hole punch",
            got: 3,
            want: 5,
        });
        assert!(matches!(
            e,
            FsError::Internal(Bug::LengthsLost {
                got: 3,
                want: 5,
                ..
            })
        ));
        let shown =
            "internal error: hole punch lost track of lengths: the leaves cover 3 bytes, not 5";
        assert_eq!(e.to_string(), shown);
        assert!(!e.is_transient());
    }
}
