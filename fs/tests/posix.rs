//! POSIX semantics of the `Fs` API: attributes, links, rename modes, readdir, xattrs.
#![allow(clippy::unwrap_used)]
mod common;
use common::*;
use fossa_fs::*;
use std::time::{Duration, UNIX_EPOCH};

#[test]
fn attributes_persist_across_reopen() {
    let v = Vol::new();
    let (f, d, l, n, x);
    {
        let fs = v.open();
        d = fs.mkdir(WHO, ROOT_INO, b"d", 0o3775).unwrap();
        f = write_file(&fs, d.ino, "f", b"hello world");
        let t = UNIX_EPOCH + Duration::new(1_234_567_890, 987_654_321);
        let set = SetAttr {
            perm: Some(0o4751),
            uid: Some(42),
            gid: Some(43),
            atime: Some(TimeSet::At(t)),
            mtime: Some(TimeSet::At(t)),
            ..SetAttr::default()
        };
        fs.setattr(f.ino, &set, None).unwrap();
        l = fs.symlink(WHO, d.ino, b"l", b"../target/x").unwrap();
        n = fs
            .mknod(WHO, d.ino, b"dev", FileKind::CharDev, 0o600, 0x0103)
            .unwrap();
        x = fs
            .mknod(WHO, ROOT_INO, b"fifo", FileKind::Fifo, 0o666, 0)
            .unwrap();
        fs.setxattr(f.ino, b"user.k", b"v", XattrMode::Any).unwrap();
        drop(fs);
    }
    let fs = v.open();
    let f2 = resolve(&fs, "d/f").unwrap();
    assert_eq!(f2.perm, 0o4751);
    assert_eq!((f2.uid, f2.gid, f2.size, f2.nlink), (42, 43, 11, 1));
    assert_eq!(
        f2.mtime,
        UNIX_EPOCH + Duration::new(1_234_567_890, 987_654_321)
    );
    assert_eq!(f2.crtime, f.crtime);
    assert_eq!(read_all(&fs, f2.ino), b"hello world");
    assert_eq!(
        fs.getattr(d.ino).unwrap(),
        fs.lookup(ROOT_INO, b"d").unwrap()
    );
    assert_eq!(fs.getattr(d.ino).unwrap().perm, 0o3775 & !0o022);
    assert_eq!(fs.readlink(l.ino).unwrap(), b"../target/x");
    assert_eq!(fs.getattr(l.ino).unwrap().size, 11);
    let n2 = fs.getattr(n.ino).unwrap();
    assert_eq!(
        (n2.kind, n2.rdev, n2.perm),
        (FileKind::CharDev, 0x0103, 0o600)
    );
    assert_eq!(fs.getattr(x.ino).unwrap().kind, FileKind::Fifo);
    assert_eq!(fs.getxattr(f.ino, b"user.k").unwrap(), b"v");
    assert_eq!(fs.getattr(ROOT_INO).unwrap().nlink, 3);
}

#[test]
fn names_are_checked() {
    let v = Vol::new();
    let fs = v.open();
    assert!(matches!(
        fs.mkdir(WHO, ROOT_INO, &[b'a'; 256], 0o755),
        Err(FsError::NameTooLong)
    ));
    assert!(fs.mkdir(WHO, ROOT_INO, &[b'a'; 255], 0o755).is_ok());
    assert!(matches!(
        fs.mkdir(WHO, ROOT_INO, b"a/b", 0o755),
        Err(FsError::Invalid(_))
    ));
    assert!(matches!(
        fs.mkdir(WHO, ROOT_INO, b"a\0b", 0o755),
        Err(FsError::Invalid(_))
    ));
    assert!(matches!(
        fs.lookup(ROOT_INO, b"nope"),
        Err(FsError::NotFound)
    ));
    let d = fs.mkdir(WHO, ROOT_INO, b"d", 0o755).unwrap();
    assert!(matches!(
        fs.mkdir(WHO, ROOT_INO, b"d", 0o755),
        Err(FsError::Exists)
    ));
    assert_eq!(fs.lookup(d.ino, b"..").unwrap().ino, ROOT_INO);
    assert_eq!(fs.lookup(d.ino, b".").unwrap().ino, d.ino);
    let f = write_file(&fs, d.ino, "f", b"");
    assert!(matches!(fs.lookup(f.ino, b"x"), Err(FsError::NotDir)));
    assert!(matches!(fs.rmdir(ROOT_INO, b"d"), Err(FsError::NotEmpty)));
    assert!(matches!(fs.unlink(ROOT_INO, b"d"), Err(FsError::IsDir)));
    assert!(matches!(fs.rmdir(d.ino, b"f"), Err(FsError::NotDir)));
}

