//! Multi-device sync end to end: real `fossa` daemons, each with its own home and mount,
//! talking QUIC on 127.0.0.1/.2/.3 with fixed ports (distinct per test, so tests run in
//! parallel). Every wait is bounded; a failure names what it waited for and shows the logs.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use fossa_tests::{
    Device, SYNC_TIMEOUT, assert_success, hash_hex, random_bytes, wait_until, write_synced,
};
use serde_json::Value;

fn addr(host: u8, port: u16) -> String {
    format!("127.0.0.{host}:{port}")
}

/// A running volume on A (`127.0.0.1:port_a`) and B joined by invitation, both mounted and
/// connected.
fn pair(port: u16, b_env: &[(&str, &str)]) -> Result<(Device, Device)> {
    let (pa, pb) = (addr(1, port), addr(2, port + 1));
    let mut a = Device::init("alpha", &pa)?;
    a.add_peer(&pb);
    a.mount()?;
    let mut b = Device::fresh("beta", &pb)?;
    for (k, v) in b_env {
        b.vol.set_env(k, v);
    }
    b.join(&a.invite()?, &pa)?;
    a.wait_connected(&[&b])?;
    b.wait_connected(&[&a])?;
    Ok((a, b))
}

fn names(devices: &[Value]) -> Vec<String> {
    let mut n: Vec<String> = devices
        .iter()
        .filter(|d| d["revoked"] == Value::Bool(false))
        .filter_map(|d| d["name"].as_str().map(str::to_owned))
        .collect();
    n.sort();
    n
}

