//! `fallocate` hole punching and range zeroing on a real mount: `fallocate -p` / `-z` from
//! util-linux and `fallocate(2)` on a descriptor with writes still buffered in the daemon,
//! each compared with a model of the file's bytes, before and after a remount.

#![allow(unsafe_code)] // fallocate(2) on a descriptor: std has no wrapper for it.
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use fossa_tests::{Volume, assert_success, random_bytes, require_tool, run};

/// `fallocate [-p|-z] -o OFF -l LEN path` (util-linux).
fn fallocate_cmd(flag: &str, path: &Path, off: u64, len: u64) -> Result<()> {
    let out = run(Command::new("fallocate")
        .arg(flag)
        .args(["-o", &off.to_string(), "-l", &len.to_string()])
        .arg(path))?;
    assert_success(&out, &format!("fallocate {flag} -o {off} -l {len}"))
}

/// Zeros `off..off + len` of `model`, clipped to its length (a punch keeps the size).
fn punch_model(model: &mut [u8], off: u64, len: u64) {
    let n = model.len() as u64;
    let (a, b) = (off.min(n) as usize, (off + len).min(n) as usize);
    model[a..b].fill(0);
}

fn check(path: &Path, model: &[u8], what: &str) -> Result<()> {
    let got = std::fs::read(path).with_context(|| format!("read after {what}"))?;
    ensure!(
        got.len() == model.len(),
        "{what}: size {} != {}",
        got.len(),
        model.len()
    );
    if let Some(i) = got.iter().zip(model).position(|(g, m)| g != m) {
        bail!("{what}: first differing byte at {i}");
    }
    Ok(())
}

/// `live_blocks` from `fossa gc --json` (the volume unmounted).
fn live_blocks(vol: &Volume) -> Result<u64> {
    let out = vol.fossa(&["gc", "--json"])?;
    assert_success(&out, "fossa gc --json")?;
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim())?;
    v["live_blocks"]
        .as_u64()
        .context("gc --json has no live_blocks")
}

#[test]
fn punch_hole_and_zero_range_match_a_model() -> Result<()> {
    require_tool("fallocate")?;
    let mut vol = Volume::new()?;
    vol.mount()?;
    let path = vol.path("image");
    let mut model = random_bytes(17, 3 << 20);
    std::fs::write(&path, &model)?;
    vol.umount()?;
    let before = live_blocks(&vol)?;
    vol.mount()?;
    // Unaligned, page-aligned, spanning many chunks, at the start, and past the end.
    for (off, len) in [
        (100_001, 1_900_000),
        (0, 4096),
        (5, 3),
        (3_000_000, 1 << 20),
    ] {
        fallocate_cmd("-p", &path, off, len)?;
        punch_model(&mut model, off, len);
        check(&path, &model, &format!("punch {off}+{len}"))?;
    }
    // ZERO_RANGE past the end grows the file (without KEEP_SIZE).
    fallocate_cmd("-z", &path, 3_100_000, 200_000)?;
    punch_model(&mut model, 3_100_000, 200_000);
    model.resize(3_300_000, 0);
    check(&path, &model, "zero range past the end")?;
    buffered_writes_then_punch(&path, &mut model)?;
    vol.umount()?;
    let after = live_blocks(&vol)?;
    ensure!(
        after < before,
        "live blocks {before} -> {after}: the holes still hold blocks"
    );
    vol.mount()?;
    check(&path, &model, "remount")?;
    vol.umount()?;
    assert_success(&vol.fossa(&["fsck"])?, "fossa fsck after punching")
}

/// Writes through one descriptor (held in the daemon's buffer), then a punch through the same
/// descriptor over part of them: the punch wins where it covers them.
fn buffered_writes_then_punch(path: &Path, model: &mut [u8]) -> Result<()> {
    let f = OpenOptions::new().read(true).write(true).open(path)?;
    let data = random_bytes(18, 600_000);
    f.write_all_at(&data, 1_000_000)?;
    model[1_000_000..1_600_000].copy_from_slice(&data);
    let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    // SAFETY: fallocate(2) on an open descriptor; no memory is passed.
    let rc = unsafe { libc::fallocate(f.as_raw_fd(), mode, 1_200_000, 300_000) };
    ensure!(rc == 0, "fallocate: {}", std::io::Error::last_os_error());
    punch_model(model, 1_200_000, 300_000);
    let mut got = vec![0u8; 700_000];
    f.read_exact_at(&mut got, 950_000)?;
    ensure!(
        got == model[950_000..1_650_000],
        "read through the descriptor after its punch"
    );
    drop(f);
    check(path, model, "buffered writes then punch")
}
