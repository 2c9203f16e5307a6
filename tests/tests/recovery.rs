//! Damaged databases and disk space: `fossa fsck --repair` rebuilds a block index cut short
//! and recovers a metadata database cut short (from the latest snapshot, or from a peer), a
//! mount of a damaged volume names the way out, and `gc` frees the space of deleted files
//! (mounted and unmounted).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use fossa_tests::tree::{Compare, Tree, assert_same, scan};
use fossa_tests::{
    Device, SYNC_TIMEOUT, Volume, assert_success, make_sample_tree, random_bytes, wait_until,
};
use serde_json::Value;

/// Cuts `path` to half its length, as a crash or a disk error might.
fn cut_in_half(path: &Path) -> Result<()> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("{}", path.display()))?
        .len();
    ensure!(len > 0, "{} is empty", path.display());
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .set_len(len / 2)?;
    Ok(())
}

/// The tree as a user sees it (no xattrs: snapshots do not keep them).
fn user_tree(vol: &Volume) -> Result<Tree> {
    scan(&vol.mnt(), false)
}

const SAME: Compare = Compare {
    xattrs: false,
    ..Compare::ALL
};

/// A few hundred small files plus the sample tree, so that the databases span many pages.
fn fill(vol: &Volume) -> Result<()> {
    make_sample_tree(&vol.mnt())?;
    std::fs::create_dir(vol.path("many"))?;
    for i in 0..300u64 {
        std::fs::write(
            vol.path(format!("many/f{i:04}")),
            random_bytes(i, 500 + i as usize * 37),
        )?;
    }
    Ok(())
}

/// `fossa fsck --repair --json` must succeed and say what it recovered; returns the lines.
fn repair(vol: &Volume) -> Result<Vec<String>> {
    let out = vol.fossa(&["fsck", "--repair", "--json"])?;
    assert_success(&out, "fossa fsck --repair")?;
    let v: Value = serde_json::from_str(&out.stdout).with_context(|| out.describe())?;
    ensure!(v["clean"] == Value::Bool(true), "fsck --repair: {v}");
    let lines: Vec<String> = v["recovered"]
        .as_array()
        .context("no `recovered` array")?
        .iter()
        .filter_map(|l| l.as_str().map(str::to_owned))
        .collect();
    ensure!(!lines.is_empty(), "fsck --repair recovered nothing: {v}");
    Ok(lines)
}

/// A mount of the damaged volume fails and names `fossa fsck --repair`.
fn mount_points_to_repair(vol: &Volume, what: &str) -> Result<()> {
    let out = vol.mount_expecting_failure(&vol.mnt(), &vol.key_file(), &[])?;
    ensure!(
        !out.success()
            && out.stderr.lines().any(|l| l.starts_with("fossa: error:")
                && l.contains(what)
                && l.contains("fossa fsck --repair")),
        "mount of a volume with a damaged {what}: {}",
        out.describe()
    );
    Ok(())
}

fn fsck_clean(vol: &Volume) -> Result<()> {
    let out = vol.fossa(&["fsck"])?;
    assert_success(&out, "fossa fsck after the recovery")?;
    ensure!(out.stdout.contains("clean"), "{}", out.describe());
    Ok(())
}

#[test]
fn a_block_index_cut_in_half_is_rebuilt_by_fsck_repair() -> Result<()> {
    let mut vol = Volume::new()?;
    vol.mount()?;
    fill(&vol)?;
    vol.umount()?;
    vol.mount()?;
    let want = user_tree(&vol)?;
    vol.umount()?;

    cut_in_half(&vol.data_dir().join("blocks/index.redb"))?;
    mount_points_to_repair(&vol, "block index")?;
    let lines = repair(&vol)?;
    ensure!(
        lines
            .iter()
            .any(|l| l.contains("rebuilt from the data files")),
        "{lines:?}"
    );
    vol.mount()?;
    assert_same(
        &want,
        &user_tree(&vol)?,
        SAME,
        "after rebuilding the block index",
    )?;
    vol.umount()?;
    fsck_clean(&vol)
}

#[test]
fn metadata_cut_in_half_is_recovered_from_the_latest_snapshot() -> Result<()> {
    let mut vol = Volume::new()?;
    vol.mount()?;
    fill(&vol)?;
    assert_success(&vol.fossa(&["snapshot", "s1"])?, "fossa snapshot s1")?;
    let want = user_tree(&vol)?;
    // Lost by the recovery: made after the snapshot.
    std::fs::write(vol.path("after-s1"), b"later\n")?;
    vol.umount()?;

    cut_in_half(&vol.data_dir().join("meta.redb"))?;
    mount_points_to_repair(&vol, "metadata database")?;
    let lines = repair(&vol)?;
    ensure!(
        lines
            .iter()
            .any(|l| l.contains("recovered from snapshot s1")),
        "{lines:?}"
    );
    vol.mount()?;
    assert_same(&want, &user_tree(&vol)?, SAME, "after recovering from s1")?;
    let snap = scan(&vol.path(".snapshots/s1"), false)?;
    assert_same(
        &want,
        &snap,
        Compare {
            root: false,
            ..SAME
        },
        "snapshot s1 itself",
    )?;
    // The recovered volume takes new files.
    std::fs::write(vol.path("new"), b"new\n")?;
    vol.umount()?;
    fsck_clean(&vol)
}

