//! Snapshots (browse, read-only, immutability, persistence), gc and fsck.
#![allow(clippy::unwrap_used)]
mod common;
use blockstore::{BlockId, BlockSource, StoreError};
use common::*;
use fossa_fs::*;
use parking_lot::Mutex;
use std::sync::Arc;

fn snap_path(fs: &Fs, snap: &str, path: &str) -> Result<Attr, FsError> {
    let mut a = fs.lookup(ROOT_INO, b".snapshots")?;
    a = fs.lookup(a.ino, snap.as_bytes())?;
    for c in path.split('/').filter(|c| !c.is_empty()) {
        a = fs.lookup(a.ino, c.as_bytes())?;
    }
    Ok(a)
}

fn snap_read(fs: &Fs, a: &Attr) -> Vec<u8> {
    let fh = fs.open_file(a.ino, OpenFlags::default()).unwrap();
    let d = fs.read(a.ino, fh, 0, a.size as u32 + 1).unwrap();
    fs.release(a.ino, fh).unwrap();
    d
}

#[test]
fn snapshot_browse_read_only_and_persistent() {
    let v = Vol::new();
    let fs = v.open();
    let d = fs.mkdir(WHO, ROOT_INO, b"d", 0o750).unwrap();
    let f = write_file(&fs, d.ino, "f", b"version one");
    fs.link(f.ino, ROOT_INO, b"hard").unwrap();
    fs.symlink(WHO, d.ino, b"l", b"f").unwrap();
    let info = fs.snapshot("s1").unwrap();
    assert_eq!(fs.snapshots().unwrap(), vec![info.clone()]);
    assert!(matches!(fs.snapshot("s1"), Err(FsError::Exists)));
    // Later changes do not show in the snapshot.
    let fh = fs
        .open_file(
            f.ino,
            OpenFlags {
                write: true,
                truncate: true,
                append: false,
            },
        )
        .unwrap();
    fs.write(f.ino, fh, 0, b"version two, longer").unwrap();
    fs.release(f.ino, fh).unwrap();
    fs.unlink(d.ino, b"l").unwrap();
    // The root does not list `.snapshots`, but it can be entered.
    assert!(!names(&fs, ROOT_INO).contains(&".snapshots".to_string()));
    let sr = fs.lookup(ROOT_INO, b".snapshots").unwrap();
    assert_eq!(names(&fs, sr.ino), vec!["s1".to_string()]);
    assert_eq!(fs.lookup(sr.ino, b"..").unwrap().ino, ROOT_INO);
    let sf = snap_path(&fs, "s1", "d/f").unwrap();
    assert_eq!(snap_read(&fs, &sf), b"version one");
    assert_eq!(sf.perm, f.perm);
    assert_eq!(snap_path(&fs, "s1", "hard").unwrap().ino, sf.ino);
    let sd = snap_path(&fs, "s1", "d").unwrap();
    assert_eq!(names(&fs, sd.ino), vec!["f".to_string(), "l".to_string()]);
    assert_eq!(
        fs.readlink(snap_path(&fs, "s1", "d/l").unwrap().ino)
            .unwrap(),
        b"f"
    );
    assert_eq!(
        fs.lookup(sd.ino, b"..").unwrap().ino,
        snap_path(&fs, "s1", "").unwrap().ino
    );
    // Everything below is read-only.
    assert!(matches!(
        fs.mkdir(WHO, sd.ino, b"x", 0o755),
        Err(FsError::ReadOnly)
    ));
    assert!(matches!(fs.unlink(sd.ino, b"f"), Err(FsError::ReadOnly)));
    assert!(matches!(fs.open_file(sf.ino, RW), Err(FsError::ReadOnly)));
    assert!(matches!(
        fs.setattr(sf.ino, &SetAttr::default(), None),
        Err(FsError::ReadOnly)
    ));
    assert!(matches!(
        fs.mkdir(WHO, ROOT_INO, b".snapshots", 0o755),
        Err(FsError::ReadOnly)
    ));
    assert!(matches!(
        fs.rename(sd.ino, b"f", ROOT_INO, b"y", RenameMode::Replace),
        Err(FsError::ReadOnly)
    ));
    drop(fs);
    let fs = v.open();
    assert_eq!(
        snap_read(&fs, &snap_path(&fs, "s1", "d/f").unwrap()),
        b"version one"
    );
    assert_eq!(read_all(&fs, f.ino), b"version two, longer");
    assert_eq!(fs.snapshots().unwrap(), vec![info]);
    fs.remove_snapshot("s1").unwrap();
    assert!(matches!(fs.remove_snapshot("s1"), Err(FsError::NotFound)));
    assert!(fs.snapshots().unwrap().is_empty());
    assert!(matches!(snap_path(&fs, "s1", ""), Err(FsError::NotFound)));
}

