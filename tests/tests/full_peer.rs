//! A peer whose disk is full is not sent the same blocks again and again (docs/protocol.md,
//! "Block streams", back-off): its pull pauses until it has room, then completes.

use std::fs::File;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use fossa_tests::{Device, TmpfsMount, random_bytes, wait_until, write_synced};

fn addr(host: u8, port: u16) -> String {
    format!("127.0.0.{host}:{port}")
}

/// B's device with its home on a tmpfs; fields drop in order: the daemon goes before its disk.
struct OnTmpfs {
    dev: Device,
    _disk: TmpfsMount,
}

/// Fills the filesystem holding `path` with a file of zeros until a write fails; returns the
/// file and its length.
fn fill(path: &std::path::Path) -> Result<(File, u64)> {
    let mut f = File::create(path)?;
    let chunk = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => len += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok((f, len))
}

const MIB: u64 = 1 << 20;

#[test]
fn a_full_peer_is_not_sent_the_same_blocks_again_and_resumes_when_it_has_room() -> Result<()> {
    let (pa, pb) = (addr(1, 26401), addr(2, 26402));
    let mut a = Device::init("alpha", &pa)?;
    a.add_peer(&pb);
    a.mount()?;
    let dev = Device::fresh("beta", &pb)?;
    let disk = TmpfsMount::new(&dev.vol.home(), "size=160m,mode=0700")?;
    let mut b = OnTmpfs { dev, _disk: disk };
    b.dev.join(&a.invite()?, &pa)?;
    a.wait_connected(&[&b.dev])?;

    // 64 MiB written on A while B is away; B comes back with about 24 MiB of room (the
    // index, small, is applied first; then the blocks fill the disk).
    b.dev.stop()?;
    let files: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| (format!("f{i}.bin"), random_bytes(100 + i, 16 << 20)))
        .collect();
    for (name, data) in &files {
        write_synced(&a.path(name), data)?;
    }
    let filler_path = b.dev.vol.home().join("filler");
    let (filler, filled) = fill(&filler_path)?;
    filler.set_len(filled.saturating_sub(24 * MIB))?;
    filler.sync_all()?;
    b.dev.mount()?;

    // B fills up and pauses its pull.
    let paused = |d: &Device| d.vol.daemon_log().contains("fetching paused");
    wait_until(
        Duration::from_secs(60),
        "beta's pull to pause on a full disk",
        || Ok(paused(&b.dev)),
    )
    .with_context(|| b.dev.vol.log_tail_lines(30))?;
    ensure!(
        b.dev.sync_stat("blocks_missing")? > 0,
        "beta cannot hold it all yet"
    );

    // While full, A sends B (almost) nothing: no re-send loop.
    let sent_before = a.sync_stat("bytes_sent")?;
    // An observation window, not a synchronisation: count what A sends meanwhile.
    std::thread::sleep(Duration::from_secs(12));
    let sent = a.sync_stat("bytes_sent")? - sent_before;
    eprintln!("alpha sent {sent} bytes to a full beta in 12 s");
    ensure!(
        sent < 32 * MIB,
        "alpha sent {sent} bytes to a full peer in 12 s: a re-send loop"
    );
    ensure!(
        b.dev.vol.is_mounted()?,
        "beta's daemon must survive a full disk"
    );
    let warns = b
        .dev
        .vol
        .daemon_log()
        .lines()
        .filter(|l| l.contains("WARN"))
        .count();
    ensure!(warns < 50, "beta logged {warns} warnings: not rate-limited");

    // Room again: B resumes by itself and gets everything.
    filler.set_len(0)?;
    drop(filler);
    std::fs::remove_file(&filler_path)?;
    b.dev.wait_all_blocks()?;
    for (name, data) in &files {
        b.dev.wait_content(name, data)?;
    }
    ensure!(
        b.dev.vol.daemon_log().contains("fetching resumed"),
        "beta must say when it resumes"
    );
    b.dev.stop()?;
    a.stop()
}