#[test]
fn setgid_directories_pass_group_and_bit() {
    let v = Vol::new();
    let fs = v.open();
    let d = fs.mkdir(WHO, ROOT_INO, b"d", 0o2775).unwrap();
    fs.setattr(
        d.ino,
        &SetAttr {
            gid: Some(500),
            ..SetAttr::default()
        },
        None,
    )
    .unwrap();
    let sub = fs.mkdir(WHO, d.ino, b"s", 0o755).unwrap();
    assert_eq!((sub.gid, sub.perm & 0o2000), (500, 0o2000));
    let f = write_file(&fs, d.ino, "f", b"");
    assert_eq!((f.gid, f.perm & 0o2000), (500, 0));
}

#[test]
fn timestamps_follow_operations() {
    let v = Vol::new();
    let fs = v.open();
    let d = fs.mkdir(WHO, ROOT_INO, b"d", 0o755).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let f = write_file(&fs, d.ino, "f", b"x");
    let d2 = fs.getattr(d.ino).unwrap();
    assert!(d2.mtime > d.mtime && d2.ctime > d.ctime);
    std::thread::sleep(Duration::from_millis(5));
    fs.link(f.ino, ROOT_INO, b"h").unwrap();
    let f2 = fs.getattr(f.ino).unwrap();
    assert!(f2.ctime > f.ctime);
    assert_eq!(f2.mtime, f.mtime);
    let set = SetAttr {
        mtime: Some(TimeSet::Now),
        ..SetAttr::default()
    };
    std::thread::sleep(Duration::from_millis(5));
    assert!(fs.setattr(f.ino, &set, None).unwrap().mtime > f2.mtime);
}

#[test]
fn hard_links_count_and_survive_unlink() {
    let v = Vol::new();
    let fs = v.open();
    let d = fs.mkdir(WHO, ROOT_INO, b"d", 0o755).unwrap();
    let f = write_file(&fs, ROOT_INO, "f", b"data");
    assert_eq!(fs.link(f.ino, d.ino, b"g").unwrap().nlink, 2);
    assert!(matches!(
        fs.link(d.ino, ROOT_INO, b"dd"),
        Err(FsError::NotPermitted)
    ));
    assert!(matches!(fs.link(f.ino, d.ino, b"g"), Err(FsError::Exists)));
    fs.unlink(ROOT_INO, b"f").unwrap();
    let g = resolve(&fs, "d/g").unwrap();
    assert_eq!((g.ino, g.nlink), (f.ino, 1));
    assert_eq!(read_all(&fs, g.ino), b"data");
    fs.unlink(d.ino, b"g").unwrap();
    assert!(matches!(fs.getattr(f.ino), Err(FsError::NotFound)));
}

