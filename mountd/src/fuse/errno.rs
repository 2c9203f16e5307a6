//! THE mapping of [`FsError`] to an errno; the one place where EIO-class causes are logged.
use blockstore::{StoreError, Unavailable};
use fossa_fs::FsError;
use fuser::Errno;

/// Maps `e`, from operation `op` on inode `ino`, to the errno the kernel gets. Integrity and
/// storage failures are logged here with their cause (block ids and inode numbers, never file
/// names), so corruption never passes silently as a plain error code.
pub(crate) fn errno(op: &'static str, ino: u64, e: FsError) -> Errno {
    let code = code(&e);
    match code {
        libc::EIO => tracing::error!(op, ino, error = %e, "I/O error"),
        libc::ETIMEDOUT => tracing::warn!(op, ino, error = %e, "timed out"),
        _ => {}
    }
    Errno::from_i32(code)
}

/// The errno value for `e`.
fn code(e: &FsError) -> i32 {
    match e {
        FsError::NotFound => libc::ENOENT,
        FsError::Exists => libc::EEXIST,
        FsError::NotDir => libc::ENOTDIR,
        FsError::IsDir => libc::EISDIR,
        FsError::NotEmpty => libc::ENOTEMPTY,
        FsError::Invalid(_) => libc::EINVAL,
        FsError::NameTooLong => libc::ENAMETOOLONG,
        FsError::NotPermitted => libc::EPERM,
        FsError::ReadOnly => libc::EROFS,
        FsError::NoAttr => libc::ENODATA,
        FsError::Range => libc::ERANGE,
        FsError::NotSupported => libc::EOPNOTSUPP,
        FsError::TooManyLinks => libc::EMLINK,
        FsError::TooBig => libc::EFBIG,
        FsError::BadHandle(_) => libc::EBADF,
        FsError::NoSpace | FsError::Store(StoreError::NoSpace(_)) => libc::ENOSPC,
        FsError::Io(io) if io.raw_os_error() == Some(libc::ENOSPC) => libc::ENOSPC,
        FsError::Store(StoreError::Io { source, .. })
            if source.raw_os_error() == Some(libc::ENOSPC) =>
        {
            libc::ENOSPC
        }
        // A remote fetch whose deadline passed: a retry may succeed once a peer answers.
        FsError::Store(StoreError::Unavailable {
            cause: Unavailable::TimedOut,
            ..
        }) => libc::ETIMEDOUT,
        // Corruption, missing blocks, blocks no peer could give (no peer, none has it, wrong
        // bytes), bad records, crypto and database failures, broken invariants; also any
        // variant added later, until it is given its own errno here.
        _ => libc::EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blockstore::BlockId;
    use fossa_fs::Bug;
    use std::io;

    fn id() -> BlockId {
        BlockId::of(b"x")
    }

    fn unavailable(cause: Unavailable) -> FsError {
        FsError::Store(StoreError::Unavailable { id: id(), cause })
    }

    fn redb_error() -> redb::Error {
        redb::Error::DatabaseAlreadyOpen
    }

    #[test]
    fn every_variant_maps_to_its_errno() {
        let path = std::path::PathBuf::from("/d/blocks/0");
        let cases: Vec<(FsError, i32)> = vec![
            (FsError::NotFound, libc::ENOENT),
            (FsError::Exists, libc::EEXIST),
            (FsError::NotDir, libc::ENOTDIR),
            (FsError::IsDir, libc::EISDIR),
            (FsError::NotEmpty, libc::ENOTEMPTY),
            (FsError::Invalid("x"), libc::EINVAL),
            (FsError::NameTooLong, libc::ENAMETOOLONG),
            (FsError::NotPermitted, libc::EPERM),
            (FsError::ReadOnly, libc::EROFS),
            (FsError::NoAttr, libc::ENODATA),
            (FsError::Range, libc::ERANGE),
            (FsError::NotSupported, libc::EOPNOTSUPP),
            (FsError::TooManyLinks, libc::EMLINK),
            (FsError::TooBig, libc::EFBIG),
            (FsError::BadHandle(7), libc::EBADF),
            (FsError::NoSpace, libc::ENOSPC),
            (FsError::BadBlock(id()), libc::EIO),
            (FsError::BadRecord("inode"), libc::EIO),
            (FsError::Crypto("x"), libc::EIO),
            (FsError::WrongKey, libc::EIO),
            (FsError::Meta(redb::Error::DatabaseAlreadyOpen), libc::EIO),
            (FsError::Io(io::Error::other("x")), libc::EIO),
            (
                FsError::Internal(Bug::FlightLandedTwice { ino: 7 }),
                libc::EIO,
            ),
            (
                FsError::Io(io::Error::from_raw_os_error(libc::ENOSPC)),
                libc::ENOSPC,
            ),
            (
                FsError::Store(StoreError::NoSpace(path.clone())),
                libc::ENOSPC,
            ),
            (FsError::Store(StoreError::NotFound(id())), libc::EIO),
            (
                FsError::Store(StoreError::Corrupt {
                    id: id(),
                    actual: id(),
                }),
                libc::EIO,
            ),
            (
                FsError::Store(StoreError::Io {
                    path: path.clone(),
                    source: io::Error::other("disk"),
                }),
                libc::EIO,
            ),
            (
                FsError::Store(StoreError::Index {
                    path: path.clone(),
                    source: Box::new(redb_error()),
                }),
                libc::EIO,
            ),
            (
                FsError::Store(StoreError::Internal(
                    blockstore::Invariant::NoActiveDataFile,
                )),
                libc::EIO,
            ),
            (unavailable(Unavailable::TimedOut), libc::ETIMEDOUT),
            (unavailable(Unavailable::NoPeers), libc::EIO),
            (unavailable(Unavailable::NotHeld), libc::EIO),
            (unavailable(Unavailable::BadBytes), libc::EIO),
            (unavailable(Unavailable::Offline), libc::EIO),
            (FsError::Store(StoreError::TooLarge(1 << 30)), libc::EIO),
        ];
        for (e, want) in cases {
            let shown = format!("{e:?}");
            assert_eq!(errno("test", 1, e).code(), want, "{shown}");
        }
    }
}
