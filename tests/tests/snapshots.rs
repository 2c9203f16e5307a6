//! Snapshots: old versions stay readable, read-only and hidden from the root's listing, survive
//! a remount, and go away with `snapshot rm` + `gc`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use fossa_tests::{Volume, assert_success, random_bytes, wait_until};

fn read_only_error(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EROFS) | Some(libc::EPERM))
}

fn expect_read_only(what: &str, result: std::io::Result<()>) -> Result<()> {
    match result {
        Ok(()) => bail!("{what} inside a snapshot succeeded"),
        Err(e) if read_only_error(&e) => Ok(()),
        Err(e) => bail!("{what} inside a snapshot failed with {e}, want EROFS or EPERM"),
    }
}

fn check_s1(snap: &Path, big: &[u8]) -> Result<()> {
    ensure!(
        std::fs::read(snap.join("big"))? == big,
        "snapshot's big differs"
    );
    ensure!(
        std::fs::read(snap.join("deleted.txt"))? == b"soon gone\n",
        "deleted.txt differs"
    );
    ensure!(
        std::fs::read(snap.join("dir/c"))? == b"version 1\n",
        "dir/c differs"
    );
    ensure!(
        !snap.join("created-later").exists(),
        "a file made after the snapshot is in it"
    );
    Ok(())
}

#[test]
fn snapshot_keeps_old_versions_read_only() -> Result<()> {
    let mut vol = Volume::new()?;
    vol.mount()?;
    let big = random_bytes(5, 3 << 20);
    std::fs::write(vol.path("big"), &big)?;
    std::fs::write(vol.path("deleted.txt"), b"soon gone\n")?;
    std::fs::create_dir(vol.path("dir"))?;
    std::fs::write(vol.path("dir/c"), b"version 1\n")?;
    assert_success(
        &vol.fossa(&["snapshot", "s1"])?,
        "fossa snapshot s1 (mounted)",
    )?;

    let mut changed = big.clone();
    changed[1 << 20] ^= 1;
    std::fs::write(vol.path("big"), &changed)?;
    std::fs::remove_file(vol.path("deleted.txt"))?;
    std::fs::write(vol.path("dir/c"), b"version 2, longer\n")?;
    std::fs::write(vol.path("created-later"), b"new\n")?;

    let snap = vol.path(".snapshots/s1");
    check_s1(&snap, &big)?;
    ensure!(
        std::fs::read(vol.path("big"))? == changed,
        "live big differs"
    );
    expect_read_only("creating a file", std::fs::write(snap.join("new"), b"x"))?;
    expect_read_only(
        "overwriting a file",
        std::fs::OpenOptions::new()
            .write(true)
            .open(snap.join("dir/c"))
            .map(drop),
    )?;
    expect_read_only("unlinking a file", std::fs::remove_file(snap.join("big")))?;
    expect_read_only(
        "making a directory",
        std::fs::create_dir(snap.join("newdir")),
    )?;

    let names: Vec<String> = std::fs::read_dir(vol.mnt())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    ensure!(
        !names.iter().any(|n| n == ".snapshots"),
        "readdir of the root shows .snapshots: {names:?}"
    );
    let list = vol.fossa(&["snapshot", "list"])?;
    assert_success(&list, "fossa snapshot list")?;
    ensure!(
        list.stdout
            .lines()
            .any(|l| l.split_whitespace().any(|w| w == "s1")),
        "list lacks s1: {}",
        list.describe()
    );
    let json = vol.fossa(&["snapshot", "list", "--json"])?;
    assert_success(&json, "fossa snapshot list --json")?;
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout)?;
    ensure!(
        parsed.to_string().contains("\"s1\""),
        "snapshot list --json lacks s1: {parsed}"
    );

    vol.umount()?;
    vol.mount()?;
    check_s1(&snap, &big)?;

    assert_success(
        &vol.fossa(&["snapshot", "rm", "s1"])?,
        "fossa snapshot rm s1",
    )?;
    // The kernel may cache the entry briefly; it must go within its entry timeout.
    wait_until(
        Duration::from_secs(5),
        ".snapshots/s1 to vanish after snapshot rm",
        || Ok(!snap.exists()),
    )?;
    assert_success(&vol.fossa(&["gc"])?, "fossa gc after snapshot rm")?;
    ensure!(
        std::fs::read(vol.path("big"))? == changed,
        "live data changed by gc"
    );
    let out = vol.fossa(&["snapshot", "rm", "s1"])?;
    ensure!(
        out.code() == Some(1),
        "rm of an unknown snapshot: want exit 1, {}",
        out.describe()
    );
    vol.umount()
}

#[test]
fn snapshot_unmounted_and_default_name() -> Result<()> {
    let mut vol = Volume::new()?;
    vol.mount()?;
    std::fs::write(vol.path("f"), b"one\n")?;
    vol.umount()?;
    assert_success(
        &vol.fossa(&["snapshot", "offline"])?,
        "fossa snapshot while unmounted",
    )?;
    assert_success(
        &vol.fossa(&["snapshot"])?,
        "fossa snapshot with the default name",
    )?;
    let list = vol.fossa(&["snapshot", "list"])?;
    assert_success(&list, "fossa snapshot list")?;
    let default_name = list
        .stdout
        .split_whitespace()
        .find(|w| is_utc_name(w))
        .map(str::to_owned);
    let Some(default_name) = default_name else {
        bail!(
            "no snapshot named YYYY-MM-DDTHH-MM-SSZ in: {}",
            list.describe()
        );
    };
    vol.mount()?;
    std::fs::write(vol.path("f"), b"two\n")?;
    for name in ["offline", default_name.as_str()] {
        let path = vol.path(format!(".snapshots/{name}/f"));
        ensure!(
            std::fs::read(&path)? == b"one\n",
            "{} differs",
            path.display()
        );
    }
    vol.umount()
}

/// `YYYY-MM-DDTHH-MM-SSZ`.
fn is_utc_name(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 | 13 | 16 => *c == b'-',
            10 => *c == b'T',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}