/// Polls (every 2 ms) until every device reads `rel` as `want`; the time it took.
fn time_to_visible(devices: &[&Device], rel: &str, want: &[u8]) -> Result<Duration> {
    let start = Instant::now();
    let mut pending: Vec<&Device> = devices.to_vec();
    while !pending.is_empty() {
        pending.retain(|d| std::fs::read(d.path(rel)).map_or(true, |b| b != want));
        if start.elapsed() > SYNC_TIMEOUT {
            bail!(
                "{rel} not visible on {} after {SYNC_TIMEOUT:?}",
                pending[0].name
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(start.elapsed())
}

#[test]
fn three_devices_pair_by_invitation_and_see_each_others_files() -> Result<()> {
    let (pa, pb, pc) = (addr(1, 23101), addr(2, 23102), addr(3, 23103));
    let mut a = Device::init("alpha", &pa)?;
    a.mount()?;
    let mut b = Device::fresh("beta", &pb)?;
    b.add_peer(&pc);
    b.join(&a.invite()?, &pa)?;
    let mut c = Device::fresh("gamma", &pc)?;
    c.add_peer(&pb);
    c.join(&a.invite()?, &pa)?;
    a.wait_connected(&[&b, &c])?;
    let all = vec!["alpha".to_owned(), "beta".to_owned(), "gamma".to_owned()];
    for d in [&a, &b, &c] {
        let what = format!("`fossa devices` on {} to list alpha, beta, gamma", d.name);
        wait_until(SYNC_TIMEOUT, &what, || Ok(names(&d.devices()?) == all))?;
    }

    let data = random_bytes(1, 300_000);
    write_synced(&a.path("hello.bin"), &data)?;
    b.wait_content("hello.bin", &data)?;
    c.wait_content("hello.bin", &data)?;
    // B and C have it cached now; an overwrite of the same size must not be served stale.
    let newer = random_bytes(2, 300_000);
    write_synced(&a.path("hello.bin"), &newer)?;
    b.wait_content("hello.bin", &newer)?;
    c.wait_content("hello.bin", &newer)?;

    let mut times = Vec::new();
    for i in 0..100u64 {
        let rel = format!("small-{i:03}.txt");
        let bytes = random_bytes(100 + i, 200 + i as usize);
        let start = Instant::now();
        write_synced(&a.path(&rel), &bytes)?;
        time_to_visible(&[&b, &c], &rel, &bytes)?;
        times.push(start.elapsed());
    }
    times.sort();
    eprintln!(
        "sync visibility of 100 small files on B and C after fsync on A: median {:?}, max {:?}",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    Ok(())
}

fn conflict_copies(dir: &Path, stem: &str) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{stem}.sync-conflict-")) {
            found.push(name);
        }
    }
    Ok(found)
}

#[test]
fn offline_edits_merge_and_conflicts_keep_both_versions() -> Result<()> {
    let (mut a, mut b) = pair(23201, &[])?;
    write_synced(&a.path("same.txt"), b"base version\n")?;
    write_synced(&a.path("dve.txt"), b"delete or edit?\n")?;
    b.wait_content("same.txt", b"base version\n")?;
    b.wait_content("dve.txt", b"delete or edit?\n")?;

    // A edits alone, then goes away; B edits alone; then both meet again.
    b.stop()?;
    write_synced(&a.path("from-a.txt"), b"made on A offline\n")?;
    write_synced(&a.path("same.txt"), b"A's version\n")?;
    std::fs::remove_file(a.path("dve.txt"))?;
    a.stop()?;
    b.mount()?;
    write_synced(&b.path("from-b.txt"), b"made on B offline\n")?;
    write_synced(&b.path("same.txt"), b"B's version, written later\n")?;
    write_synced(&b.path("dve.txt"), b"edited on B\n")?;
    a.mount()?;
    a.wait_connected(&[&b])?;

    for d in [&a, &b] {
        d.wait_content("from-a.txt", b"made on A offline\n")?;
        d.wait_content("from-b.txt", b"made on B offline\n")?;
        d.wait_content("dve.txt", b"edited on B\n")?;
        let what = format!("one conflict copy of same.txt on {}", d.name);
        let mnt = d.vol.mnt();
        wait_until(SYNC_TIMEOUT, &what, || {
            Ok(conflict_copies(&mnt, "same")?.len() == 1)
        })
        .with_context(|| d.vol.log_tail_lines(30))?;
        let copies = conflict_copies(&mnt, "same")?;
        let copy = std::fs::read(mnt.join(&copies[0]))?;
        let live = std::fs::read(d.path("same.txt"))?;
        let mut got = vec![live, copy];
        got.sort();
        let mut want = vec![
            b"A's version\n".to_vec(),
            b"B's version, written later\n".to_vec(),
        ];
        want.sort();
        ensure!(
            got == want,
            "{}: same.txt and {} hold {got:?}",
            d.name,
            copies[0]
        );
        ensure!(
            copies[0].ends_with(".txt"),
            "conflict copy keeps the extension: {copies:?}"
        );
    }
    Ok(())
}

#[test]
fn revoked_device_can_no_longer_sync() -> Result<()> {
    let (a, b) = pair(23301, &[])?;
    write_synced(&b.path("before.txt"), b"still a member\n")?;
    a.wait_content("before.txt", b"still a member\n")?;

    let b_id = b.id()?;
    let out = a.fossa(&["devices", "remove", &b_id[..10]])?;
    assert_success(&out, "fossa devices remove")?;
    let devices = a.devices()?;
    ensure!(
        devices
            .iter()
            .any(|d| d["id"] == b_id.as_str() && d["revoked"] == Value::Bool(true)),
        "A does not list B as revoked: {devices:?}"
    );
    wait_until(SYNC_TIMEOUT, "A to drop its session with B", || {
        let v = a.status()?;
        Ok(!v["sync"]["connected"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c == b_id.as_str()))
    })?;

    write_synced(&b.path("after.txt"), b"written after revocation\n")?;
    // B keeps calling A; A must refuse and log it. Then the file must still be absent.
    let mut refusal = String::new();
    wait_until(SYNC_TIMEOUT, "A's log to show B refused", || {
        let log = a.vol.daemon_log();
        let hit = log.lines().find(|l| {
            let l = l.to_lowercase();
            (l.contains("revoked") || l.contains("not a member") || l.contains("refus"))
                && !l.contains("device revoked")
        });
        refusal = hit.unwrap_or_default().to_owned();
        Ok(hit.is_some())
    })
    .with_context(|| a.vol.log_tail_lines(30))?;
    eprintln!("A refused B: {refusal}");
    // A negative check needs a window: B keeps redialling meanwhile.
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        ensure!(
            !a.path("after.txt").exists(),
            "a file written by a revoked device reached A"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

#[test]
fn rename_of_a_large_file_moves_no_data() -> Result<()> {
    let (a, mut b) = pair(23401, &[])?;
    let data = random_bytes(4, 64 << 20);
    write_synced(&a.path("big.bin"), &data)?;
    let what = "big.bin (64 MiB) to arrive on B";
    wait_until(Duration::from_secs(120), what, || {
        Ok(std::fs::metadata(b.path("big.bin")).is_ok_and(|m| m.len() == data.len() as u64))
    })?;
    b.wait_all_blocks()?;
    let (sent0, recv0) = (a.sync_stat("bytes_sent")?, b.sync_stat("bytes_received")?);
    ensure!(
        recv0 >= 64 << 20,
        "B received only {recv0} bytes for a 64 MiB file"
    );

    std::fs::rename(a.path("big.bin"), a.path("moved.bin"))?;
    wait_until(SYNC_TIMEOUT, "the rename to reach B", || {
        Ok(b.path("moved.bin").exists() && !b.path("big.bin").exists())
    })?;
    b.wait_all_blocks()?;
    let sent = a.sync_stat("bytes_sent")? - sent0;
    let recv = b.sync_stat("bytes_received")? - recv0;
    eprintln!("rename of a 64 MiB file: A sent {sent} bytes, B received {recv} bytes");
    ensure!(recv < 1 << 20, "the rename moved {recv} bytes to B");
    ensure!(sent < 1 << 20, "the rename cost A {sent} bytes");
    let got = std::fs::read(b.path("moved.bin"))?;
    ensure!(hash_hex(&got) == hash_hex(&data), "moved.bin differs on B");

    // A restart of B resumes from its saved positions: nothing is fetched again.
    b.stop()?;
    b.mount()?;
    b.wait_connected(&[&a])?;
    b.wait_all_blocks()?;
    let got = std::fs::read(b.path("moved.bin"))?;
    ensure!(
        hash_hex(&got) == hash_hex(&data),
        "moved.bin differs on B after a restart"
    );
    let recv = b.sync_stat("bytes_received")?;
    ensure!(recv < 1 << 20, "B received {recv} bytes after a restart");
    Ok(())
}

#[test]
fn invitation_needs_the_daemon_and_works_once() -> Result<()> {
    let (pa, pb, pc) = (addr(1, 23601), addr(2, 23602), addr(3, 23603));
    let mut a = Device::init("alpha", &pa)?;
    let out = a.fossa(&["invite"])?;
    fossa_tests::assert_exit(&out, 1, "not mounted: run `fossa mount` first", "invite")?;
    a.mount()?;
    let code = a.invite()?;
    let mut b = Device::fresh("beta", &pb)?;
    b.join(&code, &pa)?;
    let c = Device::fresh("gamma", &pc)?;
    let mnt = c.vol.mnt();
    let args = [
        "join",
        &code,
        mnt.to_str().context("utf-8")?,
        "--listen",
        &pc,
    ];
    let out = c.fossa(&args)?;
    fossa_tests::assert_exit(&out, 1, "join", "a second join with a used code")?;
    ensure!(
        !c.vol.is_mounted()?,
        "a refused join mounted {}",
        mnt.display()
    );
    let out = c.fossa(&["join", "FOSSA1-NOTACODE", mnt.to_str().context("utf-8")?])?;
    fossa_tests::assert_exit(&out, 1, "bad invitation code", "join with garbage")?;
    ensure!(
        names(&a.devices()?) == ["alpha", "beta"],
        "{:?}",
        a.devices()?
    );
    Ok(())
}

#[test]
fn blocks_are_read_on_demand_and_a_missing_peer_gives_eio_in_time() -> Result<()> {
    let env = [
        ("FOSSA_SYNC_NO_PULL", "1"),
        ("FOSSA_FETCH_TIMEOUT_MS", "2000"),
    ];
    let (mut a, b) = pair(23501, &env)?;
    let first = random_bytes(5, 1 << 20);
    write_synced(&a.path("first.bin"), &first)?;
    b.wait_content("first.bin", &first)?;

    let second = random_bytes(6, 1 << 20);
    write_synced(&a.path("second.bin"), &second)?;
    wait_until(SYNC_TIMEOUT, "second.bin's entry on B", || {
        Ok(std::fs::metadata(b.path("second.bin")).is_ok_and(|m| m.len() == 1 << 20))
    })?;
    let path = b.path("second.bin");
    let out = b.fossa(&["status", path.to_str().context("utf-8")?, "--json"])?;
    assert_success(&out, "fossa status PATH")?;
    let st: Value = serde_json::from_str(&out.stdout)?;
    ensure!(
        st["local"] == Value::Bool(false),
        "second.bin is local on B: {st}"
    );

    // A frozen peer: connected, never answering. The read must end at the 2 s deadline,
    // with ETIMEDOUT (docs/cli.md).
    let pid = a.vol.daemon_pid().context("A's daemon")?.to_string();
    signal("-STOP", &pid)?;
    let frozen = read_expecting(&path, libc::ETIMEDOUT);
    signal("-CONT", &pid)?;
    let took = frozen?;
    ensure!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(4),
        "ETIMEDOUT from a frozen peer after {took:?}, want about the 2 s deadline"
    );
    eprintln!("read of remote-only data from a frozen peer: ETIMEDOUT after {took:?}");

    a.stop()?;
    let took = read_expecting(&path, libc::EIO)?;
    ensure!(took < Duration::from_secs(10), "EIO took {took:?}");
    eprintln!("read of remote-only data with the peer gone: EIO after {took:?}");
    Ok(())
}

fn signal(sig: &str, pid: &str) -> Result<()> {
    let out = fossa_tests::run(std::process::Command::new("kill").args([sig, pid]))?;
    assert_success(&out, "kill")
}

/// Reads `path` whole, expecting the error `errno`; how long that took.
fn read_expecting(path: &Path, errno: i32) -> Result<Duration> {
    let start = Instant::now();
    let mut buf = Vec::new();
    let r = std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut buf));
    match r {
        Err(e) if e.raw_os_error() == Some(errno) => Ok(start.elapsed()),
        other => bail!(
            "reading remote-only data gave {other:?}, not {}",
            std::io::Error::from_raw_os_error(errno)
        ),
    }
}

