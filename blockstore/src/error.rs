//! Errors of the block store. Variants carry the block or file they concern; `is_transient`
//! tells callers whether a retry can help.
//!
//! Rules: every `io::Error` is mapped through [`io_error`] so that a full disk is always
//! [`StoreError::NoSpace`]; every redb error goes through [`index_error`] (or [`open_error`]
//! at open) and keeps its redb kind and the index file. A broken internal invariant is
//! [`StoreError::Internal`], made by [`StoreError::internal`], which logs it: it is a bug, the
//! caller sees EIO and the log says what broke. Variants carry data, not prose.
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
    #[error("index error on {path}: {source}")]
    Index {
        /// The index file.
        path: PathBuf,
        /// What redb reported.
        source: Box<redb::Error>,
    },
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
    #[error("the block index {path} is damaged: {damage}")]
    IndexDamaged {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it.
        damage: Damage,
    },
    /// A block exceeds the maximum block size.
    #[error("block of {0} bytes exceeds the maximum")]
    TooLarge(usize),
    /// A block the store lacks could not be had from elsewhere (a [`crate::BlockSource`]
    /// beyond the store: the network).
    #[error("block {id} is not here and could not be fetched: {cause}")]
    Unavailable {
        /// The block.
        id: BlockId,
        /// Why it could not be fetched.
        cause: Unavailable,
    },
    /// A broken internal invariant: a bug, logged when made ([`StoreError::internal`]).
    #[error("internal error in the block store: {0}")]
    Internal(Invariant),
}

/// What is wrong with a damaged index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Damage {
    /// There is no index file, but data files exist.
    #[error("the index is missing but data files exist")]
    Missing,
    /// redb could not open or read it.
    #[error("{0}")]
    Unreadable(Box<redb::Error>),
}

/// Why a block could not be fetched from beyond the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// There is nowhere to fetch from (no network running).
    #[error("no network")]
    Offline,
    /// Nobody to ask: no peer connected.
    #[error("no peer connected")]
    NoPeers,
    /// The deadline passed before any peer sent it.
    #[error("no peer sent it in time")]
    TimedOut,
    /// Every peer asked answered without it.
    #[error("no connected peer has it")]
    NotHeld,
    /// A peer sent bytes that do not hash to the id.
    #[error("a peer sent bytes that do not match")]
    BadBytes,
    /// It arrived but could not be stored.
    #[error("fetched but not stored")]
    NotKept,
}

/// An internal invariant of the store that was found broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Invariant {
    /// A record was to be appended but no data file is active (a roll must make one).
    #[error("no active data file after a roll")]
    NoActiveDataFile,
}

impl StoreError {
    /// Whether retrying the operation later may succeed.
    pub fn is_transient(&self) -> bool {
        use Unavailable::{NoPeers, TimedOut};
        matches!(self, StoreError::NoSpace(_))
            || matches!(self, StoreError::Io { source, .. } if source.kind() == std::io::ErrorKind::Interrupted)
            || matches!(
                self,
                StoreError::Unavailable {
                    cause: NoPeers | TimedOut,
                    ..
                }
            )
    }

    /// The error for `broken`, logged here with what broke: a bug, never a user's mistake.
    pub fn internal(broken: Invariant) -> Self {
        tracing::error!(invariant = ?broken, "block store: internal invariant broken: {broken}");
        StoreError::Internal(broken)
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
        other => StoreError::Index {
            path: path.to_owned(),
            source: Box::new(other),
        },
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
        | redb::Error::TransactionInProgress) => StoreError::Index {
            path: path.to_owned(),
            source: Box::new(e),
        },
        other => StoreError::IndexDamaged {
            path: path.to_owned(),
            damage: Damage::Unreadable(Box::new(other)),
        },
    }
}
