//! Bad input and hostile conditions give one clear error line and exit 1, never a hang or a
//! half-made mount; a full disk loses nothing that fsync acknowledged.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use fossa_tests::{
    TmpfsMount, Volume, assert_exit, assert_success, fossa, fuse_mounted, mount_expecting_failure,
    random_bytes, run, write_synced,
};

#[test]
fn mount_on_missing_dir() -> Result<()> {
    let vol = Volume::new()?;
    let missing = vol.root().join("no-such-dir");
    let out = vol.mount_expecting_failure(&missing, &vol.key_file(), &[])?;
    assert_exit(&out, 1, "no such directory", "mount on a missing directory")?;
    ensure!(
        out.stderr.contains(&*missing.to_string_lossy()),
        "error does not name the path: {}",
        out.describe()
    );
    ensure!(!missing.exists(), "mount created the missing directory");
    Ok(())
}

#[test]
fn mount_on_a_mount_point() -> Result<()> {
    let mut first = Volume::new()?;
    first.mount()?;
    let second = Volume::new()?;
    let out = second.mount_expecting_failure(&first.mnt(), &second.key_file(), &[])?;
    assert_exit(&out, 1, "already a mount point", "mount over a fossa mount")?;
    ensure!(first.is_mounted()?, "the first mount went away");
    std::fs::write(first.path("still-works"), b"yes")?;

    let tmpfs_dir = second.root().join("tmpfs");
    std::fs::create_dir(&tmpfs_dir)?;
    let _tmpfs = TmpfsMount::new(&tmpfs_dir, "size=1m")?;
    let out = second.mount_expecting_failure(&tmpfs_dir, &second.key_file(), &[])?;
    assert_exit(&out, 1, "already a mount point", "mount over a tmpfs")?;
    first.umount()
}

#[test]
fn same_volume_twice_is_in_use() -> Result<()> {
    let mut vol = Volume::new()?;
    vol.mount()?;
    let other = vol.root().join("mnt2");
    std::fs::create_dir(&other)?;
    let out = vol.mount_expecting_failure(&other, &vol.key_file(), &[])?;
    assert_exit(&out, 1, "in use", "mounting a mounted volume again")?;
    ensure!(!fuse_mounted(&other)?, "second mount point is mounted");
    std::fs::write(vol.path("still-works"), b"yes")?;
    vol.umount()
}

fn init_with_home(home: &Path, key: &Path) -> Result<fossa_tests::Output> {
    run(fossa(&["--home"])?
        .arg(home)
        .arg("init")
        .arg("--key-file")
        .arg(key))
}

#[test]
fn unwritable_home_is_a_clear_error() -> Result<()> {
    let vol = Volume::uninitialised()?;
    let key = vol.key_file();
    let proc_home = Path::new("/proc/fossa-e2e-no-such/home");
    let out = init_with_home(proc_home, &key)?;
    assert_exit(
        &out,
        1,
        "/proc/fossa-e2e-no-such",
        "init with --home under /proc",
    )?;

    let ro = vol.root().join("ro");
    std::fs::create_dir(&ro)?;
    let _ro = TmpfsMount::new(&ro, "ro,size=1m")?;
    let ro_home = ro.join("home");
    let out = init_with_home(&ro_home, &key)?;
    assert_exit(
        &out,
        1,
        &ro.to_string_lossy(),
        "init with --home on a read-only fs",
    )?;
    let out = mount_expecting_failure(&ro_home, &vol.mnt(), &key, &[])?;
    assert_exit(
        &out,
        1,
        &ro.to_string_lossy(),
        "mount with --home on a read-only fs",
    )?;
    ensure!(!vol.is_mounted()?, "something got mounted");
    Ok(())
}

#[test]
fn full_disk_keeps_fsynced_files() -> Result<()> {
    const FILE_LEN: usize = 64 * 1024;
    let mut vol = Volume::on_tmpfs("24m")?;
    vol.mount()?;
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut synced = Vec::new();
    let mut enospc = false;
    for i in 0..2_000u64 {
        ensure!(
            Instant::now() < deadline,
            "still no ENOSPC after {} files and 180 s",
            synced.len()
        );
        let name = format!("f-{i:04}");
        match write_synced(&vol.path(&name), &random_bytes(i, FILE_LEN)) {
            Ok(()) => synced.push((name, i)),
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                enospc = true;
                break;
            }
            Err(e) => bail!("writing {name} on a filling disk failed with {e}, want ENOSPC"),
        }
    }
    ensure!(
        enospc,
        "2000 x 64 KiB fitted on a 24 MiB tmpfs without ENOSPC"
    );
    ensure!(
        synced.len() >= 10,
        "ENOSPC after only {} files on a 24 MiB disk",
        synced.len()
    );
    let check = |vol: &Volume, files: &[(String, u64)]| -> Result<()> {
        for (name, seed) in files {
            let got = std::fs::read(vol.path(name))?;
            ensure!(
                got == random_bytes(*seed, FILE_LEN),
                "{name} damaged ({} bytes)",
                got.len()
            );
        }
        Ok(())
    };
    check(&vol, &synced)?;
    // The data of the write that hit ENOSPC was never acknowledged; if the final sync cannot
    // store it either, the daemon must say so (exit 1, "no space") rather than pretend.
    let status = vol.umount_status()?;
    ensure!(
        status.success() || vol.daemon_log().contains("no space"),
        "the daemon exited with {status} without naming the full disk\n{}",
        vol.daemon_log()
    );
    vol.mount()?;
    let (first, _) = synced.remove(0);
    std::fs::remove_file(vol.path(&first))?;
    check(&vol, &synced)?;
    vol.umount()?;
    assert_success(&vol.fossa(&["fsck"])?, "fossa fsck after a full disk")
}
