//! Model-based test: random namespace and file operations against an in-memory model,
#![allow(clippy::unwrap_used)]
//! compared after every step and across reopening the volume.
mod common;
use common::*;
use fossa_fs::*;
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Node {
    Dir,
    File(usize),
}

#[derive(Default)]
struct Model {
    entries: BTreeMap<String, Node>,
    data: Vec<Vec<u8>>,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<T: Clone>(&mut self, v: &[T]) -> Option<T> {
        if v.is_empty() {
            None
        } else {
            Some(v[self.below(v.len())].clone())
        }
    }
}

fn parent_of(p: &str) -> &str {
    p.rfind('/').map_or("", |i| &p[..i])
}
fn base(p: &str) -> &str {
    p.rfind('/').map_or(p, |i| &p[i + 1..])
}
fn join(d: &str, n: &str) -> String {
    if d.is_empty() {
        n.to_string()
    } else {
        format!("{d}/{n}")
    }
}

impl Model {
    fn dirs(&self) -> Vec<String> {
        let mut v = vec![String::new()];
        v.extend(
            self.entries
                .iter()
                .filter(|(_, n)| **n == Node::Dir)
                .map(|(p, _)| p.clone()),
        );
        v
    }
    fn files(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(_, n)| **n != Node::Dir)
            .map(|(p, _)| p.clone())
            .collect()
    }
    fn has_children(&self, d: &str) -> bool {
        self.entries
            .keys()
            .any(|p| parent_of(p) == d && !p.is_empty())
    }
    /// Applies a rename with POSIX replace semantics; returns whether it should succeed.
    fn rename(&mut self, src: &str, dst: &str) -> bool {
        let s = self.entries[src];
        if src == dst {
            return true;
        }
        if s == Node::Dir && (parent_of(dst) == src || dst.starts_with(&format!("{src}/"))) {
            return false;
        }
        if let Some(d) = self.entries.get(dst).copied() {
            match (s, d) {
                (a, b) if a == b && a != Node::Dir => return true,
                (Node::Dir, Node::File(_)) | (Node::File(_), Node::Dir) => return false,
                (Node::Dir, Node::Dir) if self.has_children(dst) => return false,
                _ => {}
            }
            self.entries.remove(dst);
        }
        let moved: Vec<String> = self
            .entries
            .keys()
            .filter(|p| *p == src || p.starts_with(&format!("{src}/")))
            .cloned()
            .collect();
        for p in moved {
            let n = self.entries.remove(&p).unwrap();
            self.entries.insert(format!("{dst}{}", &p[src.len()..]), n);
        }
        true
    }
}

fn step(fs: &Fs, m: &mut Model, r: &mut Rng) {
    const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];
    let dir = r.pick(&m.dirs()).unwrap();
    let name = NAMES[r.below(NAMES.len())];
    let target = join(&dir, name);
    let dino = resolve(fs, &dir).unwrap().ino;
    let exists = m.entries.contains_key(&target);
    match r.below(10) {
        0 => {
            let ok = fs
                .mknod(WHO, dino, name.as_bytes(), FileKind::File, 0o644, 0)
                .is_ok();
            assert_eq!(ok, !exists, "create {target}");
            if ok {
                m.data.push(Vec::new());
                m.entries.insert(target, Node::File(m.data.len() - 1));
            }
        }
        1 => {
            let ok = fs.mkdir(WHO, dino, name.as_bytes(), 0o755).is_ok();
            assert_eq!(ok, !exists, "mkdir {target}");
            if ok {
                m.entries.insert(target, Node::Dir);
            }
        }
        2 | 3 => {
            let Some(f) = r.pick(&m.files()) else { return };
            let Node::File(id) = m.entries[&f] else {
                unreachable!()
            };
            let ino = resolve(fs, &f).unwrap().ino;
            let off = r.below(m.data[id].len() + 50);
            let len = r.below(300);
            let byte = r.next() as u8;
            let fh = fs.open_file(ino, RW).unwrap();
            fs.write(ino, fh, off as u64, &vec![byte; len]).unwrap();
            fs.release(ino, fh).unwrap();
            let d = &mut m.data[id];
            if len > 0 {
                if d.len() < off + len {
                    d.resize(off + len, 0);
                }
                d[off..off + len].fill(byte);
            }
        }
        4 => {
            let Some(f) = r.pick(&m.files()) else { return };
            let Node::File(id) = m.entries[&f] else {
                unreachable!()
            };
            let size = r.below(m.data[id].len() + 20);
            let ino = resolve(fs, &f).unwrap().ino;
            fs.setattr(
                ino,
                &SetAttr {
                    size: Some(size as u64),
                    ..SetAttr::default()
                },
                None,
            )
            .unwrap();
            m.data[id].resize(size, 0);
        }
        5 => {
            let Some(src) = r.pick(&m.entries.keys().cloned().collect::<Vec<_>>()) else {
                return;
            };
            let sp = resolve(fs, parent_of(&src)).unwrap().ino;
            let got = fs.rename(
                sp,
                base(&src).as_bytes(),
                dino,
                name.as_bytes(),
                RenameMode::Replace,
            );
            let want = m.rename(&src, &target);
            assert_eq!(got.is_ok(), want, "rename {src} -> {target}: {got:?}");
        }
        6 => {
            let Some(f) = r.pick(&m.files()) else { return };
            let p = resolve(fs, parent_of(&f)).unwrap().ino;
            fs.unlink(p, base(&f).as_bytes()).unwrap();
            m.entries.remove(&f);
        }
        7 => {
            let Some(d) = r.pick(&m.dirs()[1..]) else {
                return;
            };
            let p = resolve(fs, parent_of(&d)).unwrap().ino;
            let ok = fs.rmdir(p, base(&d).as_bytes()).is_ok();
            assert_eq!(ok, !m.has_children(&d), "rmdir {d}");
            if ok {
                m.entries.remove(&d);
            }
        }
        8 => punch_step(fs, m, r),
        _ => {
            let Some(f) = r.pick(&m.files()) else { return };
            let ino = resolve(fs, &f).unwrap().ino;
            let ok = fs.link(ino, dino, name.as_bytes()).is_ok();
            assert_eq!(ok, !exists, "link {f} -> {target}");
            if ok {
                let n = m.entries[&f];
                m.entries.insert(target, n);
            }
        }
    }
}