#[test]
fn rename_modes() {
    let v = Vol::new();
    let fs = v.open();
    let a = fs.mkdir(WHO, ROOT_INO, b"a", 0o755).unwrap();
    let b = fs.mkdir(WHO, ROOT_INO, b"b", 0o755).unwrap();
    let sub = fs.mkdir(WHO, a.ino, b"sub", 0o755).unwrap();
    let f = write_file(&fs, a.ino, "f", b"F");
    let g = write_file(&fs, b.ino, "g", b"G");
    // Across directories, fixing `..` and link counts.
    fs.rename(a.ino, b"sub", b.ino, b"sub2", RenameMode::Replace)
        .unwrap();
    assert_eq!(fs.lookup(sub.ino, b"..").unwrap().ino, b.ino);
    assert_eq!(fs.getattr(a.ino).unwrap().nlink, 2);
    assert_eq!(fs.getattr(b.ino).unwrap().nlink, 3);
    // Into its own subtree.
    let r = fs.rename(ROOT_INO, b"b", sub.ino, b"x", RenameMode::Replace);
    assert!(matches!(r, Err(FsError::Invalid(_))));
    assert!(matches!(
        fs.rename(ROOT_INO, b"b", b.ino, b"x", RenameMode::Replace),
        Err(FsError::Invalid(_))
    ));
    // NoReplace.
    let r = fs.rename(a.ino, b"f", b.ino, b"g", RenameMode::NoReplace);
    assert!(matches!(r, Err(FsError::Exists)));
    // Replace over a file: the old target goes away.
    fs.rename(a.ino, b"f", b.ino, b"g", RenameMode::Replace)
        .unwrap();
    assert_eq!(resolve(&fs, "b/g").unwrap().ino, f.ino);
    assert!(matches!(fs.getattr(g.ino), Err(FsError::NotFound)));
    assert_eq!(names(&fs, a.ino), Vec::<String>::new());
    // Kind mismatches.
    assert!(matches!(
        fs.rename(b.ino, b"sub2", b.ino, b"g", RenameMode::Replace),
        Err(FsError::NotDir)
    ));
    assert!(matches!(
        fs.rename(b.ino, b"g", ROOT_INO, b"a", RenameMode::Replace),
        Err(FsError::IsDir)
    ));
    // Dir over an empty dir, then over a non-empty one.
    fs.rename(b.ino, b"sub2", ROOT_INO, b"a", RenameMode::Replace)
        .unwrap();
    assert_eq!(fs.lookup(ROOT_INO, b"a").unwrap().ino, sub.ino);
    assert_eq!(fs.getattr(ROOT_INO).unwrap().nlink, 4);
    assert!(matches!(fs.getattr(a.ino), Err(FsError::NotFound)));
    assert!(matches!(
        fs.rename(ROOT_INO, b"a", ROOT_INO, b"b", RenameMode::Replace),
        Err(FsError::NotEmpty)
    ));
    // Exchange a dir and a file across directories.
    let r = fs.rename(ROOT_INO, b"a", b.ino, b"none", RenameMode::Exchange);
    assert!(matches!(r, Err(FsError::NotFound)));
    fs.rename(ROOT_INO, b"a", b.ino, b"g", RenameMode::Exchange)
        .unwrap();
    assert_eq!(resolve(&fs, "a").unwrap().ino, f.ino);
    assert_eq!(resolve(&fs, "b/g").unwrap().ino, sub.ino);
    assert_eq!(fs.lookup(sub.ino, b"..").unwrap().ino, b.ino);
    assert_eq!(fs.getattr(ROOT_INO).unwrap().nlink, 3);
    assert_eq!(fs.getattr(b.ino).unwrap().nlink, 3);
    // Renaming onto a hard link of itself does nothing.
    fs.link(f.ino, ROOT_INO, b"f2").unwrap();
    fs.rename(ROOT_INO, b"a", ROOT_INO, b"f2", RenameMode::Replace)
        .unwrap();
    assert_eq!(fs.getattr(f.ino).unwrap().nlink, 2);
}

