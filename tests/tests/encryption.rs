//! Nothing readable reaches the disk, and the wrong key opens nothing.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail, ensure};
use fossa_tests::{Volume, assert_exit, assert_success, require_tool, run};

const SENTENCE: &str = "The quick brown fossa jumps over the lazy encrypted lemur. ";
const SECRET_LINE: &str = "SECRET-LINE: launch code 7f3a-91bc-0042, do not store in the clear!!";
const DIR_NAME: &str = "TOPSECRET-dirname-Quokka";
const FILE_NAME: &str = "TOPSECRET-name-Wombat.txt";
const SMALL_NAME: &str = "TOPSECRET-name-small-Echidna";
const LINK_TARGET: &str = "TOPSECRET-symlink-target-Platypus";
const XATTR_VALUE: &str = "TOPSECRET-xattr-value-Numbat";

fn secret_line() -> String {
    let mut line = SECRET_LINE.to_owned();
    while line.len() < 99 {
        line.push('#');
    }
    line.push('\n');
    line
}

/// Every regular file under `dir`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            walk(&entry.path(), out)?;
        } else if ft.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

#[test]
fn no_plaintext_on_disk() -> Result<()> {
    require_tool("setfattr")?;
    let mut vol = Volume::new()?;
    vol.mount()?;
    let dir = vol.path(DIR_NAME);
    std::fs::create_dir(&dir)?;
    std::fs::write(
        dir.join(FILE_NAME),
        SENTENCE.repeat(65_536 / SENTENCE.len() + 1),
    )?;
    std::fs::write(vol.path(SMALL_NAME), secret_line())?;
    symlink(LINK_TARGET, vol.path("a-link"))?;
    let out = run(Command::new("setfattr")
        .args(["-n", "user.note", "-v", XATTR_VALUE])
        .arg(vol.path(SMALL_NAME)))?;
    assert_success(&out, "setfattr")?;
    assert_success(&run(&mut Command::new("sync"))?, "sync")?;
    vol.umount()?;

    let markers = [
        SENTENCE.trim(),
        SECRET_LINE,
        DIR_NAME,
        FILE_NAME,
        SMALL_NAME,
        LINK_TARGET,
        XATTR_VALUE,
    ];
    let mut files = Vec::new();
    walk(&vol.data_dir(), &mut files)?;
    ensure!(
        !files.is_empty(),
        "no files under {}",
        vol.data_dir().display()
    );
    let mut total = 0;
    let mut leaks = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file)?;
        total += bytes.len();
        for marker in markers {
            if bytes.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                leaks.push(format!("{} contains {marker:?}", file.display()));
            }
        }
    }
    ensure!(
        total >= 65_536,
        "only {total} bytes stored under data/ for 64 KiB of content"
    );
    if !leaks.is_empty() {
        bail!("plaintext found on disk:\n  {}", leaks.join("\n  "));
    }
    Ok(())
}

#[test]
fn wrong_key_file_mounts_nothing() -> Result<()> {
    let mut vol = Volume::new()?;
    vol.mount()?;
    std::fs::write(vol.path("hello"), b"hello")?;
    vol.umount()?;
    let wrong = vol.root().join("wrong.keyfile");
    std::fs::write(&wrong, format!("{}\n", "5a".repeat(32)))?;
    let out = vol.mount_expecting_failure(&vol.mnt(), &wrong, &[])?;
    assert_exit(
        &out,
        1,
        "wrong passphrase or key file",
        "mount with the wrong key file",
    )?;
    ensure!(
        !vol.is_mounted()?,
        "something is mounted after a failed mount"
    );
    ensure!(
        std::fs::read_dir(vol.mnt())?.next().is_none(),
        "mount point is not empty"
    );
    let status = run(fossa_tests::fossa(&["--home"])?
        .arg(vol.home())
        .arg("--key-file")
        .arg(&wrong)
        .args(["status", "--json"]))?;
    ensure!(
        !status.success()
            && status
                .stderr
                .contains("fossa: error: wrong passphrase or key file"),
        "status with the wrong key file: {}",
        status.describe()
    );
    // The right key still works afterwards.
    vol.mount()?;
    ensure!(
        std::fs::read(vol.path("hello"))? == b"hello",
        "content changed"
    );
    vol.umount()
}
