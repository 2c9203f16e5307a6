//! Invitations end to end (crypto.md, "Invitations"; docs/protocol.md, "Joining"): a
//! mistyped, old or expired code is refused before any traffic, a join that fails after the
//! handshake adds no member and leaves the code valid, default device names differ, and
//! refusals between members are logged on both sides. Real `fossa` daemons on 127.0.0.x.

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use fossa_tests::{Device, SYNC_TIMEOUT, assert_exit, assert_success, wait_until};
use serde_json::Value;

fn addr(host: u8, port: u16) -> String {
    format!("127.0.0.{host}:{port}")
}

/// The non-revoked device names A lists.
fn names(d: &Device) -> Result<Vec<String>> {
    let mut n: Vec<String> = d
        .devices()?
        .iter()
        .filter(|d| d["revoked"] == Value::Bool(false))
        .filter_map(|d| d["name"].as_str().map(str::to_owned))
        .collect();
    n.sort();
    Ok(n)
}

/// `fossa join CODE MNT --listen L` on `d`'s fresh home (no `--name`: the default applies).
fn join_raw(d: &Device, code: &str) -> Result<fossa_tests::Output> {
    let mnt = d.vol.mnt();
    let mnt = mnt.to_str().context("mount point not UTF-8")?;
    d.fossa(&["join", code, mnt, "--listen", &d.listen])
}

/// Unmounts what `fossa join` mounted in the background, then mounts under the fixture.
fn remount_after_join(d: &mut Device, inviter: &str) -> Result<()> {
    let mnt = d.vol.mnt();
    let out = d.fossa(&["umount", mnt.to_str().context("utf-8")?])?;
    assert_success(&out, "fossa umount after join")?;
    d.add_peer(inviter);
    d.mount()
}

