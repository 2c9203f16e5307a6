//! Waits on a file that is written without pause. Each of its flights takes off as the
//! previous one lands, so the file always has one running; whoever waits for its flights to
//! end (an fsync, a `sync`, the periodic commit, a close) must still get through instead of
//! waiting until the writing stops. Its own test binary: the stream must not be slowed down
//! by other tests on these two cores, or it pauses and lets a waiter through by chance.
#![allow(clippy::unwrap_used)] // tests panic on purpose
mod common;
use common::*;
use fossa_fs::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[test]
fn fsync_and_sync_get_through_while_a_file_streams() {
    let opts = FsOptions {
        file_dirty_limit: 1 << 20,
        total_dirty_limit: 64 << 20,
        ..FsOptions::default()
    };
    let v = Vol::with_opts(opts);
    let fs = Arc::new(v.open());
    let (a, fha) = fs.create(WHO, ROOT_INO, b"stream", 0o644, RW).unwrap();
    let (b, fhb) = fs.create(WHO, ROOT_INO, b"other", 0o644, RW).unwrap();
    // Bound on the stream: far more than the waits below need (a few flights each), far
    // less than a test may take.
    const STREAM_MIB: u64 = 1024;
    let stop = Arc::new(AtomicBool::new(false));
    let streamer = {
        let (fs, stop) = (fs.clone(), stop.clone());
        std::thread::spawn(move || {
            // 1 MiB writes, as FUSE sends them: each fills the next buffer past the file
            // limit at once, so every landing finds it due and chains it.
            let mib = pattern(9, 1 << 20);
            let mut written = 0;
            while !stop.load(Ordering::SeqCst) && written < STREAM_MIB {
                fs.write(a.ino, fha, written << 20, &mib).unwrap();
                written += 1;
            }
            written
        })
    };
    // Wait until the stream is under way (its flights chained on the writeback thread).
    while fs.getattr(a.ino).unwrap().size < 16 << 20 {
        std::thread::yield_now();
    }
    let data = pattern(3, 2 << 20);
    for (i, c) in data.chunks(64 << 10).enumerate() {
        fs.write(b.ino, fhb, (i as u64) << 16, c).unwrap();
    }
    fs.fsync(b.ino, Some(fhb), false).unwrap();
    fs.sync().unwrap();
    let fha2 = fs.open_file(a.ino, RW).unwrap();
    fs.fsync(a.ino, Some(fha2), false).unwrap();
    fs.flush(a.ino, fha2).unwrap();
    stop.store(true, Ordering::SeqCst);
    let streamed = streamer.join().unwrap();
    assert!(
        streamed < STREAM_MIB,
        "the fsyncs and the sync waited for the whole {STREAM_MIB} MiB stream"
    );
    let back = fs.read(b.ino, fhb, 0, data.len() as u32).unwrap();
    assert!(back == data, "the other file's bytes");
    let mib = pattern(9, 1 << 20);
    let last = fs.read(a.ino, fha2, (streamed - 1) << 20, 1 << 20).unwrap();
    assert!(last == mib, "the stream's last MiB");
    for (ino, fh) in [(a.ino, fha), (a.ino, fha2), (b.ino, fhb)] {
        fs.release(ino, fh).unwrap();
    }
    assert!(fs.fsck(false).unwrap().problems.is_empty());
}
