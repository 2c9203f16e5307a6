//! A full disk: puts and commits fail with `NoSpace`, committed blocks survive, and blocks
//! put before the failure are kept (the layer above may already reference them).
//!
//! Needs root to mount a 2 MiB tmpfs; prints a message and passes otherwise.
#![allow(clippy::unwrap_used)] // tests panic on purpose
use blockstore::{BlockId, BlockStore, Class, StoreError, StoreOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Unmounts the tmpfs even when the test panics.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &Path) -> Option<Mount> {
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| Mount(dir.to_owned()))
}

fn block(n: u32) -> Vec<u8> {
    let mut v: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(n + 1) >> 3) as u8)
        .collect();
    v[..4].copy_from_slice(&n.to_le_bytes());
    v
}

fn is_no_space(e: &StoreError) -> bool {
    matches!(e, StoreError::NoSpace(_))
}

#[test]
fn full_disk_reports_no_space_and_keeps_committed_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(_mount) = mount_tmpfs(tmp.path()) else {
        println!("skipping full_disk test: cannot mount a tmpfs (not root?)");
        return;
    };
    let dir = tmp.path().join("store");
    let opts = StoreOptions {
        cache_quota: 1 << 20,
        data_file_size: 1 << 30,
    };
    let s = BlockStore::open(&dir, opts.clone()).unwrap();
    let committed: Vec<(u32, BlockId)> = (0..4)
        .map(|n| (n, s.put(&block(n), Class::Own).unwrap()))
        .collect();
    s.commit().unwrap();

    let mut failure = None;
    let mut kept = Vec::new();
    for n in 4..200 {
        match s.put(&block(n), Class::Own) {
            Ok(id) => kept.push((n, id)),
            Err(e) => {
                assert!(
                    !s.has(&BlockId::of(&block(n))).unwrap(),
                    "a failed put is not indexed"
                );
                failure = Some(e);
                break;
            }
        }
        if n % 4 == 0
            && let Err(e) = s.commit()
        {
            failure = Some(e);
            break;
        }
    }
    let e = failure.expect("2 MiB cannot hold 200 blocks of 64 KiB");
    assert!(is_no_space(&e), "expected NoSpace, got {e:?}");
    assert!(e.is_transient());
    for (n, id) in committed.iter().chain(&kept) {
        assert_eq!(
            s.get(id).unwrap(),
            block(*n),
            "block {n} lost by the failure"
        );
    }
    // Space comes back: the kept blocks become durable with the next commit.
    let grown = Command::new("mount")
        .args(["-o", "remount,size=16m"])
        .arg(tmp.path())
        .status()
        .is_ok_and(|st| st.success());
    assert!(grown, "remount of the tmpfs failed");
    s.commit().unwrap();
    drop(s);

    let s = BlockStore::open(&dir, opts).unwrap();
    for (n, id) in committed.iter().chain(&kept) {
        assert_eq!(s.get(id).unwrap(), block(*n));
    }
    let report = s.fsck(false).unwrap();
    assert!(
        report.corrupt.is_empty() && report.dangling.is_empty(),
        "{report:?}"
    );
}
