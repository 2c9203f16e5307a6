//! Randomized convergence: three devices, random operations and pumps, then full pumps.
#![allow(clippy::unwrap_used)]
mod common;
mod sync_support;

use common::{WHO, resolve};
use fossa_fs::{ROOT_INO, RenameMode, SetAttr};
use sync_support::*;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, v: &'a [&'a str]) -> &'a str {
        v[self.below(v.len() as u64) as usize]
    }
}

/// A random directory path (kinds follow names: d* dirs, f* files, l* symlinks).
fn rand_dir(r: &mut Rng) -> String {
    match r.below(3) {
        0 => String::new(),
        1 => format!("{}/", r.pick(&["d0", "d1"])),
        _ => format!("{}/{}/", r.pick(&["d0", "d1"]), r.pick(&["d2", "d3"])),
    }
}

/// Removes `path` and everything below it.
fn remove_all(fs: &fossa_fs::Fs, path: &str) {
    let (dir, name) = parent_of(fs, path);
    let a = fs.lookup(dir, name.as_bytes()).unwrap();
    if a.kind == fossa_fs::FileKind::Dir {
        for e in fs.readdir(a.ino, 0, usize::MAX).unwrap() {
            let n = String::from_utf8(e.name).unwrap();
            if n != "." && n != ".." {
                remove_all(fs, &format!("{path}/{n}"));
            }
        }
        fs.rmdir(dir, name.as_bytes()).unwrap();
    } else {
        fs.unlink(dir, name.as_bytes()).unwrap();
    }
}

/// Creates the directories of `dir`; false if a file is in the way.
fn mkdirs(fs: &fossa_fs::Fs, dir: &str) -> bool {
    let mut at = String::new();
    for c in dir.split('/').filter(|c| !c.is_empty()) {
        let Ok(p) = resolve(fs, &at) else {
            return false;
        };
        let _ = fs.mkdir(WHO, p.ino, c.as_bytes(), 0o755);
        at = format!("{at}{c}/");
    }
    resolve(fs, dir).is_ok_and(|a| a.kind == fossa_fs::FileKind::Dir)
}

/// One random local operation on `fs`; failures of the operation itself (ENOENT…) are fine.
fn random_op(fs: &fossa_fs::Fs, r: &mut Rng, seed: u64) {
    let dir = rand_dir(r);
    if !mkdirs(fs, &dir) {
        return;
    }
    let f = format!("{dir}{}", r.pick(&["f0", "f1", "f2.txt"]));
    let exists = |p: &str| resolve(fs, p).is_ok();
    match r.below(10) {
        0..=3 => {
            let n = [0, 10, 5000, 200_000][r.below(4) as usize];
            put(fs, &f, &bytes(n, seed));
        }
        4 if exists(&f) => remove_all(fs, &f),
        5 if exists(&f) => {
            let to = format!("{}{}", rand_dir(r), r.pick(&["f0", "f1", "f2.txt"]));
            if !mkdirs(fs, to.rsplit_once('/').map_or("", |x| x.0)) {
                return;
            }
            let (ta, tb) = (parent_of(fs, &f), parent_of(fs, &to));
            let _ = fs.rename(
                ta.0,
                ta.1.as_bytes(),
                tb.0,
                tb.1.as_bytes(),
                RenameMode::Replace,
            );
        }
        6 if exists(&f) => {
            let set = SetAttr {
                perm: Some([0o600, 0o644, 0o755][r.below(3) as usize]),
                ..SetAttr::default()
            };
            fs.setattr(resolve(fs, &f).unwrap().ino, &set, None)
                .unwrap();
        }
        7 => {
            let d = r.pick(&["d0", "d1", "d0/d2", "d1/d3"]).to_string();
            if exists(&d) && r.below(2) == 0 {
                remove_all(fs, &d);
            }
        }
        8 => {
            let l = format!("{dir}l0");
            if !exists(&l) {
                let p = parent_of(fs, &l);
                fs.symlink(WHO, p.0, p.1.as_bytes(), format!("t{seed}").as_bytes())
                    .unwrap();
            }
        }
        9 if r.below(2) == 0 => {
            // Directory renames (moving whole subtrees), and hard links.
            let (from, to) =
                [("d0/d2", "d1/d3"), ("d1", "d0/d2"), ("d0", "d1")][r.below(3) as usize];
            if exists(from) && mkdirs(fs, to.rsplit_once('/').map_or("", |x| x.0)) {
                let (a, b) = (parent_of(fs, from), parent_of(fs, to));
                let _ = fs.rename(
                    a.0,
                    a.1.as_bytes(),
                    b.0,
                    b.1.as_bytes(),
                    RenameMode::Replace,
                );
            } else if exists(&f) {
                let l = parent_of(fs, &f);
                let ino = fs.lookup(l.0, l.1.as_bytes()).unwrap().ino;
                let _ = fs.link(ino, ROOT_INO, b"f1");
            }
        }
        9 if !exists("d1") && r.below(3) == 0 => {
            // A file where other devices may have a directory (kind conflicts).
            put(fs, "d1", b"a file named like a directory");
        }
        _ => {}
    }
}

fn full_pumps(devs: &[Dev]) {
    for _ in 0..6 {
        for i in 0..devs.len() {
            for j in 0..devs.len() {
                if i != j {
                    pump(&devs[i], &devs[j]);
                }
            }
        }
    }
}

#[test]
fn random_operations_converge() {
    for seed in seeds() {
        eprintln!("seed {seed}");
        let devs = devices(3);
        let mut r = Rng(seed * 0x9E37_79B9 + 7);
        for k in 0..200 {
            let d = r.below(3) as usize;
            random_op(devs[d].fs(), &mut r, seed * 1000 + k);
            if r.below(8) == 0 {
                let (x, y) = (r.below(3) as usize, r.below(3) as usize);
                if x != y {
                    pump(&devs[x], &devs[y]);
                }
            }
        }
        full_pumps(&devs);
        let refs: Vec<&Dev> = devs.iter().collect();
        converged(&refs);
        let l = listing(devs[0].fs());
        let copies = l.keys().filter(|p| p.contains(".sync-conflict-")).count();
        eprintln!("seed {seed}: {} paths, {copies} conflict copies", l.len());
        // Converged: another full round makes no new updates.
        let seqs: Vec<u64> = devs.iter().map(|d| d.fs().sync_handle().seq()).collect();
        full_pumps(&devs);
        let again: Vec<u64> = devs.iter().map(|d| d.fs().sync_handle().seq()).collect();
        assert_eq!(seqs, again, "seed {seed}");
        let before = summary(devs[0].fs());
        for d in &devs {
            assert!(d.fs().sync_handle().missing(10).unwrap().is_empty());
            assert!(d.fs().fsck(false).unwrap().problems.is_empty());
            d.fs().gc().unwrap();
        }
        // gc kept every block a live file needs.
        assert_eq!(summary(devs[0].fs()), before);
    }
}

/// Fixed seeds; `FOSSA_SYNC_SEEDS=n` runs seeds 1..=n instead.
fn seeds() -> Vec<u64> {
    let n = std::env::var("FOSSA_SYNC_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok());
    (1..=n.unwrap_or(3)).collect()
}