#[test]
fn gc_keeps_snapshot_blocks_and_drops_deleted_ones() {
    let v = Vol::new();
    let fs = v.open();
    write_file(&fs, ROOT_INO, "kept", b"in a snapshot");
    fs.snapshot("s").unwrap();
    write_file(&fs, ROOT_INO, "gone", b"deleted before gc");
    fs.sync().unwrap();
    let before = v.store.stats().own_blocks;
    fs.unlink(ROOT_INO, b"gone").unwrap();
    fs.unlink(ROOT_INO, b"kept").unwrap();
    let r = fs.gc().unwrap();
    assert_eq!(r.store.blocks_removed, 1);
    assert_eq!(v.store.stats().own_blocks, before - 1);
    assert_eq!(
        snap_read(&fs, &snap_path(&fs, "s", "kept").unwrap()),
        b"in a snapshot"
    );
    fs.remove_snapshot("s").unwrap();
    let r = fs.gc().unwrap();
    assert_eq!((r.live_blocks, r.store.blocks_removed), (0, 2));
    let st = fs.stats().unwrap();
    assert_eq!((st.inodes, st.files, st.dirs, st.snapshots), (1, 0, 1, 0));
}

/// Reads through the store; once armed, corrupts the next block it serves and remembers it.
struct Flaky {
    store: Arc<blockstore::BlockStore>,
    armed: Mutex<bool>,
    bad: Mutex<Option<BlockId>>,
}

impl BlockSource for Flaky {
    fn get_block(&self, id: &BlockId) -> Result<Vec<u8>, StoreError> {
        let mut b = self.store.get(id)?;
        let mut bad = self.bad.lock();
        if *self.armed.lock() && bad.is_none_or(|x| x == *id) {
            *bad = Some(*id);
            let n = b.len() / 2;
            b[n] ^= 1;
        }
        Ok(b)
    }
}

#[test]
fn fsck_clean_then_reports_corrupt_block() {
    let v = Vol::new();
    let flaky = Arc::new(Flaky {
        store: v.store.clone(),
        armed: Mutex::new(false),
        bad: Mutex::new(None),
    });
    let fs = Fs::open(
        v.store.clone(),
        flaky.clone(),
        &v.meta(),
        &v.vs,
        WHO,
        FsOptions::default(),
    )
    .unwrap();
    let d = fs.mkdir(WHO, ROOT_INO, b"d", 0o755).unwrap();
    write_file(&fs, d.ino, "secret-name-a", b"aaaa");
    write_file(&fs, d.ino, "secret-name-b", b"bbbb");
    fs.snapshot("s").unwrap();
    let r = fs.fsck(false).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.inodes, 4);
    assert!(r.blocks >= 4, "{}", r.blocks);
    *flaky.armed.lock() = true;
    let r = fs.fsck(false).unwrap();
    let id = flaky.bad.lock().expect("a block was read").to_string();
    assert!(
        r.problems.iter().any(|p| p.contains(&id)),
        "{:?}",
        r.problems
    );
    assert!(r.problems.iter().all(|p| !p.contains("secret-name")));
}
