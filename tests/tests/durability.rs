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

/// Free bytes (for an unprivileged writer) of the filesystem holding `path`.
fn free_bytes(path: &Path) -> Result<u64> {
    let v = rustix::fs::statvfs(path).context("statvfs")?;
    Ok(v.f_bavail * v.f_frsize)
}

/// Fills the filesystem holding `path` (a new file there) until a write fails with ENOSPC.
fn fill_up(path: &Path) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    let chunk = vec![0x5au8; 64 << 10];
    loop {
        match f.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => return Err(e.into()),
        }
    }
    // The last partial chunk may have taken less than a page; take what is left.
    while f.write_all(&[0u8]).is_ok() {}
    Ok(())
}

#[test]
fn a_volume_killed_on_a_full_disk_mounts_again_and_gc_frees_room() -> Result<()> {
    // 48 MiB: the headroom is its minimum, 4 MiB (docs/ARCHITECTURE.md, "The path of a
    // write", 7).
    let mut vol = Volume::on_tmpfs("48m")?;
    vol.mount()?;
    let reserve = vol.data_dir().join("blocks/reserve");
    ensure!(reserve.exists(), "no reserve file made on a disk with room");
    // fossa's own writes stop at the floor: they never take the disk below the headroom.
    let mut synced = Vec::new();
    for i in 0..200u64 {
        let bytes = random_bytes(300 + i, 1 << 20);
        let path = vol.path(format!("f{i:03}"));
        match write_fsynced(&path, &bytes) {
            Ok(()) => synced.push((path, hash_hex(&bytes))),
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => return Err(e.into()),
        }
    }
    ensure!(synced.len() < 200, "200 MiB fit into a 48 MiB tmpfs");
    let free = free_bytes(&vol.home())?;
    ensure!(
        free >= 2 << 20,
        "fossa's writes left {free} bytes free, below half the 4 MiB floor"
    );
    // Make room (delete, gc: compaction copies the live rest, so most must go), then leave
    // files closed but not yet committed to meta.redb (the metadata journal holds them), and
    // kill the daemon: the next open must write to replay them.
    for (path, _) in synced.drain(2..) {
        std::fs::remove_file(path)?;
    }
    let out = vol.fossa(&["gc", "--json"])?;
    ensure!(
        out.status.success(),
        "gc failed: {}\n{}",
        out.stderr,
        vol.log_tail_lines(30)
    );
    let mut closed = Vec::new();
    for i in 0..8u64 {
        let path = vol.path(format!("closed{i}"));
        ensure!(
            write_close_checked(&path, 100_000 + i as usize)?,
            "close of {} failed after gc made room ({} bytes free; gc said {}):\n{}",
            path.display(),
            free_bytes(&vol.home())?,
            out.stdout,
            vol.log_tail_lines(20)
        );
        let bytes = vec![b'x'; 100_000 + i as usize];
        closed.push((path, hash_hex(&bytes)));
    }
    vol.kill_daemon()?;
    vol.clear_stale_mount()?;
    // Something else fills the disk to the last byte while fossa is down.
    fill_up(&vol.home().join("filler"))?;
    ensure!(free_bytes(&vol.home())? == 0, "the disk is not full");
    vol.mount()
        .with_context(|| "the volume did not mount on the full disk".to_string())?;
    ensure!(
        !reserve.exists(),
        "the reserve was not given up on a full disk"
    );
    for (path, want) in synced.iter().chain(&closed) {
        let got = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        ensure!(hash_hex(&got) == *want, "{} changed", path.display());
    }
    // Deleting files and gc give room back, and the reserve is made again.
    let before = free_bytes(&vol.home())?;
    for (path, _) in synced.iter().chain(&closed) {
        std::fs::remove_file(path)
            .with_context(|| format!("deleting {} on the full disk", path.display()))?;
    }
    let out = vol.fossa(&["gc", "--json"])?;
    ensure!(out.status.success(), "gc failed: {}", out.stderr);
    let after = free_bytes(&vol.home())?;
    ensure!(
        after > before + (2 << 20),
        "gc freed {} bytes",
        after.saturating_sub(before)
    );
    // Once the disk has room again (the filler goes), the next gc makes the reserve again.
    std::fs::remove_file(vol.home().join("filler"))?;
    ensure!(vol.fossa(&["gc"])?.status.success(), "gc failed");
    ensure!(reserve.exists(), "the reserve was not made again after gc");
    vol.umount()?;
    vol.fsck_json_clean("after the full disk")
}