fn addr(host: u8, port: u16) -> String {
    format!("127.0.0.{host}:{port}")
}

#[test]
fn metadata_cut_in_half_is_recovered_from_a_peer() -> Result<()> {
    let (pa, pb) = (addr(61, 24710), addr(62, 24711));
    let mut a = Device::init("alpha", &pa)?;
    a.add_peer(&pb);
    a.mount()?;
    let mut b = Device::fresh("beta", &pb)?;
    b.join(&a.invite()?, &pa)?;
    b.wait_connected(&[&a])?;
    fill(&a.vol)?;
    std::fs::write(b.path("from-beta"), b"written on beta\n")?;
    a.wait_content("from-beta", b"written on beta\n")?;
    let count = user_tree(&a.vol)?.len();
    let complete = |d: &Device| user_tree(&d.vol).is_ok_and(|t| t.len() == count);
    wait_until(SYNC_TIMEOUT * 4, "beta to have alpha's tree", || {
        Ok(complete(&b))
    })?;
    b.wait_all_blocks()?;
    let want = user_tree(&b.vol)?;
    b.stop()?;

    cut_in_half(&b.vol.data_dir().join("meta.redb"))?;
    mount_points_to_repair(&b.vol, "metadata database")?;
    let lines = repair(&b.vol)?;
    ensure!(
        lines.iter().any(|l| l.contains("other devices")),
        "{lines:?}"
    );
    b.mount()?;
    wait_until(SYNC_TIMEOUT * 4, "beta's tree to come back", || {
        Ok(complete(&b))
    })?;
    // Directory mtimes are not synced (docs/formats/sync.md).
    let cmp = Compare {
        mtime: false,
        root: false,
        ..SAME
    };
    assert_same(
        &want,
        &user_tree(&b.vol)?,
        cmp,
        "beta after recovering from alpha",
    )?;
    // Beta's changes after the recovery win over its older versions on alpha.
    std::fs::write(b.path("from-beta"), b"edited on beta after the recovery\n")?;
    a.wait_content("from-beta", b"edited on beta after the recovery\n")?;
    b.stop()?;
    a.stop()
}

/// Bytes the data files of the volume's block store take on disk.
fn data_bytes(vol: &Volume) -> Result<u64> {
    let dir: PathBuf = vol.data_dir().join("blocks/data");
    let mut total = 0;
    for e in std::fs::read_dir(&dir)? {
        let e = e?;
        if e.path().extension().is_some_and(|x| x == "blk") {
            total += std::os::unix::fs::MetadataExt::blocks(&e.metadata()?) * 512;
        }
    }
    Ok(total)
}

/// Writes `n` files of 16 KiB under `dir` (about 32 MB for 2,000).
fn many_files(vol: &Volume, dir: &str, n: u64) -> Result<()> {
    std::fs::create_dir(vol.path(dir))?;
    for i in 0..n {
        std::fs::write(
            vol.path(format!("{dir}/{i}")),
            random_bytes(i + 1000, 16 << 10),
        )?;
    }
    Ok(())
}

fn gc(vol: &Volume) -> Result<Value> {
    let out = vol.fossa(&["gc", "--json"])?;
    assert_success(&out, "fossa gc")?;
    serde_json::from_str(&out.stdout).with_context(|| out.describe())
}

#[test]
fn gc_frees_the_disk_space_of_deleted_files() -> Result<()> {
    let mut vol = Volume::new()?;
    vol.mount()?;
    std::fs::write(vol.path("kept"), random_bytes(7, 3 << 20))?;
    many_files(&vol, "junk", 2000)?;
    vol.umount()?;
    vol.mount()?;
    let full = data_bytes(&vol)?;
    std::fs::remove_dir_all(vol.path("junk"))?;
    // Mounted: through the daemon's control socket.
    let r = gc(&vol)?;
    let after = data_bytes(&vol)?;
    println!("mounted gc: data files {full} -> {after} bytes; {r}");
    ensure!(
        after < full / 4,
        "gc freed too little: {full} -> {after} bytes on disk ({r})"
    );
    ensure!(r["bytes_reclaimed"].as_u64() > Some(0), "{r}");
    ensure!(
        std::fs::read(vol.path("kept"))? == random_bytes(7, 3 << 20),
        "kept differs after gc"
    );

    // Unmounted: the same once more.
    many_files(&vol, "junk2", 2000)?;
    vol.umount()?;
    vol.mount()?;
    std::fs::remove_dir_all(vol.path("junk2"))?;
    vol.umount()?;
    let full = data_bytes(&vol)?;
    let r = gc(&vol)?;
    let after = data_bytes(&vol)?;
    println!("unmounted gc: data files {full} -> {after} bytes; {r}");
    ensure!(
        after < full / 4,
        "unmounted gc freed too little: {full} -> {after} ({r})"
    );
    fsck_clean(&vol)?;
    vol.mount()?;
    ensure!(
        std::fs::read(vol.path("kept"))? == random_bytes(7, 3 << 20),
        "kept differs after the unmounted gc"
    );
    vol.umount()
}
