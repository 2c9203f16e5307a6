//! `close` then `sync(1)`/`syncfs` makes a file durable without an fsync: the file survives
//! SIGKILL of the daemon right after the sync (docs/ARCHITECTURE.md, "What `close`, `sync`
//! and `fsync` guarantee").

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use fossa_tests::{Volume, assert_success, hash_hex, random_bytes};

/// Runs `sync` with `args`; fails unless it exits 0.
fn run_sync(args: &[&str]) -> Result<()> {
    let st = Command::new("sync")
        .args(args)
        .status()
        .context("running sync")?;
    ensure!(st.success(), "sync {args:?} failed: {st}");
    Ok(())
}

/// Writes `bytes` to `path` with plain write + close (no fsync).
fn write_plain(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Kills the daemon, detaches the stale mount, mounts again.
fn crash_and_remount(vol: &mut Volume) -> Result<()> {
    vol.kill_daemon()?;
    vol.clear_stale_mount()?;
    vol.mount()
}

fn fsck_clean(vol: &Volume) -> Result<()> {
    let out = vol.fossa(&["fsck", "--json"])?;
    assert_success(&out, "fossa fsck --json after the crash")?;
    let json: serde_json::Value = serde_json::from_str(&out.stdout)
        .with_context(|| format!("fsck --json is not JSON: {}", out.describe()))?;
    ensure!(
        json["clean"] == serde_json::Value::Bool(true),
        "fsck: {json}"
    );
    Ok(())
}

#[test]
fn closed_then_synced_files_survive_sigkill() -> Result<()> {
    let mut vol = Volume::new()?;
    vol.mount()?;
    let dir = vol.path("d");
    std::fs::create_dir(&dir)?;
    // A 3 MiB file (several chunks), a small one, and one synced with syncfs on the mount.
    let big = random_bytes(17, 3 << 20);
    let small = b"hello, durable world\n".to_vec();
    write_plain(&dir.join("big"), &big)?;
    write_plain(&dir.join("small"), &small)?;
    run_sync(&[])?;
    let third = random_bytes(18, 200_000);
    write_plain(&vol.path("third"), &third)?;
    run_sync(&["-f", &vol.mnt().to_string_lossy()])?;
    crash_and_remount(&mut vol)?;

    for (path, want) in [
        (dir.join("big"), &big),
        (dir.join("small"), &small),
        (vol.path("third"), &third),
    ] {
        let got = std::fs::read(&path)
            .with_context(|| format!("{} is gone after sync + SIGKILL", path.display()))?;
        ensure!(
            hash_hex(&got) == hash_hex(want),
            "{}: {} bytes after the crash, {} written",
            path.display(),
            got.len(),
            want.len()
        );
    }
    // The replayed volume keeps working: a write after the crash survives a second one.
    let again = random_bytes(19, 70_000);
    write_plain(&dir.join("again"), &again)?;
    run_sync(&[])?;
    crash_and_remount(&mut vol)?;
    ensure!(
        std::fs::read(dir.join("again"))? == again,
        "second crash lost a file"
    );
    ensure!(
        std::fs::read(dir.join("big"))? == big,
        "second crash lost big"
    );
    vol.umount()?;
    fsck_clean(&vol)
}