// RFC 4648 base32, upper case, no padding: an independent implementation of the code's
// encoding (crypto.md), so that a test can make a code the joiner accepts but whose
// wrapped secret is wrong.
const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn b32_decode(s: &str) -> Result<Vec<u8>> {
    let (mut acc, mut bits, mut out) = (0u64, 0u32, Vec::new());
    for c in s.bytes() {
        let v = B32.iter().position(|&x| x == c).context("not base32")?;
        acc = (acc << 5) | v as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

fn b32_encode(bytes: &[u8]) -> String {
    let (mut acc, mut bits, mut out) = (0u64, 0u32, String::new());
    for &b in bytes {
        acc = (acc << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(B32[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(B32[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// `code` with the last byte of its wrapped volume secret flipped and a correct check.
fn with_bad_wrapped_secret(code: &str) -> Result<String> {
    let prefix = "FOSSA2-";
    let mut bytes = b32_decode(code.strip_prefix(prefix).context("not a FOSSA2- code")?)?;
    let body_len = bytes.len() - 4;
    // Body: volume (16) ‖ s (32) ‖ varint len(W) ‖ W ‖ …; W is < 128 bytes here.
    let w_len = usize::from(bytes[48]);
    ensure!(w_len > 0 && w_len < 128, "unexpected W length {w_len}");
    bytes[48 + w_len] ^= 0x01;
    let mut h = blake3::Hasher::new();
    h.update(b"fossa invitation code v2");
    h.update(prefix.as_bytes());
    h.update(&bytes[..body_len]);
    let check = h.finalize();
    bytes.truncate(body_len);
    bytes.extend_from_slice(&check.as_bytes()[..4]);
    Ok(format!("{prefix}{}", b32_encode(&bytes)))
}

/// `code` with one character of its wrapped-secret part changed (to another base32 one).
fn with_one_character_changed(code: &str) -> String {
    // Character 120 lies inside W (bytes 49..110 of the body, characters ~78..177).
    let i = "FOSSA2-".len() + 120;
    let old = code.as_bytes()[i];
    let new = if old == b'A' { 'B' } else { 'A' };
    let mut s = code.to_owned();
    s.replace_range(i..=i, &new.to_string());
    s
}

#[test]
fn bad_codes_are_refused_locally_and_the_invitation_still_works() -> Result<()> {
    let (pa, pb) = (addr(1, 24101), addr(2, 24102));
    // Both without --name: the default names must differ (same host).
    let mut a = Device::fresh("alpha", &pa)?;
    assert_success(&a.fossa(&["init"])?, "fossa init")?;
    a.add_peer(&pb);
    a.mount()?;
    let code = a.invite()?;
    let mut b = Device::fresh("beta", &pb)?;

    let typo = with_one_character_changed(&code);
    let out = join_raw(&b, &typo)?;
    assert_exit(
        &out,
        1,
        "checksum mismatch",
        "join with one character changed",
    )?;
    let old = code.replacen("FOSSA2-", "FOSSA1-", 1);
    assert_exit(
        &join_raw(&b, &old)?,
        1,
        "older fossa",
        "join with a version 1 code",
    )?;

    let out = a.fossa(&["invite", "--expires", "1s"])?;
    assert_success(&out, "fossa invite --expires 1s")?;
    let short = out.stdout.trim().to_owned();
    let issued = SystemTime::now();
    // The code's expiry is whole seconds: two seconds later it has passed.
    wait_until(Duration::from_secs(10), "the short code to expire", || {
        Ok(issued.elapsed().is_ok_and(|e| e > Duration::from_secs(2)))
    })?;
    let out = join_raw(&b, &short)?;
    assert_exit(
        &out,
        1,
        "invitation expired at",
        "join with an expired code",
    )?;

    ensure!(!b.vol.is_mounted()?, "a refused join mounted");
    ensure!(names(&a)?.len() == 1, "A lists {:?}", names(&a)?);
    let log = a.vol.daemon_log();
    ensure!(
        !["join refused", "join attempt", "join not completed"]
            .iter()
            .any(|w| log.contains(w)),
        "a locally refused code reached the inviter:\n{log}"
    );

    // The right code still works, and the two default names differ.
    assert_success(&join_raw(&b, &code)?, "fossa join with the right code")?;
    remount_after_join(&mut b, &pa)?;
    a.wait_connected(&[&b])?;
    let n = names(&a)?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    ensure!(n.len() == 2 && n[0] != n[1], "default names: {n:?}");
    ensure!(
        n.iter()
            .all(|x| x.starts_with(&format!("{}-", host.trim()))),
        "default names: {n:?}"
    );
    Ok(())
}

#[test]
fn a_join_that_fails_after_the_handshake_leaves_no_ghost_member() -> Result<()> {
    let (pa, pb) = (addr(1, 24201), addr(2, 24202));
    let mut a = Device::init("alpha", &pa)?;
    a.add_peer(&pb);
    a.mount()?;
    let code = a.invite()?;
    let mut b = Device::fresh("beta", &pb)?;

    // Passes every local check, is accepted by the inviter, but its W does not open.
    let out = join_raw(&b, &with_bad_wrapped_secret(&code)?)?;
    assert_exit(
        &out,
        1,
        "code was altered",
        "join with a wrong wrapped secret",
    )?;
    ensure!(!b.vol.is_mounted()?, "a failed join mounted");
    ensure!(
        !b.vol.data_dir().join("volume.key").exists(),
        "a failed join left a volume behind"
    );
    wait_until(SYNC_TIMEOUT, "A to log the join as not completed", || {
        Ok(a.vol.daemon_log().contains("join not completed"))
    })
    .with_context(|| a.vol.log_tail_lines(30))?;
    ensure!(names(&a)?.len() == 1, "ghost member on A: {:?}", names(&a)?);

    // The same code, from the same home, now joins.
    b.join(&code, &pa)?;
    a.wait_connected(&[&b])?;
    ensure!(names(&a)? == ["alpha", "beta"], "A lists {:?}", names(&a)?);
    Ok(())
}

#[test]
fn refusals_are_logged_on_both_sides_with_device_and_address() -> Result<()> {
    let (pa, pb) = (addr(1, 24301), addr(2, 24302));
    let mut a = Device::init("alpha", &pa)?;
    a.add_peer(&pb);
    a.mount()?;
    let mut b = Device::fresh("beta", &pb)?;
    b.join(&a.invite()?, &pa)?;
    a.wait_connected(&[&b])?;
    let b_id = b.id()?;
    assert_success(&a.fossa(&["devices", "remove", &b_id])?, "devices remove")?;

    // B keeps calling A: A logs whom it refused and from where, B that A refused it.
    wait_until(SYNC_TIMEOUT, "A to log the refusal of B", || {
        Ok(a.vol.daemon_log().lines().any(|l| {
            l.contains("WARN")
                && l.contains("refused a device that is not a member")
                && l.contains(&b_id)
                && l.contains("127.0.0.2:")
        }))
    })
    .with_context(|| a.vol.log_tail_lines(30))?;
    wait_until(SYNC_TIMEOUT, "B to log that A refused it", || {
        Ok(b.vol
            .daemon_log()
            .lines()
            .any(|l| l.contains("WARN") && l.contains("refused by the peer") && l.contains(&pa)))
    })
    .with_context(|| b.vol.log_tail_lines(30))?;
    // Rate-limited: B redials every few seconds at most, A logs it once a minute.
    let count = a
        .vol
        .daemon_log()
        .lines()
        .filter(|l| l.contains("refused a device that is not a member"))
        .count();
    if count > 2 {
        bail!("A logged {count} refusals of B within a minute");
    }
    Ok(())
}
