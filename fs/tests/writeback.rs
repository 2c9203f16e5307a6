//! Background write-back: flushes run while the file is written and read; reads, truncates,
//! fsync and reopen see the same bytes as a model; a failed background flush is reported by
//! the next fsync and loses nothing. (Waits during a stream: `streaming.rs`.)
#![allow(clippy::unwrap_used)] // tests panic on purpose
mod common;
use blockstore::{BlockStore, StoreOptions};
use common::*;
use fossa_fs::*;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Small limits so that many flights run during a short test.
fn small() -> FsOptions {
    FsOptions {
        file_dirty_limit: 256 << 10,
        total_dirty_limit: 4 << 20,
        ..FsOptions::default()
    }
}

/// A 4 KiB block that names its own index and generation, so a reader can tell a torn or
/// misplaced block from a whole one.
fn stamped(idx: u64, generation: u64) -> Vec<u8> {
    let mut b = pattern(idx * 7919 + generation, 4096);
    b[..8].copy_from_slice(&idx.to_le_bytes());
    b[8..16].copy_from_slice(&generation.to_le_bytes());
    b
}

fn check_block(idx: u64, b: &[u8]) {
    if b.iter().all(|x| *x == 0) {
        return;
    }
    let g = u64::from_le_bytes(b[8..16].try_into().unwrap());
    assert_eq!(b, &stamped(idx, g)[..b.len()], "block {idx} torn");
}

fn read_range(fs: &Fs, ino: Ino, fh: u64, off: u64, len: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while (out.len() as u64) < len {
        let n = (len - out.len() as u64).min(1 << 20) as u32;
        let d = fs.read(ino, fh, off + out.len() as u64, n).unwrap();
        if d.is_empty() {
            break;
        }
        out.extend_from_slice(&d);
    }
    out
}

#[test]
fn concurrent_writer_and_reader_see_consistent_bytes() {
    let v = Vol::with_opts(small());
    let fs = Arc::new(v.open());
    let (a, fh) = fs.create(WHO, ROOT_INO, b"f", 0o644, RW).unwrap();
    const BLOCKS: u64 = 2048; // 8 MiB
    let mut model = vec![0u8; 0];
    let mut seed = 1u64;
    for round in 0..6u64 {
        // The writer's blocks are decided up front so the model knows them.
        let mut writes = Vec::new();
        for _ in 0..64 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let (first, count) = ((seed >> 33) % BLOCKS, 1 + (seed >> 20) % 32);
            writes.push((first, count.min(BLOCKS - first), round + 1));
        }
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (fs, done) = (fs.clone(), done.clone());
            std::thread::spawn(move || {
                let mut k = 0u64;
                while !done.load(Ordering::Relaxed) {
                    k = (k + 97) % BLOCKS;
                    let d = read_range(&fs, a.ino, fh, k * 4096, 64 * 4096);
                    for (i, b) in d.chunks(4096).enumerate() {
                        check_block(k + i as u64, b);
                    }
                }
            })
        };
        for (first, count, g) in writes {
            let data: Vec<u8> = (first..first + count).flat_map(|i| stamped(i, g)).collect();
            fs.write(a.ino, fh, first * 4096, &data).unwrap();
            let end = (first * 4096) as usize + data.len();
            model.resize(model.len().max(end), 0);
            model[(first * 4096) as usize..end].copy_from_slice(&data);
        }
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        let got = read_range(&fs, a.ino, fh, 0, model.len() as u64 + 10);
        assert!(got == model, "round {round}: file differs from the model");
    }
    fs.fsync(a.ino, Some(fh), false).unwrap();
    assert!(read_range(&fs, a.ino, fh, 0, model.len() as u64) == model);
    fs.release(a.ino, fh).unwrap();
    drop(fs);
    let fs = v.open();
    assert!(read_all(&fs, a.ino) == model);
}

#[test]
fn stream_of_100_mib_reads_back_before_and_after_fsync_and_reopen() {
    let v = Vol::new();
    let fs = v.open();
    let (a, fh) = fs.create(WHO, ROOT_INO, b"big", 0o644, RW).unwrap();
    let mb: Vec<Vec<u8>> = (0..100u64).map(|i| pattern(i, 1 << 20)).collect();
    for (i, d) in mb.iter().enumerate() {
        fs.write(a.ino, fh, (i as u64) << 20, d).unwrap();
    }
    let check = |fs: &Fs, fh: u64| {
        for (i, d) in mb.iter().enumerate() {
            let got = fs.read(a.ino, fh, (i as u64) << 20, 1 << 20).unwrap();
            assert!(got == *d, "MiB {i} differs");
        }
    };
    check(&fs, fh);
    fs.fsync(a.ino, Some(fh), false).unwrap();
    check(&fs, fh);
    fs.release(a.ino, fh).unwrap();
    drop(fs);
    let fs = v.open();
    assert_eq!(fs.getattr(a.ino).unwrap().size, 100 << 20);
    let fh = fs.open_file(a.ino, OpenFlags::default()).unwrap();
    check(&fs, fh);
}

