//! Reading `/proc/self/mountinfo`, lazy unmounts, and tmpfs fixtures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::process::{run_timeout, wait_until};

/// The filesystem type mounted exactly at `path`, if `path` is a mount point (the topmost
/// mount wins).
pub fn mount_fstype(path: &Path) -> Result<Option<String>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let want = path.to_string_lossy();
    let mut found = None;
    for line in info.lines() {
        // id parent maj:min root mountpoint opts [optional...] - fstype source superopts
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(mountpoint) = fields.get(4) else {
            continue;
        };
        if unescape(mountpoint) != want {
            continue;
        }
        let fstype = fields
            .iter()
            .position(|f| *f == "-")
            .and_then(|i| fields.get(i + 1))
            .map(|s| s.to_string());
        found = fstype;
    }
    Ok(found)
}

/// Whether a FUSE filesystem is mounted at `path`.
pub fn fuse_mounted(path: &Path) -> Result<bool> {
    Ok(mount_fstype(path)?.is_some_and(|t| t.starts_with("fuse")))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let s = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(s, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches whatever FUSE filesystem is at `path` (`fusermount3 -uz`, falling back to
/// `umount -l`) and waits, bounded, until it is gone. Works on a dead daemon's stale mount.
pub fn lazy_unmount(path: &Path) -> Result<()> {
    if mount_fstype(path)?.is_none() {
        return Ok(());
    }
    let timeout = Duration::from_secs(10);
    let _ = run_timeout(Command::new("fusermount3").arg("-uz").arg(path), timeout);
    if mount_fstype(path)?.is_some() {
        let _ = run_timeout(Command::new("umount").arg("-l").arg(path), timeout);
    }
    wait_until(timeout, "the lazy unmount", || {
        Ok(mount_fstype(path)?.is_none())
    })
}

/// A tmpfs of a given size mounted on a directory (needs root); unmounted lazily on drop.
#[derive(Debug)]
pub struct TmpfsMount {
    path: PathBuf,
}

impl TmpfsMount {
    /// Mounts a tmpfs with `options` (e.g. `size=24m` or `ro,size=1m`) on the existing,
    /// empty directory `path`.
    pub fn new(path: &Path, options: &str) -> Result<Self> {
        let out = run_timeout(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", options, "fossa-e2e"])
                .arg(path),
            Duration::from_secs(10),
        )?;
        if !out.success() {
            bail!("mounting a tmpfs needs root: {}", out.describe());
        }
        Ok(Self {
            path: path.to_owned(),
        })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = run_timeout(
            Command::new("umount").arg("-l").arg(&self.path),
            Duration::from_secs(10),
        );
    }
}
