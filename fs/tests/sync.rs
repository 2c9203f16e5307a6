//! Multi-device sync, fs side: several volumes with one secret, updates pumped between them.
#![allow(clippy::unwrap_used)]
mod common;
mod sync_support;

use common::{RW, WHO, resolve};
use fossa_fs::{FsError, ROOT_INO, RenameMode, SetAttr, TimeSet};
use std::time::{Duration, UNIX_EPOCH};
use sync_support::*;

const MIB: usize = 1 << 20;

#[test]
fn creates_edits_and_deletes_propagate() {
    let d = devices(2);
    let (a, b) = (&d[0], &d[1]);
    let fa = a.fs();
    put(fa, "empty", b"");
    put(fa, "small", b"hello");
    let big = bytes(5 * MIB + 123, 1);
    let ino = put(fa, "big", &big);
    fa.fsync(ino, None, false).unwrap();
    let dir = fa.mkdir(WHO, ROOT_INO, b"d", 0o750).unwrap();
    put(fa, "d/inner", b"inner");
    fa.symlink(WHO, dir.ino, b"link", b"../small").unwrap();
    let t = UNIX_EPOCH + Duration::new(1_600_000_000, 42);
    let set = SetAttr {
        perm: Some(0o600),
        mtime: Some(TimeSet::At(t)),
        ..SetAttr::default()
    };
    fa.setattr(resolve(fa, "small").unwrap().ino, &set, None)
        .unwrap();
    assert!(a.changes.load(std::sync::atomic::Ordering::Relaxed) > 0);
    let p = pump(a, b);
    assert_eq!(p.report.rejected, 0);
    assert!(p.blocks > 0);
    assert!(
        p.report
            .changed_entries
            .contains(&(ROOT_INO, b"big".to_vec()))
    );
    converged(&[a, b]);
    let fb = b.fs();
    // What was applied is not a local change.
    let seq = fb.sync_handle().seq();
    assert_eq!(fb.sync_handle().scan().unwrap(), seq);
    assert!(!fb.sync_handle().status(b"d/inner").unwrap().pending);
    assert_eq!(get(fb, "big"), big);
    let s = fb.getattr(resolve(fb, "small").unwrap().ino).unwrap();
    assert_eq!((s.perm, s.mtime), (0o600, t));
    assert_eq!(
        fb.readlink(resolve(fb, "d/link").unwrap().ino).unwrap(),
        b"../small"
    );
    assert_eq!(fb.sync_handle().missing(10).unwrap(), vec![]);
    let st = fb.sync_handle().status(b"big").unwrap();
    assert!(st.local && !st.pending);
    assert_eq!(st.author, a.id);

    fa.unlink(ROOT_INO, b"small").unwrap();
    fa.unlink(dir.ino, b"inner").unwrap();
    fa.unlink(dir.ino, b"link").unwrap();
    fa.rmdir(ROOT_INO, b"d").unwrap();
    pump(a, b);
    converged(&[a, b]);
    assert!(matches!(resolve(fb, "d"), Err(FsError::NotFound)));
    assert!(fb.sync_handle().status(b"d").unwrap().version.len() == 1);
}

#[test]
fn renames_move_no_data() {
    let d = devices(2);
    let (a, b) = (&d[0], &d[1]);
    let fa = a.fs();
    let big = bytes(4 * MIB, 2);
    put(fa, "big", &big);
    let dir = fa.mkdir(WHO, ROOT_INO, b"dir", 0o755).unwrap();
    put(fa, "dir/x", &bytes(300_000, 3));
    put(fa, "dir/y", b"y");
    pump(a, b);
    fa.rename(ROOT_INO, b"big", ROOT_INO, b"moved", RenameMode::Replace)
        .unwrap();
    let p = pump(a, b);
    assert_eq!(p.missing_before_copy, 0);
    assert_eq!(p.blocks, 0);
    assert!(p.update_bytes < 64 * 1024, "{} bytes", p.update_bytes);
    let fb = b.fs();
    assert_eq!(get(fb, "moved"), big);
    assert!(resolve(fb, "big").is_err());
    fa.rename(ROOT_INO, b"dir", ROOT_INO, b"dir2", RenameMode::Replace)
        .unwrap();
    let _ = dir;
    let p = pump(a, b);
    assert_eq!((p.missing_before_copy, p.blocks), (0, 0));
    assert_eq!(get(fb, "dir2/x"), bytes(300_000, 3));
    assert!(resolve(fb, "dir").is_err());
    converged(&[a, b]);
}

