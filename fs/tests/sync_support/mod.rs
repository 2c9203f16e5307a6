//! Sync test fixture: N devices of one volume, Ed25519 signers, a pump between two devices.
#![allow(dead_code, missing_docs, unreachable_pub)]
use crate::common::{RW, Vol, WHO};
use fossa_fs::crypto::VolumeSecret;
use fossa_fs::sync::{ApplyReport, SyncConfig, UpdateSigner, UpdateVerifier};
use fossa_fs::{FileKind, Fs, Ino, OpenFlags, ROOT_INO};
use parking_lot::Mutex;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Signer {
    key: Ed25519KeyPair,
    id: [u8; 32],
}

impl UpdateSigner for Signer {
    fn device(&self) -> [u8; 32] {
        self.id
    }
    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).as_ref().try_into().unwrap()
    }
}

/// DeviceId → public key of the members.
#[derive(Default)]
pub struct Members(Mutex<HashMap<[u8; 32], Vec<u8>>>);

impl UpdateVerifier for Members {
    fn verify(&self, author: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
        let m = self.0.lock();
        let Some(pk) = m.get(author) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, pk)
            .verify(msg, sig)
            .is_ok()
    }
}

pub fn signer(seed: u8) -> Signer {
    let key = Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
    let id = *blake3::hash(key.public_key().as_ref()).as_bytes();
    Signer { key, id }
}

pub struct Dev {
    pub vol: Vol,
    pub fs: Option<Fs>,
    pub id: [u8; 32],
    pub changes: Arc<AtomicUsize>,
    signer: Arc<Signer>,
    members: Arc<Members>,
}

pub const VOLUME: [u8; 16] = [7; 16];

impl Dev {
    pub fn fs(&self) -> &Fs {
        self.fs.as_ref().unwrap()
    }

    pub fn config(&self) -> SyncConfig {
        let c = self.changes.clone();
        SyncConfig {
            volume: VOLUME,
            signer: self.signer.clone(),
            verifier: self.members.clone(),
            on_change: Arc::new(move || {
                c.fetch_add(1, Ordering::Relaxed);
            }),
        }
    }

    /// Closes and reopens the volume (sync enabled again).
    pub fn reopen(&mut self) {
        drop(self.fs.take());
        let fs = self.vol.open();
        fs.sync_handle().enable(self.config()).unwrap();
        self.fs = Some(fs);
    }
}

/// `n` devices of one volume, all members.
pub fn devices(n: u8) -> Vec<Dev> {
    let vs = VolumeSecret::generate().unwrap();
    let members = Arc::new(Members::default());
    (0..n)
        .map(|k| {
            let mut vol = Vol::new();
            vol.vs = vs.clone();
            let s = Arc::new(signer(k + 1));
            members
                .0
                .lock()
                .insert(s.id, s.key.public_key().as_ref().to_vec());
            let fs = vol.open();
            let d = Dev {
                vol,
                fs: Some(fs),
                id: s.id,
                changes: Arc::default(),
                signer: s,
                members: members.clone(),
            };
            d.fs().sync_handle().enable(d.config()).unwrap();
            d
        })
        .collect()
}

/// What one pump moved.
#[derive(Debug, Default)]
pub struct Pumped {
    pub report: ApplyReport,
    pub update_bytes: usize,
    pub blocks: usize,
    pub missing_before_copy: usize,
}

/// Scans `a`, applies its updates after `b`'s saved position on `b`, then copies the blocks
/// `b` is missing from `a`'s store.
pub fn pump(a: &Dev, b: &Dev) -> Pumped {
    let mut p = pump_updates(a, b);
    p.missing_before_copy = b.fs().sync_handle().missing(usize::MAX).unwrap().len();
    p.blocks = copy_blocks(a, b);
    p
}

/// Moves updates only (no blocks).
pub fn pump_updates(a: &Dev, b: &Dev) -> Pumped {
    let (fa, fb) = (a.fs(), b.fs());
    fa.sync_handle().scan().unwrap();
    // The incremental scan saw every change, and merges left tree and index in step.
    assert_eq!(fa.sync_handle().check().unwrap(), Vec::<Vec<u8>>::new());
    fb.sync_handle().scan().unwrap();
    assert_eq!(fb.sync_handle().check().unwrap(), Vec::<Vec<u8>>::new());
    let (iid, mut after) = fb.sync_handle().progress(&a.id);
    if iid != fa.sync_handle().index_id() {
        after = 0;
    }
    let mut p = Pumped::default();
    loop {
        let ups = fa.sync_handle().updates(after, 100).unwrap();
        let upto = ups.last().map_or(fa.sync_handle().seq(), |u| u.0);
        let blobs: Vec<Vec<u8>> = ups.into_iter().map(|u| u.1).collect();
        p.update_bytes += blobs.iter().map(Vec::len).sum::<usize>();
        let r = fb
            .sync_handle()
            .apply(&a.id, fa.sync_handle().index_id(), upto, &blobs)
            .unwrap();
        assert_eq!(fb.sync_handle().check().unwrap(), Vec::<Vec<u8>>::new());
        add(&mut p.report, r);
        if blobs.is_empty() || upto >= fa.sync_handle().seq() {
            break;
        }
        after = upto;
    }
    p
}

