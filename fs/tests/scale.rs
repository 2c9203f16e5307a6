//! Throughput of metadata operations and concurrent use of one `Fs` from several threads.
#![allow(clippy::unwrap_used)]
mod common;
use common::*;
use fossa_fs::*;
use std::sync::Arc;

#[test]
fn fs_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Fs>();
}

#[test]
fn many_creates_are_memory_operations() {
    let v = Vol::new();
    let fs = v.open();
    let t = std::time::Instant::now();
    for i in 0..20_000 {
        fs.mknod(
            WHO,
            ROOT_INO,
            format!("file-{i}").as_bytes(),
            FileKind::File,
            0o644,
            0,
        )
        .unwrap();
    }
    let per_sec = 20_000.0 / t.elapsed().as_secs_f64();
    fs.sync().unwrap();
    eprintln!("{per_sec:.0} creates/s, sync took {:?}", t.elapsed());
    drop(fs);
    let fs = v.open();
    assert_eq!(fs.readdir(ROOT_INO, 0, usize::MAX).unwrap().len(), 20_002);
}

#[test]
fn concurrent_writers_and_syncs() {
    let v = Vol::with_opts(FsOptions {
        file_dirty_limit: 4096,
        ..FsOptions::default()
    });
    let fs = Arc::new(v.open());
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let fs = fs.clone();
            std::thread::spawn(move || {
                let d = fs
                    .mkdir(WHO, ROOT_INO, format!("t{t}").as_bytes(), 0o755)
                    .unwrap();
                for i in 0..50u32 {
                    let name = format!("f{i}");
                    let (a, fh) = fs.create(WHO, d.ino, name.as_bytes(), 0o644, RW).unwrap();
                    for k in 0..10u64 {
                        fs.write(a.ino, fh, k * 1000, &[t; 1000]).unwrap();
                    }
                    fs.release(a.ino, fh).unwrap();
                    if i % 10 == 0 {
                        fs.sync().unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let fs = Arc::try_unwrap(fs).ok().unwrap();
    drop(fs);
    let fs = v.open();
    for t in 0..4u8 {
        let a = resolve(&fs, &format!("t{t}/f49")).unwrap();
        assert_eq!(read_all(&fs, a.ino), vec![t; 10_000]);
    }
    assert!(fs.fsck(false).unwrap().problems.is_empty());
}