/// LAN discovery: both devices come back on ports the other has never seen, so neither can
/// call the other from what it knows; A's broadcast announcement (on loopback here) tells B
/// where A is, B calls, and they sync again. With `FOSSA_DISCOVERY=off` this would time out.
#[test]
fn devices_that_moved_find_each_other_on_the_lan() -> Result<()> {
    let (mut a, mut b) = pair(23601, &[])?;
    a.stop()?;
    b.stop()?;
    a.listen = addr(1, 23611);
    b.listen = addr(2, 23612);
    for d in [&mut a, &mut b] {
        d.vol.set_env("FOSSA_DISCOVERY_INTERVAL_MS", "200");
        d.mount()?;
    }
    a.wait_connected(&[&b])?;
    b.wait_connected(&[&a])?;
    let data = random_bytes(9, 1000);
    write_synced(&a.path("found.txt"), &data)?;
    b.wait_content("found.txt", &data)?;
    Ok(())
}

/// A device killed in the middle of an initial sync resumes where it stopped: what it had
/// stored before the kill is not sent again (the bound allows for the two batches in flight
/// and the last second's uncommitted blocks, about 8 MiB each).
#[test]
fn a_killed_transfer_resumes_without_refetching() -> Result<()> {
    const MIB: u64 = 1 << 20;
    let (a, mut b) = pair(23701, &[])?;
    b.stop()?;
    let data = random_bytes(11, 96 << 20);
    write_synced(&a.path("big.bin"), &data)?;
    b.mount_with(&["--max-recv", "8M"])?;
    wait_until(Duration::from_secs(60), "B to receive 64 MiB", || {
        Ok(b.sync_stat("bytes_received")? >= 64 * MIB)
    })?;
    b.vol.kill_daemon()?;
    b.vol.clear_stale_mount()?;
    b.mount()?;
    // `status --follow` shows the progress and returns once every block is here.
    let out = b.fossa(&["status", "--follow"])?;
    assert_success(&out, "fossa status --follow")?;
    ensure!(
        out.stderr.trim_end().ends_with("in sync"),
        "status --follow did not end in sync: {}",
        out.describe()
    );
    b.wait_all_blocks()?;
    let again = b.sync_stat("bytes_received")?;
    eprintln!("after the restart B received {} MiB of 96", again / MIB);
    ensure!(
        again <= (96 - 64 + 8 + 8 + 8 + 4) * MIB,
        "B received {again} bytes after the restart: completed blocks were sent again"
    );
    ensure!(
        std::fs::read(b.path("big.bin"))? == data,
        "B's copy differs"
    );
    Ok(())
}
