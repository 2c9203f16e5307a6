//! Everything written survives an unmount and a remount by a new process: bytes at awkward
//! sizes, modes, owners, nanosecond mtimes, xattrs, symlinks, hard links and a fifo.

use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, chown, lchown, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use fossa_tests::tree::{self, Compare, Kind};
use fossa_tests::{Volume, assert_success, hash_hex, random_bytes, require_tool, run, set_mtime};

/// What one entry must look like after it was made.
struct Want {
    path: PathBuf,
    kind: Kind,
    mode: u32,
    owner: (u32, u32),
    mtime: (u64, u32),
    content: Option<Vec<u8>>,
    nlink: u64,
    xattrs: Vec<(&'static str, &'static str)>,
}

const SIZES: &[(&str, usize)] = &[
    ("zero", 0),
    ("one", 1),
    ("f4095", 4095),
    ("f65537", 65_537),
    ("five-mib", 5 << 20),
];

/// Builds the tree under `root` (inside the mount) and returns what every entry must be.
fn build(root: &Path) -> Result<Vec<Want>> {
    let mut wants = Vec::new();
    let mut stamp = 0u64;
    let mut time = || {
        stamp += 1;
        (
            1_600_000_000 + stamp * 86_400,
            u32::try_from(stamp * 7_654_321).unwrap_or(0),
        )
    };
    std::fs::create_dir_all(root.join("d/sub/deep"))?;
    for (i, (name, len)) in SIZES.iter().enumerate() {
        let bytes = random_bytes(100 + i as u64, *len);
        let path = root.join("d").join(name);
        std::fs::write(&path, &bytes)?;
        let mode = [0o644, 0o600, 0o755, 0o640, 0o444][i];
        wants.push(file(path, mode, (0, 0), time(), bytes));
    }
    let owned = root.join("d/sub/owned by 1234 ünï");
    std::fs::write(&owned, b"owned\n")?;
    chown(&owned, Some(1234), Some(5678))?;
    wants.push(file(
        owned,
        0o640,
        (1234, 5678),
        time(),
        b"owned\n".to_vec(),
    ));
    let hard_a = root.join("hard-a");
    std::fs::write(&hard_a, b"hard linked\n")?;
    std::fs::hard_link(&hard_a, root.join("d/sub/deep/hard-b"))?;
    let mut w = file(hard_a, 0o604, (0, 0), time(), b"hard linked\n".to_vec());
    w.nlink = 2;
    wants.push(w);
    let fifo = root.join("fifo");
    assert_success(
        &run(Command::new("mkfifo").arg("-m").arg("620").arg(&fifo))?,
        "mkfifo",
    )?;
    wants.push(Want {
        kind: Kind::Fifo,
        content: None,
        ..file(fifo, 0o620, (0, 0), time(), Vec::new())
    });
    for (link, target) in [
        ("rel-link", "d/one"),
        ("dangling-link", "/nonexistent/target"),
    ] {
        symlink(target, root.join(link))?;
    }
    lchown(root.join("rel-link"), Some(1234), Some(5678))?;
    for (path, mode, owner) in [
        ("d/sub/deep", 0o750, (0, 0)),
        ("d/sub", 0o700, (1234, 5678)),
        ("d", 0o755, (0, 0)),
    ] {
        let path = root.join(path);
        chown(&path, Some(owner.0), Some(owner.1))?;
        wants.push(Want {
            kind: Kind::Dir,
            content: None,
            ..file(path, mode, owner, time(), Vec::new())
        });
    }
    set_xattrs(root, &mut wants)?;
    for w in &wants {
        std::fs::set_permissions(&w.path, std::fs::Permissions::from_mode(w.mode))?;
        set_mtime(&w.path, w.mtime.0, w.mtime.1)?;
    }
    Ok(wants)
}

fn file(path: PathBuf, mode: u32, owner: (u32, u32), mtime: (u64, u32), bytes: Vec<u8>) -> Want {
    Want {
        path,
        kind: Kind::File,
        mode,
        owner,
        mtime,
        content: Some(bytes),
        nlink: 1,
        xattrs: Vec::new(),
    }
}

fn set_xattrs(root: &Path, wants: &mut [Want]) -> Result<()> {
    let plan: &[(&str, &str, &str)] = &[
        ("d/one", "user.x", "val"),
        ("d/one", "user.second", "0x00ff10"),
        ("d/zero", "user.empty-file-attr", "on an empty file"),
        ("d", "user.dir", "directory attribute"),
    ];
    for (rel, name, value) in plan {
        let out = run(Command::new("setfattr")
            .args(["-n", name, "-v", value])
            .arg(root.join(rel)))?;
        assert_success(&out, "setfattr")?;
        let w = wants
            .iter_mut()
            .find(|w| w.path == root.join(rel))
            .context("xattr target not in the plan")?;
        w.xattrs.push((name, value));
    }
    Ok(())
}

