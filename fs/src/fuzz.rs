//! Entry points for the fuzz targets (`fuzz/`) and their corpus replay test: each takes
//! arbitrary bytes, runs one decoder of bytes from disk or from a peer, and panics only when
//! a property fails (a decoded value that does not encode back to the same bytes, or a limit
//! the decoder promises that it did not keep). Errors are the expected answer to bad bytes.
//! Not an API: the fuzz crate and tests are the only callers.
use crate::crypto::{BlockRef, VolumeKeys, VolumeSecret};
use crate::file::{FILE_CONTENT_LEN, FileContent, MAX_FANOUT};
use crate::format::pointer;
use crate::format::{self, sync};
use crate::volkey;
use blockstore::BlockId;

/// Every target of this crate, by the name of its corpus directory under `fuzz/corpus/`.
pub const TARGETS: &[blockstore::fuzz::Target] = &[
    ("pointer_block", pointer_block),
    ("file_content", file_content),
    ("inode_record", inode_record),
    ("meta_records", meta_records),
    ("snapshot_dir", snapshot_dir),
    ("sync_records", sync_records),
    ("volume_key", volume_key),
    ("sealed", sealed),
];

/// A pointer block payload: byte 0 is the height the parent claims, the rest the payload.
pub fn pointer_block(data: &[u8]) {
    let Some((&height, p)) = data.split_first() else {
        return;
    };
    let Ok(entries) = pointer::decode_pointer(BlockId([0; 32]), height, p) else {
        return;
    };
    assert!(!entries.is_empty() && entries.len() <= MAX_FANOUT);
    assert!(entries.iter().all(|e| e.len > 0));
    assert_eq!(pointer::encode_pointer(height, &entries), p);
}

/// The content reference of an inode or sync entry.
pub fn file_content(data: &[u8]) {
    let Ok(c) = FileContent::decode(data) else {
        return;
    };
    let mut out = Vec::new();
    c.encode(&mut out);
    assert_eq!(out, data[..FILE_CONTENT_LEN]);
}

/// An inode record (metadata table 1, and inside snapshot directory blocks).
pub fn inode_record(data: &[u8]) {
    if let Ok(i) = format::decode_inode(7, data) {
        assert_eq!(format::encode_inode(&i), data);
    }
}

/// Byte 0 picks the record: directory entry, xattr, snapshot, superblock.
pub fn meta_records(data: &[u8]) {
    let Some((&which, b)) = data.split_first() else {
        return;
    };
    let again = match which % 4 {
        0 => format::decode_dirent(b).map(|d| format::encode_dirent(&d)),
        1 => format::decode_xattr(b).map(|x| format::encode_xattr(&x)),
        2 => format::decode_snap(b).map(|s| format::encode_snap(&s)),
        _ => format::decode_super(b).map(|s| format::encode_super(&s)),
    };
    if let Ok(again) = again {
        assert_eq!(again, b);
    }
}

/// A snapshot directory block payload.
pub fn snapshot_dir(data: &[u8]) {
    if let Ok(d) = format::decode_snapdir(data) {
        assert_eq!(format::encode_snapdir(&d), data);
    }
}

/// Byte 0 picks the record: sync index entry, local index record, counter pair.
pub fn sync_records(data: &[u8]) {
    let Some((&which, b)) = data.split_first() else {
        return;
    };
    let again = match which % 3 {
        0 => sync::decode_entry(b).map(|e| sync::encode_entry(&e)),
        1 => sync::decode_index_rec(b).map(|(s, blob)| sync::encode_index_rec(s, &blob)),
        _ => sync::decode_pair(b).map(|(x, y)| sync::encode_pair(x, y)),
    };
    if let Ok(again) = again {
        assert_eq!(again, b);
    }
}

/// A `volume.key` file (unsealed with a fixed key file), and a wrapped secret of an
/// invitation. Byte 0 picks which.
pub fn volume_key(data: &[u8]) {
    let Some((&which, b)) = data.split_first() else {
        return;
    };
    match which % 2 {
        0 => {
            if volkey::volume_id(b).is_ok() {
                // A parsed file's KDF cost is within the bounds unlocking can afford.
                assert!(volkey::kdf_params(b).is_ok_and(|k| volkey::kdf_affordable(&k)));
            }
            let _ = volkey::unseal(b, &volkey::Unlock::KeyFile(&[3; 32]));
        }
        _ => {
            let _ = volkey::unwrap_invite(b, &[3; 32], &[4; 16]);
        }
    }
}

