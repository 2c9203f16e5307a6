//! Reading `/proc/self/mountinfo`: is a directory a mount point, and is it a fossa mount?
use std::io;
use std::path::{Path, PathBuf};

/// One mount from `/proc/self/mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    /// Where it is mounted.
    pub(crate) mountpoint: PathBuf,
    /// Filesystem type, e.g. `fuse.fossa`.
    pub(crate) fstype: String,
    /// Mount source (a FUSE filesystem's `fsname`).
    pub(crate) source: String,
    /// Device as `major:minor`, which names the mount's `/sys/class/bdi` entry.
    pub(crate) dev: String,
}

impl Mount {
    /// Whether this is a fossa FUSE mount (fsname `fossa`).
    pub(crate) fn is_fossa(&self) -> bool {
        self.fstype.starts_with("fuse") && self.source == "fossa"
    }
}

/// The innermost mount at exactly `path` (which must be canonical), if any.
pub(crate) fn mount_at(path: &Path) -> io::Result<Option<Mount>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    // Later lines are mounted on top of earlier ones.
    Ok(parse(&text)
        .into_iter()
        .rev()
        .find(|m| m.mountpoint == path))
}

/// The absolute path of `dir` with its parent canonicalized, without touching `dir` itself
/// (a dead FUSE mount there answers "Transport endpoint is not connected").
pub(crate) fn resolve(dir: &Path) -> io::Result<PathBuf> {
    let abs = std::path::absolute(dir)?;
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => Ok(parent.canonicalize()?.join(name)),
        _ => abs.canonicalize(),
    }
}

/// Parses the text of a mountinfo file, skipping malformed lines.
pub(crate) fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let (before, after) = line.split_once(" - ")?;
    let mut fields = before.split(' ');
    let dev = fields.nth(2)?;
    let mountpoint = fields.nth(1)?;
    let mut rest = after.split(' ');
    let fstype = rest.next()?;
    let source = rest.next()?;
    Some(Mount {
        mountpoint: PathBuf::from(unescape(mountpoint)),
        fstype: unescape(fstype),
        source: unescape(source),
        dev: dev.to_string(),
    })
}

/// Undoes the kernel's octal escapes (`\040` for a space, …).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
98 22 0:55 / /tmp/my\\040mnt rw,nosuid,nodev,relatime shared:50 - fuse.fossa fossa rw,user_id=0
99 22 0:56 / /tmp/other rw - fuse.sshfs host:/x rw
garbage line
";

    #[test]
    fn parses_mount_points_and_types() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].mountpoint, Path::new("/tmp/my mnt"));
        assert_eq!(m[1].fstype, "fuse.fossa");
        assert_eq!(m[1].dev, "0:55");
        assert!(m[1].is_fossa());
        assert!(!m[2].is_fossa());
        assert!(!m[0].is_fossa());
    }

    #[test]
    fn unescapes_octal_only() {
        assert_eq!(unescape("a\\040b\\134c"), "a b\\c");
        assert_eq!(unescape("a\\09"), "a\\09");
    }

    #[test]
    fn root_is_a_mount_point_and_resolve_keeps_the_name() {
        assert!(mount_at(Path::new("/")).unwrap().is_some());
        let d = tempfile::tempdir().unwrap();
        let r = resolve(&d.path().join("x")).unwrap();
        assert_eq!(r.file_name().unwrap(), "x");
        assert!(r.is_absolute());
    }
}