/// Checks the recorded tree against the plan, so that a filesystem dropping an attribute
/// cannot pass by dropping it consistently.
fn check_plan(root: &Path, wants: &[Want], got: &tree::Tree) -> Result<()> {
    let mut problems = Vec::new();
    for w in wants {
        let rel = w.path.strip_prefix(root)?;
        let Some(e) = got.get(rel) else {
            problems.push(format!("{}: missing", rel.display()));
            continue;
        };
        let want_ns = i128::from(w.mtime.0) * 1_000_000_000 + i128::from(w.mtime.1);
        let want_hash = w.content.as_ref().map(|c| hash_hex(c));
        let want_x: BTreeMap<String, String> = w
            .xattrs
            .iter()
            .map(|(k, v)| (k.to_string(), hex_value(v)))
            .collect();
        let checks = [
            (
                "type",
                e.kind == w.kind,
                format!("{:?} vs {:?}", e.kind, w.kind),
            ),
            (
                "mode",
                e.mode == w.mode,
                format!("{:o} vs {:o}", e.mode, w.mode),
            ),
            (
                "owner",
                (e.uid, e.gid) == w.owner,
                format!("{}:{} vs {:?}", e.uid, e.gid, w.owner),
            ),
            (
                "mtime",
                e.mtime_ns == want_ns,
                format!("{} vs {want_ns}", e.mtime_ns),
            ),
            ("content", e.hash == want_hash, format!("{} bytes", e.size)),
            (
                "nlink",
                e.kind == Kind::Dir || e.nlink == w.nlink,
                format!("{} vs {}", e.nlink, w.nlink),
            ),
            (
                "xattrs",
                e.xattrs == want_x,
                format!("{:?} vs {want_x:?}", e.xattrs),
            ),
        ];
        for (what, ok, detail) in checks {
            if !ok {
                problems.push(format!("{}: {what}: got {detail}", rel.display()));
            }
        }
    }
    let link = got.get(Path::new("rel-link")).context("rel-link missing")?;
    if link.target.as_deref() != Some(Path::new("d/one")) || (link.uid, link.gid) != (1234, 5678) {
        problems.push(format!("rel-link: {link:?}"));
    }
    if !problems.is_empty() {
        bail!(
            "the tree on the mount is not what was written:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// setfattr values: `0x..` is hex, anything else is text; getfattr -e hex prints hex.
fn hex_value(v: &str) -> String {
    match v.strip_prefix("0x") {
        Some(h) => h.to_owned(),
        None => v.bytes().map(|b| format!("{b:02x}")).collect(),
    }
}

#[test]
fn everything_survives_remount() -> Result<()> {
    require_tool("setfattr")?;
    require_tool("getfattr")?;
    let mut vol = Volume::new()?;
    vol.mount()?;
    let root = vol.path("p");
    std::fs::create_dir(&root)?;
    let wants = build(&root)?;
    let before = tree::scan(&root, true)?;
    check_plan(&root, &wants, &before)?;
    let first_pid = vol.daemon_pid();
    vol.umount()?;
    vol.mount()?;
    if vol.daemon_pid() == first_pid {
        bail!("harness: remount did not start a new process");
    }
    let after = tree::scan(&root, true)?;
    let cmp = Compare {
        root: false,
        ..Compare::ALL
    };
    tree::assert_same(&before, &after, cmp, "after unmount and remount")?;
    check_plan(&root, &wants, &after)?;
    vol.umount()
}

#[test]
fn data_survives_sigterm_of_foreground_mount() -> Result<()> {
    let mut vol = Volume::new()?;
    vol.mount()?;
    let bytes = random_bytes(7, 3 << 20);
    std::fs::write(vol.path("written-before-sigterm"), &bytes)?;
    let pid = vol.daemon_pid().context("not mounted")?;
    assert_success(
        &run(Command::new("kill").arg("-TERM").arg(pid.to_string()))?,
        "kill -TERM",
    )?;
    let status = vol.wait_daemon_exit()?;
    if !status.success() || vol.is_mounted()? {
        bail!(
            "after SIGTERM the daemon exited with {status}, mounted: {}",
            vol.is_mounted()?
        );
    }
    vol.mount()?;
    if std::fs::read(vol.path("written-before-sigterm"))? != bytes {
        bail!("content written before SIGTERM changed");
    }
    vol.umount()
}