/// Sealed envelopes: opening arbitrary bytes as a block, record or update fails cleanly;
/// sealing the bytes and opening them gives them back; a sealed update that opens goes
/// through the sync entry decoder as a peer's would.
pub fn sealed(data: &[u8]) {
    let keys = VolumeKeys::derive(&VolumeSecret([5; 32]));
    let r = BlockRef {
        id: BlockId([1; 32]),
        key: [2; 32],
    };
    let _ = keys.open_block(&r, data);
    let _ = keys.open_record(1, b"k", data);
    let _ = keys.open_update(data);
    if let Ok((key, stored)) = keys.seal_block(data) {
        let r = BlockRef {
            id: BlockId(*blake3::hash(&stored).as_bytes()),
            key,
        };
        assert_eq!(keys.open_block(&r, &stored).ok().as_deref(), Some(data));
    }
    if let Ok(s) = keys.seal_update(data) {
        let plain = keys.open_update(&s).ok();
        assert_eq!(plain.as_deref(), Some(data));
        let _ = sync::decode_entry(data);
    }
}

/// Valid inputs to start each target's corpus from, by target name.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use crate::attr::{Caller, FileKind};
    use crate::file::TreeRoot;
    use crate::format::Inode;
    use crate::format::{Dirent, SnapDir, SnapEntry, SnapRecord, Super, Xattr};
    use crate::sync::{Entry, EntryKind};
    use std::time::{Duration, UNIX_EPOCH};
    let r = BlockRef {
        id: BlockId([1; 32]),
        key: [2; 32],
    };
    let content = FileContent {
        size: 70_000,
        root: Some(TreeRoot { block: r, depth: 1 }),
    };
    let who = Caller {
        uid: 1000,
        gid: 1000,
        umask: 0o022,
    };
    let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
    let mut file = Inode::new(7, FileKind::File, who, 0o644, t);
    file.content = content;
    let mut link = Inode::new(8, FileKind::Symlink, who, 0o777, t);
    link.target = b"../target".to_vec();
    let dir = Inode::new(2, FileKind::Dir, who, 0o755, t);
    let entries = [
        pointer::Entry {
            r: Some(r),
            len: 65_536,
        },
        pointer::Entry::hole(4464),
    ];
    let mut out = vec![
        (
            "pointer_block",
            [&[1u8][..], &pointer::encode_pointer(1, &entries)].concat(),
        ),
        ("inode_record", format::encode_inode(&file)),
        ("inode_record", format::encode_inode(&link)),
    ];
    let mut fc = Vec::new();
    content.encode(&mut fc);
    out.push(("file_content", fc));
    let dirent = Dirent {
        name: b"notes.txt".to_vec(),
        ino: 7,
        kind: FileKind::File,
    };
    let xattr = Xattr {
        name: b"user.fossa.redundancy".to_vec(),
        value: b"2".to_vec(),
    };
    let snap = SnapRecord {
        name: "2026-12-07".into(),
        time: t,
        root: r,
    };
    for (i, rec) in [
        format::encode_dirent(&dirent),
        format::encode_xattr(&xattr),
        format::encode_snap(&snap),
        format::encode_super(&Super { next_ino: 9 }),
    ]
    .into_iter()
    .enumerate()
    {
        out.push(("meta_records", [&[i as u8][..], &rec].concat()));
    }
    let sd = SnapDir {
        this: dir,
        entries: vec![
            SnapEntry {
                name: b"notes.txt".to_vec(),
                inode: file.clone(),
                sub: None,
            },
            SnapEntry {
                name: b"link".to_vec(),
                inode: link,
                sub: Some(r),
            },
        ],
    };
    out.push(("snapshot_dir", format::encode_snapdir(&sd)));
    let e = Entry {
        path: b"a/notes.txt".to_vec(),
        kind: EntryKind::File,
        deleted: false,
        perm: 0o644,
        mtime: t,
        content,
        target: Vec::new(),
        version: vec![(1, 2), (7, 1)],
        author: [9; 32],
        xattrs: vec![(b"user.x".to_vec(), b"y".to_vec())],
    };
    out.push((
        "sync_records",
        [&[0u8][..], &sync::encode_entry(&e)].concat(),
    ));
    out.push((
        "sync_records",
        [&[1u8][..], &sync::encode_index_rec(5, b"blob")].concat(),
    ));
    out.push((
        "sync_records",
        [&[2u8][..], &sync::encode_pair(3, 4)].concat(),
    ));
    let vs = VolumeSecret([6; 32]);
    let how = volkey::Unlock::KeyFile(&[3; 32]);
    if let Ok(k) = volkey::seal(&vs, &[4; 16], &how, volkey::KdfParams::default()) {
        out.push(("volume_key", [&[0u8][..], &k].concat()));
    }
    if let Ok(w) = volkey::wrap_for_invite(&vs, &[3; 32], &[4; 16]) {
        out.push(("volume_key", [&[1u8][..], &w].concat()));
    }
    out.push(("sealed", sync::encode_entry(&e)));
    out
}
