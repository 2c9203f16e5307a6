//! Test data: deterministic pseudo-random bytes and content hashes.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use anyhow::{Context, Result};

/// `len` pseudo-random bytes from `seed` (splitmix64): incompressible and distinct per seed,
/// so different seeds never deduplicate against each other.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed ^ 0x5EED_F055_A000_0000;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// BLAKE3 of `bytes`, as hex.
pub fn hash_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Creates (or truncates) `path`, writes `bytes` and fsyncs; an error from any step is returned
/// with its `io::Error` intact (callers check `raw_os_error`).
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Sets the modification (and access) time of `path` to `secs.nsec` without following
/// symlinks: files and directories through their fd (nanoseconds kept), fifos through an
/// `O_RDWR` open (which does not block), symlinks with `touch -h`.
pub fn set_mtime(path: &Path, secs: u64, nsec: u32) -> Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        let out = crate::process::run(
            std::process::Command::new("touch")
                .arg("-h")
                .arg("-d")
                .arg(format!("@{secs}.{nsec:09}"))
                .arg(path),
        )?;
        return crate::process::assert_success(&out, "touch -h");
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(secs, nsec);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(meta.file_type().is_fifo())
        .open(path)
        .with_context(|| format!("opening {} to set its times", path.display()))?;
    file.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
        .with_context(|| format!("setting times of {}", path.display()))
}
