//! Setuid, setgid and file capabilities are dropped where Linux drops them. fossa does this
//! itself (it takes FUSE_HANDLE_KILLPRIV_V2, which spares every write a `getxattr` round trip),
//! so these tests fail if it forgets: the kernel no longer does it for a FUSE mount.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use anyhow::{Result, ensure};
use fossa_tests::{Volume, assert_success, require_tool, run};

/// An unprivileged user (no CAP_FSETID), as on every Linux system.
const NOBODY: u32 = 65534;

/// Runs Python `code` with `p` bound to `path`, as root or (dropping groups and ids first)
/// as `NOBODY`.
fn py(as_nobody: bool, path: &Path, code: &str) -> Result<()> {
    let drop = match as_nobody {
        true => format!(
            "os.setgroups([]); os.setresgid({NOBODY}, {NOBODY}, {NOBODY}); os.setresuid({NOBODY}, {NOBODY}, {NOBODY}); "
        ),
        false => String::new(),
    };
    let out = run(Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import os, sys, struct; p = sys.argv[1]; {drop}{code}"
        ))
        .arg(path))?;
    assert_success(&out, code)
}

/// A valid `security.capability` value (revision 2, effective, CAP_NET_RAW permitted).
const SET_CAP: &str =
    "os.setxattr(p, 'security.capability', struct.pack('<5I', 0x02000001, 1 << 13, 0, 0, 0))";
const HAS_CAP: &str = "os.getxattr(p, 'security.capability')";
const NO_CAP: &str = "\ntry:\n    os.getxattr(p, 'security.capability'); sys.exit('capability kept')\nexcept OSError as e:\n    assert e.errno == 61, e";

fn mode(path: &Path) -> Result<u32> {
    Ok(std::fs::metadata(path)?.mode() & 0o7777)
}

fn file(vol: &Volume, name: &str, perm: u32) -> Result<std::path::PathBuf> {
    let p = vol.path(name);
    std::fs::write(&p, b"0123456789")?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(perm))?;
    ensure!(
        mode(&p)? == perm,
        "{name}: chmod {perm:o} gave {:o}",
        mode(&p)?
    );
    Ok(p)
}

#[test]
fn unprivileged_writes_truncates_and_chown_drop_setid_bits_and_capabilities() -> Result<()> {
    require_tool("python3")?;
    // Writable handles are direct I/O by default, where the kernel drops nothing itself on a
    // write; with `--cached-writes` they go through the page cache, where it does part of it.
    privileges(&["--allow-other"])?;
    privileges(&["--allow-other", "--cached-writes"])
}

fn privileges(mount_args: &[&str]) -> Result<()> {
    let mut vol = Volume::new()?;
    // The volume's directory is private (0700); nobody must reach the mount through it.
    std::fs::set_permissions(vol.root(), std::fs::Permissions::from_mode(0o755))?;
    vol.mount_with(mount_args)?;
    std::fs::set_permissions(vol.mnt(), std::fs::Permissions::from_mode(0o777))?;

    const WRITE: &str = "f = open(p, 'r+b'); f.write(b'x'); f.close()";
    const CHOWN: &str = "os.chown(p, 65534, -1)";
    // (file, mode before, capability set, operation run as nobody?, operation, mode after)
    let cases: [(&str, u32, bool, bool, &str, u32); 5] = [
        // An unprivileged write: setuid, setgid (group-executable) and the capability go.
        ("written", 0o6777, true, true, WRITE, 0o777),
        // Without group execute, setgid marks mandatory locking and stays.
        ("locking", 0o2766, false, true, WRITE, 0o2766),
        // Root (CAP_FSETID) keeps setuid and setgid; a capability goes on any write (as on
        // ext4).
        ("root-written", 0o6777, true, false, WRITE, 0o6777),
        ("truncated", 0o6777, false, true, "os.truncate(p, 3)", 0o777),
        // A change of owner drops them even when root does it.
        ("chowned", 0o6755, true, false, CHOWN, 0o755),
    ];
    for (name, before, cap, nobody, op, after) in cases {
        let p = file(&vol, name, before)?;
        if cap {
            py(false, &p, SET_CAP)?;
            py(false, &p, HAS_CAP)?;
        }
        py(nobody, &p, op)?;
        ensure!(
            mode(&p)? == after,
            "{name} ({mount_args:?}): {:o}, want {after:o}",
            mode(&p)?
        );
        if cap {
            py(false, &p, NO_CAP)?;
        }
    }
    ensure!(
        std::fs::metadata(vol.path("truncated"))?.len() == 3,
        "truncated length"
    );

    // A directory keeps its setgid bit (it makes new entries inherit the group).
    let d = vol.path("shared");
    std::fs::create_dir(&d)?;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o2775))?;
    std::os::unix::fs::chown(&d, Some(NOBODY), None)?;
    ensure!(
        mode(&d)? == 0o2775,
        "directory after chown: {:o}",
        mode(&d)?
    );

    vol.umount()?;
    Ok(())
}