/// A write still buffered in the handle, then a hole punched (PUNCH_HOLE | KEEP_SIZE) or a
/// range zeroed (ZERO_RANGE, which may grow the file) over random bytes of a file.
fn punch_step(fs: &Fs, m: &mut Model, r: &mut Rng) {
    let Some(f) = r.pick(&m.files()) else { return };
    let Node::File(id) = m.entries[&f] else {
        unreachable!()
    };
    let ino = resolve(fs, &f).unwrap().ino;
    let fh = fs.open_file(ino, RW).unwrap();
    let (woff, wlen, byte) = (r.below(m.data[id].len() + 50), r.below(300), r.next() as u8);
    fs.write(ino, fh, woff as u64, &vec![byte; wlen]).unwrap();
    let d = &mut m.data[id];
    if wlen > 0 {
        d.resize(d.len().max(woff + wlen), 0);
        d[woff..woff + wlen].fill(byte);
    }
    let (off, len) = (r.below(d.len() + 30), 1 + r.below(400));
    let zero = r.below(3) == 0;
    match zero {
        true => fs.zero_range(ino, fh, (off as u64, len as u64), false),
        false => fs.punch_hole(ino, fh, off as u64, len as u64),
    }
    .unwrap();
    fs.release(ino, fh).unwrap();
    let end = (off + len).min(d.len());
    if off < end {
        d[off..end].fill(0);
    }
    if zero && off + len > d.len() {
        d.resize(off + len, 0);
    }
}

fn walk(fs: &Fs, ino: Ino, path: &str, out: &mut BTreeMap<String, Attr>) {
    for e in fs.readdir(ino, 0, usize::MAX).unwrap() {
        if e.name == b"." || e.name == b".." {
            continue;
        }
        let p = join(path, std::str::from_utf8(&e.name).unwrap());
        let a = fs.lookup(ino, &e.name).unwrap();
        assert_eq!((a.ino, a.kind), (e.ino, e.kind));
        if a.kind == FileKind::Dir {
            walk(fs, a.ino, &p, out);
        }
        out.insert(p, a);
    }
}

fn check(fs: &Fs, m: &Model) {
    let mut got = BTreeMap::new();
    walk(fs, ROOT_INO, "", &mut got);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        m.entries.keys().collect::<Vec<_>>()
    );
    let mut ino_of: HashMap<usize, Ino> = HashMap::new();
    for (p, n) in &m.entries {
        let a = &got[p];
        match n {
            Node::Dir => {
                let subdirs = m
                    .entries
                    .iter()
                    .filter(|(q, k)| **k == Node::Dir && parent_of(q) == p)
                    .count();
                assert_eq!(a.nlink as usize, 2 + subdirs, "nlink of {p}");
            }
            Node::File(id) => {
                assert_eq!(*ino_of.entry(*id).or_insert(a.ino), a.ino, "hard link {p}");
                let links = m.entries.values().filter(|k| *k == n).count();
                assert_eq!(a.nlink as usize, links, "nlink of {p}");
                assert_eq!(a.size as usize, m.data[*id].len(), "size of {p}");
                assert_eq!(read_all(fs, a.ino), m.data[*id], "content of {p}");
            }
        }
    }
}

fn run(seed: u64, steps: usize) {
    let v = Vol::with_opts(FsOptions {
        file_dirty_limit: 256,
        ..FsOptions::default()
    });
    let mut fs = v.open();
    let mut m = Model::default();
    let mut r = Rng(seed);
    for i in 0..steps {
        step(&fs, &mut m, &mut r);
        check(&fs, &m);
        if i % 40 == 39 {
            drop(fs);
            fs = v.open();
            check(&fs, &m);
        }
    }
    assert!(fs.fsck(false).unwrap().problems.is_empty());
}

#[test]
fn model_seed_1() {
    run(0x9e37_79b9_7f4a_7c15, 400);
}

#[test]
fn model_seed_2() {
    run(0xdead_beef_cafe_f00d, 400);
}

#[test]
fn model_seed_3() {
    run(12345, 400);
}