#[test]
fn updates_relay_through_a_third_device() {
    let d = devices(3);
    let (a, b, c) = (&d[0], &d[1], &d[2]);
    put(a.fs(), "f", &bytes(200_000, 4));
    a.fs().mkdir(WHO, ROOT_INO, b"sub", 0o700).unwrap();
    pump(a, b);
    pump(b, c);
    assert_eq!(c.fs().sync_handle().progress(&a.id), (0, 0));
    converged(&[a, b, c]);
    assert_eq!(c.fs().sync_handle().status(b"f").unwrap().author, a.id);
    // C's copies are A's signed blobs, relayed unchanged: they verify on a fresh device.
    let ups = c.fs().sync_handle().updates(0, 100).unwrap();
    let blobs: Vec<Vec<u8>> = ups.iter().map(|u| u.1.clone()).collect();
    assert!(blobs.iter().all(|x| x[..32] == a.id));
}

#[test]
fn concurrent_edits_make_one_conflict_copy() {
    let d = devices(2);
    let (a, b) = (&d[0], &d[1]);
    put(a.fs(), "f.txt", b"base");
    pump(a, b);
    put(a.fs(), "f.txt", b"from a");
    std::thread::sleep(Duration::from_millis(20));
    put(b.fs(), "f.txt", b"from b, later");
    a.fs().sync_handle().scan().unwrap();
    b.fs().sync_handle().scan().unwrap();
    let r1 = pump(a, b);
    pump(b, a);
    assert_eq!(r1.report.conflicts, 1);
    converged(&[a, b]);
    assert_eq!(get(a.fs(), "f.txt"), b"from b, later");
    let copies = conflict_copies(a);
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(get(a.fs(), &copies[0]), b"from a");
    assert!(copies[0].ends_with(".txt"));
    let (sa, sb) = (a.fs().sync_handle().seq(), b.fs().sync_handle().seq());
    let again = (pump(a, b), pump(b, a));
    assert_eq!((again.0.report.applied, again.1.report.applied), (0, 0));
    assert_eq!(
        (a.fs().sync_handle().seq(), b.fs().sync_handle().seq()),
        (sa, sb)
    );
}

#[test]
fn conflicts_resolved_on_both_sides_converge() {
    let d = devices(2);
    let (a, b) = (&d[0], &d[1]);
    put(a.fs(), "f", b"base");
    pump(a, b);
    put(a.fs(), "f", b"aaa");
    put(b.fs(), "f", b"bbb");
    // Both take the other's updates before seeing the resolution.
    let ua = a.fs().sync_handle().updates(0, 100);
    a.fs().sync_handle().scan().unwrap();
    b.fs().sync_handle().scan().unwrap();
    drop(ua);
    let (pa, pb) = (
        b.fs().sync_handle().progress(&a.id).1,
        a.fs().sync_handle().progress(&b.id).1,
    );
    let from_a: Vec<_> = a
        .fs()
        .sync_handle()
        .updates(pa, 100)
        .unwrap()
        .into_iter()
        .map(|u| u.1)
        .collect();
    let from_b: Vec<_> = b
        .fs()
        .sync_handle()
        .updates(pb, 100)
        .unwrap()
        .into_iter()
        .map(|u| u.1)
        .collect();
    let (sa, sb) = (a.fs().sync_handle().seq(), b.fs().sync_handle().seq());
    b.fs()
        .sync_handle()
        .apply(&a.id, a.fs().sync_handle().index_id(), sa, &from_a)
        .unwrap();
    a.fs()
        .sync_handle()
        .apply(&b.id, b.fs().sync_handle().index_id(), sb, &from_b)
        .unwrap();
    for _ in 0..3 {
        pump(a, b);
        pump(b, a);
    }
    converged(&[a, b]);
    assert_eq!(conflict_copies(a).len(), 1);
    let (sa, sb) = (a.fs().sync_handle().seq(), b.fs().sync_handle().seq());
    pump(a, b);
    pump(b, a);
    assert_eq!(
        (a.fs().sync_handle().seq(), b.fs().sync_handle().seq()),
        (sa, sb)
    );
}

