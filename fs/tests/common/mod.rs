//! Shared fixture: a volume in a temp dir that can be dropped and reopened.
#![allow(dead_code, missing_docs, unreachable_pub)]
use blockstore::{BlockStore, StoreOptions};
use fossa_fs::crypto::VolumeSecret;
use fossa_fs::{Attr, Caller, Fs, FsOptions, Ino, OpenFlags, ROOT_INO};
use std::path::PathBuf;
use std::sync::Arc;

pub const WHO: Caller = Caller {
    uid: 1000,
    gid: 1000,
    umask: 0o022,
};
pub const RW: OpenFlags = OpenFlags {
    write: true,
    truncate: false,
    append: false,
};

pub struct Vol {
    pub dir: tempfile::TempDir,
    pub vs: VolumeSecret,
    pub opts: FsOptions,
    // The placeholder store is in memory: reopening keeps the same store object.
    pub store: Arc<BlockStore>,
}

impl Vol {
    pub fn new() -> Self {
        Self::with_opts(FsOptions::default())
    }

    pub fn with_opts(opts: FsOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            BlockStore::open(&dir.path().join("blocks"), StoreOptions::default()).unwrap(),
        );
        Vol {
            dir,
            vs: VolumeSecret::generate().unwrap(),
            opts,
            store,
        }
    }

    pub fn meta(&self) -> PathBuf {
        self.dir.path().join("meta.redb")
    }

    pub fn open(&self) -> Fs {
        Fs::open(
            self.store.clone(),
            self.store.clone(),
            &self.meta(),
            &self.vs,
            WHO,
            self.opts.clone(),
        )
        .unwrap()
    }
}

/// Resolves a slash-separated path from the root.
pub fn resolve(fs: &Fs, path: &str) -> Result<Attr, fossa_fs::FsError> {
    let mut a = fs.getattr(ROOT_INO)?;
    for c in path.split('/').filter(|c| !c.is_empty()) {
        a = fs.lookup(a.ino, c.as_bytes())?;
    }
    Ok(a)
}

pub fn write_file(fs: &Fs, parent: Ino, name: &str, data: &[u8]) -> Attr {
    let (a, fh) = fs.create(WHO, parent, name.as_bytes(), 0o644, RW).unwrap();
    fs.write(a.ino, fh, 0, data).unwrap();
    fs.flush(a.ino, fh).unwrap();
    fs.release(a.ino, fh).unwrap();
    fs.getattr(a.ino).unwrap()
}

pub fn read_all(fs: &Fs, ino: Ino) -> Vec<u8> {
    let fh = fs.open_file(ino, OpenFlags::default()).unwrap();
    let size = fs.getattr(ino).unwrap().size;
    let d = fs.read(ino, fh, 0, size as u32 + 10).unwrap();
    fs.release(ino, fh).unwrap();
    d
}

pub fn names(fs: &Fs, dir: Ino) -> Vec<String> {
    let mut v: Vec<String> = fs
        .readdir(dir, 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8(e.name).unwrap())
        .filter(|n| n != "." && n != "..")
        .collect();
    v.sort();
    v
}

/// Deterministic pseudo-random bytes (xorshift), `n` of them from `seed`.
pub fn pattern(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
