//! A sample tree exercising what archivers and copiers must preserve: nested directories,
//! odd names (spaces, unicode, leading dash, 200 bytes long), modes including sticky, empty and
//! multi-chunk files, relative, dangling and directory symlinks, a three-way hard link, and
//! distinct nanosecond mtimes on every file and directory.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use anyhow::Result;

use crate::data::{random_bytes, set_mtime};

/// Directories, relative to the root, with their modes (parents first).
const DIRS: &[(&str, u32)] = &[
    ("a", 0o755),
    ("a/b", 0o700),
    ("a/b/c", 0o750),
    ("dir with spaces", 0o755),
    ("ünïcødé-目录", 0o711),
    ("tmp-sticky", 0o1777),
];

/// Regular files: path, mode, size, seed of their pseudo-random content.
const FILES: &[(&str, u32, usize, u64)] = &[
    ("a/file.txt", 0o644, 1234, 1),
    ("a/b/exec.sh", 0o755, 300, 2),
    ("a/b/c/secret", 0o600, 4096, 3),
    ("readonly", 0o444, 17, 4),
    ("empty", 0o644, 0, 5),
    ("big.bin", 0o640, (1 << 20) + 3, 6),
    ("dir with spaces/file with spaces.txt", 0o644, 777, 7),
    ("ünïcødé-目录/файл-✓.bin", 0o600, 100 * 1024, 8),
    ("-leading-dash", 0o644, 10, 9),
    ("name=with=equals & ampersand", 0o644, 11, 10),
    ("tmp-sticky/inside", 0o666, 12, 11),
];

/// Symlinks: path, target.
const SYMLINKS: &[(&str, &str)] = &[
    ("link-to-file", "a/file.txt"),
    ("a/b/link-up", "../../readonly"),
    ("dangling", "does/not/exist"),
    ("link-to-dir", "a/b"),
];

/// Hard links: new path, existing path.
const HARDLINKS: &[(&str, &str)] = &[("a/hard1", "a/file.txt"), ("hard2", "a/file.txt")];

/// Creates the sample tree inside the existing directory `root` and sets `root`'s own mtime.
pub fn make_sample_tree(root: &Path) -> Result<()> {
    let long_name = format!("{}.txt", "l".repeat(196));
    for (dir, _) in DIRS {
        std::fs::create_dir(root.join(dir))?;
    }
    for (path, _, len, seed) in FILES {
        std::fs::write(root.join(path), random_bytes(*seed, *len))?;
    }
    std::fs::write(root.join(&long_name), b"long name\n")?;
    for (link, target) in SYMLINKS {
        symlink(target, root.join(link))?;
    }
    for (new, old) in HARDLINKS {
        std::fs::hard_link(root.join(old), root.join(new))?;
    }
    let mut stamp = 0u64;
    let mut next_time = || {
        stamp += 1;
        (
            1_500_000_000 + stamp * 3_600,
            u32::try_from(stamp * 111_111_111 % 1_000_000_000).unwrap_or(0),
        )
    };
    for (path, mode, _, _) in FILES {
        std::fs::set_permissions(root.join(path), std::fs::Permissions::from_mode(*mode))?;
        let (s, n) = next_time();
        set_mtime(&root.join(path), s, n)?;
    }
    let (s, n) = next_time();
    set_mtime(&root.join(&long_name), s, n)?;
    for (dir, mode) in DIRS.iter().rev() {
        std::fs::set_permissions(root.join(dir), std::fs::Permissions::from_mode(*mode))?;
        let (s, n) = next_time();
        set_mtime(&root.join(dir), s, n)?;
    }
    let (s, n) = next_time();
    set_mtime(root, s, n)
}