#[test]
fn an_edit_beats_a_concurrent_delete_and_separate_edits_survive() {
    let d = devices(2);
    let (a, b) = (&d[0], &d[1]);
    put(a.fs(), "f", b"base");
    put(a.fs(), "g", b"g0");
    pump(a, b);
    a.fs().unlink(ROOT_INO, b"f").unwrap();
    put(a.fs(), "g", b"g from a");
    put(b.fs(), "f", b"edited on b");
    put(b.fs(), "h", b"new on b");
    pump(a, b);
    pump(b, a);
    converged(&[a, b]);
    assert_eq!(get(a.fs(), "f"), b"edited on b");
    assert_eq!(get(b.fs(), "g"), b"g from a");
    assert_eq!(get(a.fs(), "h"), b"new on b");
    assert!(conflict_copies(a).is_empty());
}

#[test]
fn one_sided_edits_never_conflict() {
    let d = devices(2);
    let (a, b) = (&d[0], &d[1]);
    put(a.fs(), "f", b"one");
    pump(a, b);
    put(a.fs(), "f", b"two");
    pump(a, b);
    put(b.fs(), "f", b"three");
    pump(b, a);
    pump(a, b);
    converged(&[a, b]);
    assert_eq!(get(a.fs(), "f"), b"three");
    assert!(conflict_copies(a).is_empty());
}

#[test]
fn tampered_updates_are_rejected() {
    let d = devices(2);
    let (a, b) = (&d[0], &d[1]);
    put(a.fs(), "f", b"data");
    a.fs().sync_handle().scan().unwrap();
    let good = a.fs().sync_handle().updates(0, 10).unwrap()[0].1.clone();
    let mut flipped = good.clone();
    flipped[40] ^= 1;
    let truncated = good[..good.len() - 70].to_vec();
    // Signed by a device that is not a member.
    let outsider = signer(99);
    let mut forged = outsider_blob(&good, &outsider);
    let r = b
        .fs()
        .sync_handle()
        .apply(&a.id, 1, 1, &[flipped, truncated, forged.clone()])
        .unwrap();
    assert_eq!(r.rejected, 3);
    assert_eq!(r.applied, 0);
    assert!(resolve(b.fs(), "f").is_err());
    forged[0] ^= 1;
    let r = b
        .fs()
        .sync_handle()
        .apply(&a.id, 1, 1, &[forged, good])
        .unwrap();
    assert_eq!((r.rejected, r.applied), (1, 1));
    assert!(resolve(b.fs(), "f").is_ok());
}

/// `good` re-signed under the outsider's id.
fn outsider_blob(good: &[u8], s: &Signer) -> Vec<u8> {
    use fossa_fs::sync::UpdateSigner;
    let sealed = &good[32..good.len() - 64];
    let mut msg = b"fossa update signature v1".to_vec();
    msg.extend_from_slice(&VOLUME);
    msg.extend_from_slice(&s.device());
    msg.extend_from_slice(sealed);
    let mut out = s.device().to_vec();
    out.extend_from_slice(sealed);
    out.extend_from_slice(&s.sign(&msg));
    out
}

#[test]
fn index_and_progress_persist() {
    let mut d = devices(2);
    put(d[0].fs(), "f", b"one");
    pump(&d[0], &d[1]);
    let seq = d[0].fs().sync_handle().seq();
    assert_eq!(d[0].fs().sync_handle().scan().unwrap(), seq);
    let iid = d[0].fs().sync_handle().index_id();
    d[0].reopen();
    d[1].reopen();
    assert_eq!(
        (
            d[0].fs().sync_handle().index_id(),
            d[0].fs().sync_handle().seq()
        ),
        (iid, seq)
    );
    assert_eq!(d[0].fs().sync_handle().scan().unwrap(), seq);
    assert_eq!(d[1].fs().sync_handle().progress(&d[0].id), (iid, seq));
    put(d[0].fs(), "g", b"two");
    let p = pump(&d[0], &d[1]);
    assert_eq!((p.report.applied, p.report.ignored), (1, 0));
    converged(&[&d[0], &d[1]]);
}

#[test]
fn open_handle_of_a_replaced_file_keeps_working() {
    let d = devices(2);
    let (a, b) = (&d[0], &d[1]);
    put(a.fs(), "f", b"old");
    pump(a, b);
    let fb = b.fs();
    let ino = resolve(fb, "f").unwrap().ino;
    let fh = fb.open_file(ino, fossa_fs::OpenFlags::default()).unwrap();
    put(a.fs(), "f", b"new content");
    let p = pump(a, b);
    assert!(!p.report.changed_entries.is_empty());
    assert_eq!(fb.read(ino, fh, 0, 100).unwrap(), b"old");
    fb.release(ino, fh).unwrap();
    assert_eq!(get(fb, "f"), b"new content");
    let _ = RW;
}