fn add(t: &mut ApplyReport, r: ApplyReport) {
    t.applied += r.applied;
    t.ignored += r.ignored;
    t.conflicts += r.conflicts;
    t.rejected += r.rejected;
    t.changed_inodes.extend(r.changed_inodes);
    t.changed_entries.extend(r.changed_entries);
}

/// Copies what `b` misses from `a`'s store; returns the number of blocks.
pub fn copy_blocks(a: &Dev, b: &Dev) -> usize {
    let mut n = 0;
    loop {
        let ids = b.fs().sync_handle().missing(64).unwrap();
        if ids.is_empty() {
            return n;
        }
        for id in ids {
            let data = a.vol.store.get(&id).unwrap();
            b.vol.store.put(&data, blockstore::Class::Own).unwrap();
            n += 1;
        }
        b.vol.store.commit().unwrap();
    }
}

/// One node of a listing: kind, and file bytes or symlink target.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Node {
    Dir(u16),
    File(u16, Vec<u8>),
    Link(Vec<u8>),
}

/// Recursive listing of the live tree.
pub fn listing(fs: &Fs) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    list_into(fs, ROOT_INO, "", &mut out);
    out
}

fn list_into(fs: &Fs, dir: Ino, prefix: &str, out: &mut BTreeMap<String, Node>) {
    for e in fs.readdir(dir, 0, usize::MAX).unwrap() {
        let name = String::from_utf8(e.name).unwrap();
        if name == "." || name == ".." {
            continue;
        }
        let path = format!("{prefix}{name}");
        let a = fs.getattr(e.ino).unwrap();
        let node = match a.kind {
            FileKind::Dir => {
                list_into(fs, e.ino, &format!("{path}/"), out);
                Node::Dir(a.perm)
            }
            FileKind::File => Node::File(a.perm, crate::common::read_all(fs, e.ino)),
            FileKind::Symlink => Node::Link(fs.readlink(e.ino).unwrap()),
            _ => continue,
        };
        out.insert(path, node);
    }
}

/// Creates or overwrites `path` (parent must exist) with `data`, closing it.
pub fn put(fs: &Fs, path: &str, data: &[u8]) -> Ino {
    let (dir, name) = parent_of(fs, path);
    match fs.lookup(dir, name.as_bytes()) {
        Ok(a) => {
            let fh = fs
                .open_file(
                    a.ino,
                    OpenFlags {
                        truncate: true,
                        ..RW
                    },
                )
                .unwrap();
            fs.write(a.ino, fh, 0, data).unwrap();
            fs.release(a.ino, fh).unwrap();
            a.ino
        }
        Err(_) => {
            let (a, fh) = fs.create(WHO, dir, name.as_bytes(), 0o644, RW).unwrap();
            fs.write(a.ino, fh, 0, data).unwrap();
            fs.release(a.ino, fh).unwrap();
            a.ino
        }
    }
}

/// (parent inode, last name) of `path`.
pub fn parent_of<'a>(fs: &Fs, path: &'a str) -> (Ino, &'a str) {
    match path.rsplit_once('/') {
        Some((p, n)) => (crate::common::resolve(fs, p).unwrap().ino, n),
        None => (ROOT_INO, path),
    }
}

/// Bytes of the file at `path`.
pub fn get(fs: &Fs, path: &str) -> Vec<u8> {
    crate::common::read_all(fs, crate::common::resolve(fs, path).unwrap().ino)
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    crate::common::pattern(seed, n)
}

pub fn converged(devs: &[&Dev]) {
    let first = summary(devs[0].fs());
    for d in &devs[1..] {
        let other = summary(d.fs());
        let diff: Vec<_> = first
            .iter()
            .filter(|(k, v)| other.get(*k) != Some(v))
            .chain(other.iter().filter(|(k, v)| first.get(*k) != Some(v)))
            .collect();
        if !diff.is_empty() {
            for (k, _) in &diff {
                for x in devs {
                    let st = x.fs().sync_handle().status(k.as_bytes());
                    eprintln!(
                        "{k}: live {:?} status {st:?}",
                        crate::common::resolve(x.fs(), k).map(|a| a.ino)
                    );
                }
            }
        }
        assert!(diff.is_empty(), "differences: {diff:?}");
    }
}

/// The listing with file bytes replaced by (length, hash prefix).
pub fn summary(fs: &Fs) -> BTreeMap<String, String> {
    let short = |b: &[u8]| format!("{}:{}", b.len(), &blake3::hash(b).to_hex()[..8]);
    listing(fs)
        .into_iter()
        .map(|(k, v)| {
            let s = match v {
                Node::Dir(p) => format!("dir {p:o}"),
                Node::File(p, b) => format!("file {p:o} {}", short(&b)),
                Node::Link(t) => format!("link {}", String::from_utf8_lossy(&t)),
            };
            (k, s)
        })
        .collect()
}

pub fn conflict_copies(d: &Dev) -> Vec<String> {
    listing(d.fs())
        .into_keys()
        .filter(|p| p.contains(".sync-conflict-"))
        .collect()
}
