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
    #[error("bad store file {path}: {fault}")]
    Format {
        /// The file concerned.
        path: PathBuf,
        /// What was wrong.
        fault: BadFile,
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

/// What is wrong with a store file ([`StoreError::Format`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadFile {
    /// A data file ends inside its header.
    #[error("data file shorter than its header")]
    ShortHeader,
    /// A data file's header names another file number than its file name.
    #[error("data file number {in_header} in its header does not match its name ({in_name})")]
    NumberMismatch {
        /// The number the header holds.
        in_header: u32,
        /// The number the file name says.
        in_name: u32,
    },
    /// A data file's header does not decode (magic, checksum or version; docs/formats/blockstore.md).
    #[error("{0}")]
    Header(&'static str),
    /// The index records a format version this build does not read.
    #[error("unsupported index format version {found} (this fossa reads {supported})")]
    IndexVersion {
        /// The version recorded.
        found: u64,
        /// The version this build reads.
        supported: u64,
    },
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
    /// Whether this is a full disk.
    pub fn is_no_space(&self) -> bool {
        matches!(self, StoreError::NoSpace(_))
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_carry_data_and_say_it() {
        let e = StoreError::internal(Invariant::NoActiveDataFile);
        assert!(matches!(
            e,
            StoreError::Internal(Invariant::NoActiveDataFile)
        ));
        assert_eq!(
            e.to_string(),
            "internal error in the block store: no active data file after a roll"
        );
        let e = StoreError::Format {
            path: "/d/data/00000002.blk".into(),
            fault: BadFile::NumberMismatch {
                in_header: 3,
                in_name: 2,
            },
        };
        assert_eq!(
            e.to_string(),
            "bad store file /d/data/00000002.blk: data file number 3 in its header does not \
             match its name (2)"
        );
        let e = index_error(Path::new("/d/index.redb"), redb::Error::DatabaseAlreadyOpen);
        match e {
            StoreError::Index { path, source } => {
                assert_eq!(path, Path::new("/d/index.redb"));
                assert!(matches!(*source, redb::Error::DatabaseAlreadyOpen));
            }
            other => panic!("want Index, got {other}"),
        }
        let id = BlockId::of(b"x");
        let late = StoreError::Unavailable {
            id,
            cause: Unavailable::TimedOut,
        };
        assert!(late.is_transient());
        assert_eq!(
            late.to_string(),
            format!("block {id} is not here and could not be fetched: no peer sent it in time")
        );
    }
}