#[test]
fn a_directory_beats_a_file() {
    let d = devices(2);
    let (a, b) = (&d[0], &d[1]);
    put(a.fs(), "x", b"file on a");
    b.fs().mkdir(WHO, ROOT_INO, b"x", 0o755).unwrap();
    put(b.fs(), "x/inner", b"inside");
    pump(a, b);
    pump(b, a);
    pump(a, b);
    converged(&[a, b]);
    assert_eq!(get(a.fs(), "x/inner"), b"inside");
    let copies = conflict_copies(a);
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(get(a.fs(), &copies[0]), b"file on a");
}

#[test]
fn unflushed_writes_are_scanned_before_merging() {
    let d = devices(2);
    let (a, b) = (&d[0], &d[1]);
    put(a.fs(), "f", b"base");
    pump(a, b);
    let fb = b.fs();
    let ino = resolve(fb, "f").unwrap().ino;
    let fh = fb.open_file(ino, RW).unwrap();
    fb.write(ino, fh, 0, b"B's unflushed").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    put(a.fs(), "f", b"A's later edit");
    let p = pump(a, b);
    assert_eq!(p.report.conflicts, 1);
    assert_eq!(fb.read(ino, fh, 0, 100).unwrap(), b"B's unflushed");
    fb.release(ino, fh).unwrap();
    pump(b, a);
    converged(&[a, b]);
    assert_eq!(get(a.fs(), "f"), b"A's later edit");
    assert_eq!(get(a.fs(), &conflict_copies(a)[0]), b"B's unflushed");
}

/// `user.*` xattrs (the redundancy level among them) travel with their entry, on files and
/// directories, including removal; other namespaces stay on the machine.
#[test]
fn user_xattrs_sync_and_others_do_not() {
    use fossa_fs::XattrMode;
    let d = devices(2);
    let (a, b) = (&d[0], &d[1]);
    let (fa, fb) = (a.fs(), b.fs());
    let dir = fa.mkdir(WHO, ROOT_INO, b"photos", 0o755).unwrap();
    let f = put(fa, "photos/cat.jpg", b"meow");
    fa.setxattr(dir.ino, b"user.fossa.redundancy", b"3", XattrMode::Any)
        .unwrap();
    fa.setxattr(f, b"user.tag", &[0, 255, 7], XattrMode::Any)
        .unwrap();
    fa.setxattr(f, b"security.selinux", b"local_t", XattrMode::Any)
        .unwrap();
    pump(a, b);
    converged(&[a, b]);
    let bd = resolve(fb, "photos").unwrap().ino;
    let bf = resolve(fb, "photos/cat.jpg").unwrap().ino;
    assert_eq!(fb.getxattr(bd, b"user.fossa.redundancy").unwrap(), b"3");
    assert_eq!(fb.getxattr(bf, b"user.tag").unwrap(), [0, 255, 7]);
    assert!(matches!(
        fb.getxattr(bf, b"security.selinux"),
        Err(FsError::NoAttr)
    ));
    // An xattr-only change is a change; removal propagates; nothing is rescanned on B.
    fa.setxattr(dir.ino, b"user.fossa.redundancy", b"2", XattrMode::Any)
        .unwrap();
    fa.removexattr(f, b"user.tag").unwrap();
    let seq = fa.sync_handle().seq();
    assert!(
        fa.sync_handle().scan().unwrap() > seq,
        "xattr changes are versions"
    );
    pump(a, b);
    assert_eq!(fb.getxattr(bd, b"user.fossa.redundancy").unwrap(), b"2");
    assert!(matches!(fb.getxattr(bf, b"user.tag"), Err(FsError::NoAttr)));
    let seq = fb.sync_handle().seq();
    assert_eq!(fb.sync_handle().scan().unwrap(), seq);
}

