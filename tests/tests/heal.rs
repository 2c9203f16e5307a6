//! Self-healing from peers (docs/redundancy.md, "Healing"): a block whose local copy is
//! damaged on disk is fetched again from a peer and replaces the bad copy while mounted — on
//! the read that finds it, or by the local audit without any read — and `fsck` names the
//! damaged file by its path.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use fossa_tests::{Device, SYNC_TIMEOUT, random_bytes, wait_until, write_synced};
use serde_json::Value;

fn addr(host: u8, port: u16) -> String {
    format!("127.0.0.{host}:{port}")
}

/// A and B (joined by invitation) with `big.bin` written on A and every block of it stored
/// on B (B never read it, so no cache holds it); both still mounted.
fn synced_pair(port: u16, data: &[u8]) -> Result<(Device, Device)> {
    let (pa, pb) = (addr(1, port), addr(2, port + 1));
    let mut a = Device::init("alpha", &pa)?;
    a.add_peer(&pb);
    a.mount()?;
    let mut b = Device::fresh("beta", &pb)?;
    b.join(&a.invite()?, &pa)?;
    a.wait_connected(&[&b])?;
    write_synced(&a.path("big.bin"), data)?;
    let p = b.path("big.bin");
    let len = data.len() as u64;
    wait_until(SYNC_TIMEOUT, "big.bin to appear on beta", || {
        Ok(std::fs::metadata(&p).is_ok_and(|m| m.len() == len))
    })?;
    b.wait_all_blocks()?;
    Ok((a, b))
}

/// The data files of a device's block store.
fn data_files(d: &Device) -> Result<Vec<PathBuf>> {
    let dir = d.vol.data_dir().join("blocks").join("data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.sort();
    Ok(files)
}

/// Flips one byte in the middle of the largest record of `d`'s store (a content chunk of the
/// only file), found by walking the records (docs/formats/blockstore.md). Returns the file.
fn flip_largest_block(d: &Device) -> Result<PathBuf> {
    let mut best: Option<(PathBuf, u64, u64)> = None;
    for path in data_files(d)? {
        let bytes = std::fs::read(&path)?;
        let mut off = 32usize;
        while off + 48 <= bytes.len() && &bytes[off..off + 4] == b"FBLK" {
            let len = u32::from_le_bytes(bytes[off + 4..off + 8].try_into()?) as usize;
            if best.as_ref().is_none_or(|b| b.2 < len as u64) {
                best = Some((path.clone(), (off + 48) as u64, len as u64));
            }
            off += 48 + len;
        }
    }
    let Some((path, data_at, len)) = best else {
        bail!("no block record found in {}", d.name);
    };
    ensure!(len >= 4096, "the largest block has only {len} bytes");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)?;
    let at = data_at + len / 2;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at)?;
    f.write_all_at(&[b[0] ^ 0x01], at)?;
    f.sync_all()?;
    Ok(path)
}

/// `fossa fsck --json` on a device that is not mounted.
fn fsck(d: &Device) -> Result<Value> {
    let out = d.fossa(&["fsck", "--json"])?;
    serde_json::from_str(&out.stdout).with_context(|| out.describe())
}

fn redundancy_stat(d: &Device, key: &str) -> Result<u64> {
    let v = d.status()?;
    v["redundancy"][key]
        .as_u64()
        .with_context(|| format!("status --json has no redundancy.{key}: {v}"))
}

fn problems(report: &Value) -> Vec<String> {
    report["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect()
}

/// The corrupt copy is found offline by fsck (named by path), then, mounted again, the first
/// read fails while no peer is there (the log names the path), and succeeds once A is back:
/// the copy is replaced and B's store verifies clean.
#[test]
fn a_corrupt_block_is_healed_from_a_peer_by_the_read_that_finds_it() -> Result<()> {
    let data = random_bytes(17, 6 << 20);
    let (mut a, mut b) = synced_pair(26301, &data)?;
    b.stop()?;
    flip_largest_block(&b)?;
    let before = fsck(&b)?;
    let found = problems(&before);
    ensure!(
        before["clean"] == Value::Bool(false) && found.iter().any(|p| p.contains("/big.bin")),
        "fsck must report the damage and name the file: {before}"
    );

    // No peer: the read fails (EIO) and the log names the file.
    a.stop()?;
    b.mount()?;
    let err = std::fs::read(b.path("big.bin")).expect_err("a corrupt block must not be served");
    ensure!(err.raw_os_error() == Some(libc::EIO), "read: {err}");
    let log = b.vol.daemon_log();
    ensure!(
        log.lines()
            .any(|l| l.contains("read failed") && l.contains("/big.bin")),
        "the log must name the damaged file:\n{}",
        b.vol.log_tail_lines(20)
    );

    // A back: the next read gets the block from A, and the bad copy is replaced.
    a.mount()?;
    b.wait_connected(&[&a])?;
    let p = b.path("big.bin");
    wait_until(SYNC_TIMEOUT, "big.bin to read correctly on beta", || {
        Ok(std::fs::read(&p).is_ok_and(|got| got == data))
    })
    .with_context(|| b.vol.log_tail_lines(30))?;
    ensure!(
        b.vol
            .daemon_log()
            .contains("corrupt local copy replaced by a verified copy"),
        "the heal must be logged:\n{}",
        b.vol.log_tail_lines(20)
    );
    // Counted at the next round of the repair loop (every 30 s by default).
    wait_until(Duration::from_secs(60), "the heal to be counted", || {
        Ok(redundancy_stat(&b, "local_healed")? >= 1)
    })?;
    b.stop()?;
    let after = fsck(&b)?;
    ensure!(
        after["clean"] == Value::Bool(true),
        "beta's store must verify clean after healing: {after}"
    );
    a.stop()
}

/// Without any read: the local audit re-hashes B's copies, finds the bad one and replaces it
/// from A while mounted.
#[test]
fn a_corrupt_block_is_healed_by_the_local_audit_without_a_read() -> Result<()> {
    let data = random_bytes(29, 6 << 20);
    let (mut a, mut b) = synced_pair(26311, &data)?;
    b.stop()?;
    flip_largest_block(&b)?;
    b.vol.set_env("FOSSA_REPAIR_PERIOD_MS", "300");
    b.mount()?;
    b.wait_connected(&[&a])?;
    wait_until(
        Duration::from_secs(60),
        "beta's local audit to heal the block",
        || Ok(redundancy_stat(&b, "local_healed")? >= 1),
    )
    .with_context(|| b.vol.log_tail_lines(30))?;
    ensure!(redundancy_stat(&b, "local_corrupt")? >= 1);
    b.stop()?;
    let after = fsck(&b)?;
    ensure!(
        after["clean"] == Value::Bool(true),
        "beta's store must verify clean after healing: {after}"
    );
    // The healed store serves the file with no peer at all.
    a.stop()?;
    b.mount()?;
    let got = std::fs::read(b.path("big.bin"))?;
    ensure!(got == data, "big.bin differs after healing");
    b.stop()
}
