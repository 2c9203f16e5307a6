//! Headroom on a full disk (docs/ARCHITECTURE.md, "The path of a write", 7): a floor that new
//! blocks may not take the filesystem below, and a reserve file given up when the disk fills
//! anyway, so that opening the volume, metadata commits, deletes and gc always find room.
use crate::StoreError;
use parking_lot::Mutex;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The reserve file's name in the store directory.
pub(super) const RESERVE_FILE: &str = "reserve";
/// Environment override of the headroom size in bytes (0 turns headroom off).
const RESERVE_ENV: &str = "FOSSA_RESERVE_BYTES";
const MIN_RESERVE: u64 = 4 << 20;
const MAX_RESERVE: u64 = 64 << 20;
/// New blocks admitted between two `statvfs` calls, at most.
const RECHECK_BYTES: u64 = 64 << 20;

/// The floor and the reserve file of one store directory.
pub(super) struct Headroom {
    /// `DIR/reserve`.
    path: PathBuf,
    /// R: the floor and the reserve file's size; 0 when headroom is off.
    size: u64,
    /// Bytes that new blocks may still take before free space is read again.
    credit: Mutex<u64>,
}

/// Free bytes for an unprivileged writer and the filesystem's size, of the filesystem
/// holding `dir`.
fn space(dir: &Path) -> io::Result<(u64, u64)> {
    let v = rustix::fs::statvfs(dir).map_err(io::Error::from)?;
    Ok((
        v.f_bavail.saturating_mul(v.f_frsize),
        v.f_blocks.saturating_mul(v.f_frsize),
    ))
}

/// R for a filesystem of `total` bytes, unless overridden: 1 %, clamped to 4..=64 MiB, and
/// at most an eighth of the filesystem.
fn reserve_size(total: u64) -> u64 {
    let default = (total / 100).clamp(MIN_RESERVE, MAX_RESERVE).min(total / 8);
    match std::env::var(RESERVE_ENV)
        .ok()
        .map(|v| v.trim().parse::<u64>())
    {
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            tracing::warn!("{RESERVE_ENV} is not a number of bytes; using the default");
            default
        }
        None => default,
    }
}

impl Headroom {
    /// Sets up headroom for the store in `dir` as it opens: gives the reserve up if the disk
    /// has less than R free (the opening's own writes need room), makes it if there is room.
    pub(super) fn open(dir: &Path) -> Self {
        let (free, total) = match space(dir) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "cannot read free space; no headroom kept");
                (0, 0)
            }
        };
        let h = Headroom {
            path: dir.join(RESERVE_FILE),
            size: if total == 0 { 0 } else { reserve_size(total) },
            credit: Mutex::new(0),
        };
        if h.size > 0 && free < h.size {
            h.release("the store opened with the disk nearly full");
        } else {
            // Makes the file only with 3R free; a no-op when headroom is off.
            h.replenish();
        }
        h
    }

    /// Admits `len` bytes of new blocks, or refuses them with [`StoreError::NoSpace`] when
    /// they would leave the filesystem with less than R free. Reads free space only when the
    /// credit from the last reading runs out; gives the reserve up when it finds less than
    /// R/2 free (something other than new blocks filled the disk).
    pub(super) fn admit(&self, len: u64) -> Result<(), StoreError> {
        if self.size == 0 {
            return Ok(());
        }
        let mut credit = self.credit.lock();
        if *credit >= len {
            *credit -= len;
            return Ok(());
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let free = match space(dir) {
            Ok((free, _)) => free,
            // Without a reading, let the write itself find out.
            Err(_) => return Ok(()),
        };
        if free < self.size / 2 {
            self.release("the disk is nearly full");
        }
        let above = free.saturating_sub(self.size);
        if above < len {
            *credit = 0;
            return Err(StoreError::NoSpace(dir.to_owned()));
        }
        *credit = (above - len).min(RECHECK_BYTES);
        Ok(())
    }

    /// Whether `len` bytes can be copied (by compaction, which frees far more once the copy
    /// is committed) and still leave R/8 free for the metadata; without headroom, whether
    /// they fit at all.
    pub(super) fn can_copy(&self, len: u64) -> bool {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        match space(dir) {
            Ok((free, _)) => free >= len.saturating_add(self.size / 8),
            Err(_) => true,
        }
    }

    /// Makes the reserve file again if it is missing and the disk has 3R free (after a gc).
    pub(super) fn replenish(&self) {
        if self.size == 0 || self.path.exists() {
            return;
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        match space(dir) {
            Ok((free, _)) if free >= self.size.saturating_mul(3) => {}
            _ => return,
        }
        *self.credit.lock() = 0;
        if let Err(e) = self.make(dir) {
            tracing::warn!(error = %e, path = %self.path.display(), "reserve file not made");
        }
    }

    /// Writes the reserve under a temporary name, allocated and synced, then renames it.
    fn make(&self, dir: &Path) -> io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let result = (|| {
            let mut f = File::create(&tmp)?;
            if rustix::fs::fallocate(&f, rustix::fs::FallocateFlags::empty(), 0, self.size).is_err()
            {
                // No fallocate here: zeros, written, take the space as surely.
                let zeros = vec![0u8; 1 << 20];
                let mut left = self.size;
                while left > 0 {
                    let n = left.min(zeros.len() as u64) as usize;
                    f.write_all(&zeros[..n])?;
                    left -= n as u64;
                }
            }
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            File::open(dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Deletes the reserve file, if there is one, handing its room to whatever needs it.
    fn release(&self, why: &str) {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {
                let dir = self.path.parent().unwrap_or(Path::new("."));
                if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
                    tracing::debug!(error = %e, "directory sync after releasing the reserve");
                }
                tracing::warn!(
                    path = %self.path.display(),
                    bytes = self.size,
                    "{why}: released the reserve file; delete files and run `fossa gc` to free space"
                );
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(error = %e, path = %self.path.display(), "reserve file not released")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_is_one_percent_within_bounds() {
        // FOSSA_RESERVE_BYTES is not set in tests.
        assert_eq!(reserve_size(1 << 30), 10_737_418);
        assert_eq!(reserve_size(100 << 20), MIN_RESERVE);
        assert_eq!(reserve_size(1 << 40), MAX_RESERVE);
        assert_eq!(reserve_size(2 << 20), 256 << 10);
    }

    #[test]
    fn the_reserve_is_made_released_and_made_again() {
        let d = tempfile::tempdir().unwrap();
        let h = Headroom {
            path: d.path().join(RESERVE_FILE),
            size: 1 << 20,
            credit: Mutex::new(0),
        };
        h.replenish();
        let len = std::fs::metadata(&h.path).unwrap().len();
        assert_eq!(len, 1 << 20);
        h.release("test");
        assert!(!h.path.exists());
        h.replenish();
        assert!(h.path.exists());
        assert!(!h.path.with_extension("tmp").exists());
    }

    #[test]
    fn admit_refuses_what_would_cross_the_floor() {
        let d = tempfile::tempdir().unwrap();
        let (free, _) = space(d.path()).unwrap();
        let h = Headroom {
            path: d.path().join(RESERVE_FILE),
            size: free / 2,
            credit: Mutex::new(0),
        };
        h.admit(1).unwrap();
        // More than the whole room above the floor can never be admitted.
        let e = h.admit(free).unwrap_err();
        assert!(matches!(e, StoreError::NoSpace(_)), "{e:?}");
        // The refusal reset the credit: a small block reads free space again and fits.
        h.admit(4096).unwrap();
    }
}
