//! Errors of the block store. Variants carry the block or file they concern; `is_transient`
//! tells callers whether a retry can help.
//!
//! Rules: every `io::Error` is mapped through [`io_error`] so that a full disk is always
//! [`StoreError::NoSpace`]; every redb error goes through [`index_error`].
use crate::BlockId;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the block store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The block is not in the store.
    #[error("block {0} not found")]
    NotFound(BlockId),
    /// The stored bytes do not hash to the id: corruption, never served.
    #[error("block {id} is corrupt (stored bytes hash to {actual})")]
    Corrupt {
        /// The id that was asked for.
        id: BlockId,
        /// What the bytes on disk hash to.
        actual: BlockId,
    },
    /// An I/O error on a store file.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The index database failed.
    #[error("index error: {0}")]
    Index(String),
    /// A store file has a bad header or record.
    #[error("bad store file {path}: {reason}")]
    Format {
        /// The file concerned.
        path: PathBuf,
        /// What was wrong.
        reason: &'static str,
    },
    /// The device is full; nothing acknowledged was lost.
    #[error("no space left for the block store in {0}")]
    NoSpace(PathBuf),
    /// The index database is damaged or missing while data files exist; `fsck(repair)` on
    /// a store opened with [`crate::BlockStore::open_rebuilding_index`] rebuilds it.
    #[error("the block index {path} is damaged: {reason}")]
    IndexDamaged {
        /// The index file.
        path: PathBuf,
        /// What opening or reading it reported.
        reason: String,
    },
    /// A block exceeds the maximum block size.
    #[error("block of {0} bytes exceeds the maximum")]
    TooLarge(usize),
}

impl StoreError {
    /// Whether this is a full disk.
    pub fn is_no_space(&self) -> bool {
        matches!(self, StoreError::NoSpace(_))
    }

    /// Whether retrying the operation later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::NoSpace(_))
            || matches!(self, StoreError::Io { source, .. } if source.kind() == std::io::ErrorKind::Interrupted)
    }
}

/// Maps an I/O error on `path`; ENOSPC becomes [`StoreError::NoSpace`].
pub(crate) fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    if source.kind() == std::io::ErrorKind::StorageFull {
        StoreError::NoSpace(path.to_owned())
    } else {
        StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Maps any redb error on the index at `path`.
pub(crate) fn index_error(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Io(source) => io_error(path, source),
        other => StoreError::Index(other.to_string()),
    }
}

/// Maps a redb error met while opening or loading the index at `path`: what says the file is
/// unreadable (corruption, a short file, a format redb cannot repair) is
/// [`StoreError::IndexDamaged`]; the rest is mapped as [`index_error`] does.
pub(crate) fn open_error(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    use std::io::ErrorKind::{InvalidData, UnexpectedEof};
    match e.into() {
        redb::Error::Io(source) if !matches!(source.kind(), UnexpectedEof | InvalidData) => {
            io_error(path, source)
        }
        e @ (redb::Error::DatabaseAlreadyOpen
        | redb::Error::LockProtocolMismatch
        | redb::Error::TransactionInProgress) => StoreError::Index(e.to_string()),
        other => StoreError::IndexDamaged {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    }
}
