//! Golden bytes for every fs record and block payload, pointer blocks included
//! (`tests/fixtures/format-v1/fs-*.bin`): each fixed value encodes to the committed bytes,
//! which decode back to the value.
use super::sealed::BlockRef;
use super::sync::{
    Entry, EntryKind, decode_entry, decode_index_rec, decode_pair, encode_entry, encode_index_rec,
    encode_pair,
};
use super::*;
use crate::attr::FileKind;
use crate::format::Inode;
use crate::golden::check;
use blockstore::BlockId;
use std::time::{Duration, UNIX_EPOCH};

fn bref(seed: u8) -> BlockRef {
    BlockRef {
        id: BlockId([seed; 32]),
        key: [seed ^ 0xff; 32],
    }
}

fn at(secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

fn content() -> FileContent {
    FileContent {
        size: 3 << 20,
        root: Some(TreeRoot {
            block: bref(7),
            depth: 1,
        }),
    }
}

fn inode(ino: u64, kind: FileKind) -> Inode {
    Inode {
        ino,
        kind,
        perm: 0o644,
        uid: 1000,
        gid: 100,
        nlink: 1,
        rdev: 0,
        parent: 0,
        atime: at(1_700_000_000, 1),
        mtime: at(1_700_000_001, 2),
        ctime: at(1_700_000_002, 3),
        crtime: at(1_600_000_000, 999_999_999),
        content: if kind == FileKind::File {
            content()
        } else {
            FileContent::default()
        },
        target: if kind == FileKind::Symlink {
            b"../target".to_vec()
        } else {
            Vec::new()
        },
    }
}

#[test]
fn inode_records() {
    for (name, kind) in [
        ("fs-inode-file", FileKind::File),
        ("fs-inode-symlink", FileKind::Symlink),
    ] {
        let i = inode(42, kind);
        let b = encode_inode(&i);
        check(name, &b);
        assert_eq!(decode_inode(42, &b).expect("decode"), i);
    }
}

#[test]
fn small_records() {
    let d = Dirent {
        name: b"report.odt".to_vec(),
        ino: 42,
        kind: FileKind::File,
    };
    check("fs-dirent", &encode_dirent(&d));
    assert_eq!(decode_dirent(&encode_dirent(&d)).expect("dirent"), d);

    let x = Xattr {
        name: b"user.fossa.redundancy".to_vec(),
        value: b"3".to_vec(),
    };
    check("fs-xattr", &encode_xattr(&x));
    assert_eq!(decode_xattr(&encode_xattr(&x)).expect("xattr"), x);

    let s = SnapRecord {
        name: "before-upgrade".into(),
        time: at(1_700_000_000, 5),
        root: bref(9),
    };
    check("fs-snapshot-record", &encode_snap(&s));
    assert_eq!(decode_snap(&encode_snap(&s)).expect("snap"), s);

    let sup = Super { next_ino: 1234 };
    check("fs-super", &encode_super(&sup));
    assert_eq!(decode_super(&encode_super(&sup)).expect("super"), sup);
}

#[test]
fn snapshot_directory_block() {
    let mut this = inode(1, FileKind::Dir);
    this.parent = 1;
    let d = SnapDir {
        this,
        entries: vec![
            SnapEntry {
                name: b"a.txt".to_vec(),
                inode: inode(2, FileKind::File),
                sub: None,
            },
            SnapEntry {
                name: b"sub".to_vec(),
                inode: inode(3, FileKind::Dir),
                sub: Some(bref(4)),
            },
        ],
    };
    let b = encode_snapdir(&d);
    check("fs-snapshot-dir", &b);
    assert_eq!(decode_snapdir(&b).expect("snapdir"), d);
}

#[test]
fn content_and_block_ref() {
    let mut b = Vec::new();
    content().encode(&mut b);
    check("fs-file-content", &b);
    assert_eq!(FileContent::decode(&b).expect("content"), content());

    let mut r = Vec::new();
    bref(3).encode(&mut r);
    check("fs-block-ref", &r);
    assert_eq!(BlockRef::decode(&r).expect("ref"), bref(3));
}

#[test]
fn sync_records() {
    let e = Entry {
        path: b"photos/2026/a.jpg".to_vec(),
        kind: EntryKind::File,
        deleted: false,
        perm: 0o640,
        mtime: at(1_700_000_000, 123),
        content: content(),
        target: Vec::new(),
        version: vec![(1, 3), (7, 1)],
        author: [5; 32],
        xattrs: vec![(b"user.fossa.redundancy".to_vec(), b"2".to_vec())],
    };
    let b = encode_entry(&e);
    check("fs-sync-entry", &b);
    assert_eq!(decode_entry(&b).expect("entry"), e);

    let rec = encode_index_rec(77, b"sealed entry");
    check("fs-sync-index-record", &rec);
    assert_eq!(
        decode_index_rec(&rec).expect("rec"),
        (77, b"sealed entry".to_vec())
    );

    let pair = encode_pair(3, 9);
    check("fs-sync-pair", &pair);
    assert_eq!(decode_pair(&pair).expect("pair"), (3, 9));
}

#[test]
fn pointer_block() {
    let entries = [
        pointer::Entry {
            r: Some(bref(1)),
            len: 65_536,
        },
        pointer::Entry::hole(4096),
        pointer::Entry {
            r: Some(bref(2)),
            len: 1,
        },
    ];
    let p = pointer::encode_pointer(1, &entries);
    check("fs-pointer-block", &p);
    assert_eq!(
        pointer::decode_pointer(BlockId([0; 32]), 1, &p).expect("pointer"),
        entries
    );
}