/// Levels are inherited and overridden below; they sync with their directory; every block of
/// a file reports the highest level among the files sharing it.
#[test]
fn redundancy_levels_inherit_sync_and_cover_every_block() {
    use fossa_fs::XattrMode;
    let d = devices(2);
    let (a, b) = (&d[0], &d[1]);
    let fa = a.fs();
    let keep = fa.mkdir(WHO, ROOT_INO, b"keep", 0o755).unwrap();
    let inner = fa.mkdir(WHO, keep.ino, b"inner", 0o755).unwrap();
    let big = bytes(3 * MIB, 9);
    put(fa, "keep/inner/big", &big);
    put(fa, "plain", b"level one");
    put(fa, "keep/copy-of-plain", b"level one");
    assert!(matches!(
        fa.setxattr(keep.ino, b"user.fossa.redundancy", b"99", XattrMode::Any),
        Err(FsError::Invalid(_))
    ));
    fa.setxattr(keep.ino, b"user.fossa.redundancy", b"3", XattrMode::Any)
        .unwrap();
    fa.setxattr(inner.ino, b"user.fossa.redundancy", b"2", XattrMode::Any)
        .unwrap();
    fa.sync().unwrap();
    let r = |fs: &fossa_fs::Fs, p: &str| fs.redundancy(p.as_bytes()).unwrap();
    assert_eq!((r(fa, "").level, r(fa, "plain").level), (1, 1));
    assert_eq!((r(fa, "keep").level, r(fa, "keep").set_here), (3, Some(3)));
    assert_eq!(r(fa, "keep/copy-of-plain").level, 3);
    assert_eq!(r(fa, "keep/inner/big").level, 2);
    let levels = fa.block_levels().unwrap();
    let plain_blocks = blocks_of(fa, "plain");
    assert!(
        plain_blocks.iter().all(|id| levels[id] == 3),
        "shared: max wins"
    );
    let big_blocks = blocks_of(fa, "keep/inner/big");
    assert!(big_blocks.len() > 3);
    assert!(big_blocks.iter().all(|id| levels[id] == 2));
    pump(a, b);
    let fb = b.fs();
    assert_eq!(r(fb, "keep/inner/big").level, 2);
    assert_eq!(fb.block_levels().unwrap(), levels);
}

fn blocks_of(fs: &fossa_fs::Fs, path: &str) -> Vec<blockstore::BlockId> {
    fs.blocks_at(path.as_bytes()).unwrap()
}

/// A file being written is announced when it is fsynced or closed, not in between (peers
/// would fetch blocks about to be replaced); each announced state is a complete one.
#[test]
fn files_being_written_are_announced_at_fsync_or_close() {
    let d = devices(2);
    let (a, b) = (&d[0], &d[1]);
    let (fa, fb) = (a.fs(), b.fs());
    let (attr, fh) = fa.create(WHO, ROOT_INO, b"log", 0o644, RW).unwrap();
    let first = bytes(3 * MIB, 5);
    fa.write(attr.ino, fh, 0, &first).unwrap();
    fa.sync().unwrap(); // The data is in blocks and durable, but the writer is not done.
    let p = pump(a, b);
    assert_eq!(p.report.applied, 0, "nothing while the writer is busy");
    assert!(resolve(fb, "log").is_err());
    fa.fsync(attr.ino, Some(fh), false).unwrap();
    pump(a, b);
    assert_eq!(get(fb, "log"), first);
    let more = bytes(MIB, 6);
    fa.write(attr.ino, fh, first.len() as u64, &more).unwrap();
    fa.sync().unwrap();
    assert_eq!(pump(a, b).report.applied, 0);
    assert_eq!(get(fb, "log"), first);
    fa.release(attr.ino, fh).unwrap();
    pump(a, b);
    assert_eq!(get(fb, "log"), [first, more].concat());
    converged(&[a, b]);
}

/// Listing missing blocks resumes where the last walk of the same content found everything
/// local, and still lists every missing block when blocks arrive out of order (the full walk
/// behind `sync_status(..).local` is the oracle).
#[test]
fn missing_lists_resume_without_skipping_gaps() {
    let d = devices(2);
    let (a, b) = (&d[0], &d[1]);
    let big = bytes(12 * MIB + 5, 9);
    let ino = put(a.fs(), "big", &big);
    a.fs().fsync(ino, None, false).unwrap();
    pump_updates(a, b);
    let fb = b.fs();
    let mut rounds = 0;
    loop {
        let ids = fb.sync_handle().missing(40).unwrap();
        let local = fb.sync_handle().status(b"big").unwrap().local;
        assert_eq!(
            ids.is_empty(),
            local,
            "a resumed walk skipped a missing block"
        );
        if ids.is_empty() {
            break;
        }
        // Every other listed block, last first: arrivals out of order leave gaps.
        for id in ids.iter().rev().step_by(2) {
            let data = a.vol.store.get(id).unwrap();
            b.vol.store.put(&data, blockstore::Class::Own).unwrap();
        }
        b.vol.store.commit().unwrap();
        rounds += 1;
        assert!(rounds < 1000, "no progress");
    }
    assert!(rounds > 5, "the file should take several rounds: {rounds}");
    assert_eq!(get(fb, "big"), big);
}
