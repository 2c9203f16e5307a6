//! `close` then `sync(1)`/`syncfs` makes a file durable without an fsync: the file survives
//! SIGKILL of the daemon right after the sync (docs/ARCHITECTURE.md, "What `close`, `sync`
//! and `fsync` guarantee").

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use fossa_tests::{Volume, hash_hex, random_bytes};

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

/// Writes `len` bytes to `path` in a child that reports a failed `close` (std's `File`
/// ignores it): whether write and close both succeeded.
fn write_close_checked(path: &Path, len: usize) -> Result<bool> {
    let code = format!(
        "f = open({:?}, 'wb'); f.write(b'x' * {len}); f.close()",
        path.to_string_lossy()
    );
    let st = Command::new("python3")
        .args(["-c", &code])
        .stderr(std::process::Stdio::null())
        .status()?;
    Ok(st.success())
}

/// Kills the daemon, detaches the stale mount, mounts again.
fn crash_and_remount(vol: &mut Volume) -> Result<()> {
    vol.kill_daemon()?;
    vol.clear_stale_mount()?;
    vol.mount()
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
    vol.fsck_json_clean("after the crash")
}

/// Writes `bytes` to `path` and fsyncs it; any error (write, fsync or close) is returned.
fn write_fsynced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[test]
fn a_full_disk_fails_the_write_keeps_what_was_synced_and_the_daemon_carries_on() -> Result<()> {
    let mut vol = Volume::on_tmpfs("48m")?;
    vol.mount()?;
    // Room to free later: a filler on the same tmpfs, outside the mount.
    let filler = vol.home().join("filler");
    std::fs::write(&filler, vec![7u8; 12 << 20])?;
    let mut synced = Vec::new();
    let mut refused = None;
    for i in 0..200u64 {
        let bytes = random_bytes(100 + i, 1 << 20);
        let path = vol.path(format!("f{i:03}"));
        match write_fsynced(&path, &bytes) {
            Ok(()) => synced.push((path, hash_hex(&bytes))),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.context("200 MiB fit into a 48 MiB tmpfs")?;
    ensure!(
        e.raw_os_error() == Some(libc::ENOSPC),
        "the write that did not fit failed with {e}, not ENOSPC"
    );
    ensure!(
        vol.is_mounted()?,
        "the daemon died on the full disk:\n{}",
        vol.log_tail_lines(30)
    );
    // A plain write + close + sync(1) on the full disk must not succeed and lose the file.
    let small = vol.path("small-on-full-disk");
    let plain = write_close_checked(&small, 300_000)?;
    run_sync(&[])?;
    std::fs::remove_file(&filler)?;
    // Space is back: writes succeed again, and what was synced before is intact.
    let after = random_bytes(999, 2 << 20);
    write_fsynced(&vol.path("after"), &after)
        .with_context(|| format!("writing after space returned:\n{}", vol.log_tail_lines(30)))?;
    for (path, want) in &synced {
        let got = std::fs::read(path)?;
        ensure!(
            hash_hex(&got) == *want,
            "{} changed on the full disk",
            path.display()
        );
    }
    crash_and_remount(&mut vol)?;
    ensure!(
        std::fs::read(vol.path("after"))? == after,
        "the write after the full disk was lost"
    );
    if plain {
        let got = std::fs::read(&small).context("close reported success, the file is gone")?;
        ensure!(
            got.len() == 300_000,
            "close reported success, {} bytes kept:\n{}",
            got.len(),
            vol.log_tail_lines(60)
        );
    }
    for (path, want) in &synced {
        let got = std::fs::read(path)?;
        ensure!(
            hash_hex(&got) == *want,
            "{} changed after the crash",
            path.display()
        );
    }
    vol.umount()?;
    vol.fsck_json_clean("after the crash")
}