#[test]
fn readdir_is_stable_while_deleting() {
    let v = Vol::new();
    let fs = v.open();
    let d = fs.mkdir(WHO, ROOT_INO, b"d", 0o755).unwrap();
    for i in 0..500 {
        fs.mknod(
            WHO,
            d.ino,
            format!("f{i}").as_bytes(),
            FileKind::File,
            0o644,
            0,
        )
        .unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    let mut after = 0;
    loop {
        let batch = fs.readdir(d.ino, after, 7).unwrap();
        let Some(last) = batch.last() else { break };
        after = last.cookie;
        for e in batch {
            assert!(e.cookie >= 1);
            if e.name != b"." && e.name != b".." {
                assert!(seen.insert(e.name.clone()), "repeated entry");
                fs.unlink(d.ino, &e.name).unwrap();
            }
        }
    }
    assert_eq!(seen.len(), 500);
    fs.rmdir(ROOT_INO, b"d").unwrap();
}

#[test]
fn unlinked_open_file_stays_readable() {
    let v = Vol::new();
    let fs = v.open();
    let (a, fh) = fs.create(WHO, ROOT_INO, b"tmp", 0o600, RW).unwrap();
    fs.write(a.ino, fh, 0, b"still here").unwrap();
    fs.unlink(ROOT_INO, b"tmp").unwrap();
    fs.sync().unwrap();
    assert_eq!(fs.read(a.ino, fh, 0, 100).unwrap(), b"still here");
    assert_eq!(fs.getattr(a.ino).unwrap().nlink, 0);
    fs.write(a.ino, fh, 10, b"!").unwrap();
    assert_eq!(fs.read(a.ino, fh, 0, 100).unwrap(), b"still here!");
    fs.release(a.ino, fh).unwrap();
    assert!(matches!(fs.getattr(a.ino), Err(FsError::NotFound)));
    assert!(matches!(
        fs.read(a.ino, fh, 0, 1),
        Err(FsError::BadHandle(_))
    ));
    drop(fs);
    let fs = v.open();
    assert!(matches!(fs.getattr(a.ino), Err(FsError::NotFound)));
}

#[test]
fn xattr_modes() {
    let v = Vol::new();
    let fs = v.open();
    let f = write_file(&fs, ROOT_INO, "f", b"");
    let big = vec![7u8; 64 << 10];
    assert!(matches!(
        fs.setxattr(f.ino, b"user.a", b"1", XattrMode::Replace),
        Err(FsError::NoAttr)
    ));
    fs.setxattr(f.ino, b"user.a", b"1", XattrMode::Create)
        .unwrap();
    assert!(matches!(
        fs.setxattr(f.ino, b"user.a", b"2", XattrMode::Create),
        Err(FsError::Exists)
    ));
    fs.setxattr(f.ino, b"user.a", b"2", XattrMode::Replace)
        .unwrap();
    fs.setxattr(f.ino, b"security.selinux", &big, XattrMode::Any)
        .unwrap();
    assert!(
        fs.setxattr(f.ino, b"user.big", &[0; (64 << 10) + 1], XattrMode::Any)
            .is_err()
    );
    // No ACLs: refusing them makes cp -a / rsync fall back to chmod.
    assert!(matches!(
        fs.setxattr(f.ino, b"system.posix_acl_access", b"\x02", XattrMode::Any),
        Err(FsError::NotSupported)
    ));
    let mut l = fs.listxattr(f.ino).unwrap();
    l.sort();
    assert_eq!(l, vec![b"security.selinux".to_vec(), b"user.a".to_vec()]);
    assert_eq!(fs.getxattr(f.ino, b"user.a").unwrap(), b"2");
    fs.removexattr(f.ino, b"user.a").unwrap();
    assert!(matches!(
        fs.getxattr(f.ino, b"user.a"),
        Err(FsError::NoAttr)
    ));
    assert!(matches!(
        fs.removexattr(f.ino, b"user.a"),
        Err(FsError::NoAttr)
    ));
    drop(fs);
    let fs = v.open();
    assert_eq!(fs.getxattr(f.ino, b"security.selinux").unwrap(), big);
    assert_eq!(fs.listxattr(f.ino).unwrap().len(), 1);
}

#[test]
fn file_io_truncate_append_fallocate() {
    let v = Vol::with_opts(FsOptions {
        file_dirty_limit: 100,
        ..FsOptions::default()
    });
    let fs = v.open();
    let (a, fh) = fs.create(WHO, ROOT_INO, b"f", 0o644, RW).unwrap();
    for i in 0..50u8 {
        fs.write(a.ino, fh, u64::from(i) * 10, &[i; 10]).unwrap();
    }
    fs.write(a.ino, fh, 1000, b"end").unwrap();
    assert_eq!(fs.getattr(a.ino).unwrap().size, 1003);
    let d = fs.read(a.ino, fh, 0, 2000).unwrap();
    assert_eq!(d.len(), 1003);
    assert_eq!(&d[490..500], &[49; 10]);
    assert!(d[500..1000].iter().all(|b| *b == 0));
    fs.setattr(
        a.ino,
        &SetAttr {
            size: Some(5),
            ..SetAttr::default()
        },
        Some(fh),
    )
    .unwrap();
    assert_eq!(fs.read(a.ino, fh, 0, 100).unwrap(), vec![0; 5]);
    fs.fallocate(a.ino, fh, 0, 20, false).unwrap();
    assert_eq!(fs.getattr(a.ino).unwrap().size, 20);
    fs.fallocate(a.ino, fh, 0, 40, true).unwrap();
    assert_eq!(fs.getattr(a.ino).unwrap().size, 20);
    fs.release(a.ino, fh).unwrap();
    let app = OpenFlags {
        write: true,
        append: true,
        truncate: false,
    };
    let fh = fs.open_file(a.ino, app).unwrap();
    fs.write(a.ino, fh, 0, b"tail").unwrap();
    fs.release(a.ino, fh).unwrap();
    assert_eq!(&read_all(&fs, a.ino)[20..], b"tail");
    let fh = fs
        .open_file(
            a.ino,
            OpenFlags {
                write: true,
                truncate: true,
                append: false,
            },
        )
        .unwrap();
    assert_eq!(fs.getattr(a.ino).unwrap().size, 0);
    fs.release(a.ino, fh).unwrap();
    assert!(matches!(
        fs.read(a.ino, 999, 0, 1),
        Err(FsError::BadHandle(999))
    ));
    let st = fs.statfs().unwrap();
    assert!(st.blocks > 0 && st.bsize > 0 && st.namelen == 255);
}