#[test]
fn truncate_and_setattr_during_flights() {
    let v = Vol::with_opts(small());
    let fs = v.open();
    let (a, fh) = fs.create(WHO, ROOT_INO, b"t", 0o644, RW).unwrap();
    let mut model = Vec::new();
    for step in 0..8u64 {
        // Enough to start a background flight, then cut into it at once.
        let d = pattern(step, 3 << 19);
        let off = model.len() as u64 / 2;
        fs.write(a.ino, fh, off, &d).unwrap();
        model.resize((off as usize + d.len()).max(model.len()), 0);
        model[off as usize..off as usize + d.len()].copy_from_slice(&d);
        let cut = model.len() as u64 * 2 / 3;
        let set = SetAttr {
            size: Some(cut),
            ..SetAttr::default()
        };
        assert_eq!(fs.setattr(a.ino, &set, Some(fh)).unwrap().size, cut);
        model.truncate(cut as usize);
        // A write past the end after the cut: the gap must read as zeros, not old bytes.
        let tail = pattern(step + 100, 1000);
        fs.write(a.ino, fh, cut + 5000, &tail).unwrap();
        model.resize(cut as usize + 5000, 0);
        model.extend_from_slice(&tail);
        let got = read_range(&fs, a.ino, fh, 0, model.len() as u64 + 10);
        assert!(got == model, "step {step}");
    }
    fs.fsync(a.ino, Some(fh), false).unwrap();
    fs.release(a.ino, fh).unwrap();
    // Truncate on open while nothing is buffered, then after reopen.
    drop(fs);
    let fs = v.open();
    assert!(read_all(&fs, a.ino) == model);
    let flags = OpenFlags {
        truncate: true,
        ..RW
    };
    let fh = fs.open_file(a.ino, flags).unwrap();
    assert_eq!(fs.getattr(a.ino).unwrap().size, 0);
    fs.release(a.ino, fh).unwrap();
}

/// Unmounts the tmpfs even when the test panics.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn tmpfs(dir: &Path, size: &str, remount: bool) -> bool {
    let o = if remount {
        format!("remount,size={size}")
    } else {
        format!("size={size}")
    };
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &o, "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn failed_background_flush_is_reported_by_fsync_and_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    if !tmpfs(&disk, "4m", false) {
        println!("skipping: cannot mount a tmpfs (not root?)");
        return;
    }
    let _m = Mount(disk.clone());
    let store = Arc::new(BlockStore::open(&disk.join("blocks"), StoreOptions::default()).unwrap());
    let vs = crypto::VolumeSecret::generate().unwrap();
    let meta = tmp.path().join("meta.redb");
    let open = || Fs::open(store.clone(), store.clone(), &meta, &vs, WHO, small()).unwrap();
    let fs = open();
    let (a, fh) = fs.create(WHO, ROOT_INO, b"f", 0o644, RW).unwrap();
    let data = pattern(9, 8 << 20);
    let mut written = 0;
    let mut write_failed = false;
    for c in data.chunks(128 << 10) {
        match fs.write(a.ino, fh, written as u64, c) {
            Ok(_) => written += c.len(),
            Err(e) => {
                // The background failure, reported by the next write.
                assert!(e.is_transient(), "{e}");
                write_failed = true;
                break;
            }
        }
    }
    let r = fs.fsync(a.ino, Some(fh), false);
    assert!(r.is_err() || write_failed, "the full disk went unreported");
    // A retry may fail again or fit (the store reclaims a failed append); either way the
    // data stays buffered until it is stored.
    let _ = fs.fsync(a.ino, Some(fh), false);
    assert!(tmpfs(&disk, "64m", true));
    fs.fsync(a.ino, Some(fh), false).unwrap();
    let back = fs.read(a.ino, fh, 0, written as u32).unwrap();
    assert!(
        back == data[..written],
        "data written before the full disk was lost"
    );
    fs.release(a.ino, fh).unwrap();
    drop(fs);
    let fs = open();
    let (ino, fh) = (a.ino, fs.open_file(a.ino, RW).unwrap());
    let back = fs.read(ino, fh, 0, written as u32).unwrap();
    assert!(back == data[..written], "data lost across reopen");
    assert!(fs.fsck(false).unwrap().problems.is_empty());
}
