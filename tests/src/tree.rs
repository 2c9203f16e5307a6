//! Recording a directory tree (content, modes, owners, times, links, xattrs) and comparing two
//! recordings.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::data::{hash_hex, read};
use crate::process::run;

/// What kind of file an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Named pipe.
    Fifo,
    /// Anything else (device, socket).
    Other,
}

/// One recorded entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// File type.
    pub kind: Kind,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Link count.
    pub nlink: u64,
    /// Inode number (used only to find hard-link groups, never compared across trees).
    pub ino: u64,
    /// BLAKE3 of the content, for regular files.
    pub hash: Option<String>,
    /// Target, for symlinks.
    pub target: Option<PathBuf>,
    /// Extended attributes (name → hex value), when recorded.
    pub xattrs: BTreeMap<String, String>,
}

/// A recorded tree: path relative to the root (the root itself is `""`) → entry.
pub type Tree = BTreeMap<PathBuf, Entry>;

/// Which attributes [`diff`] compares (content, type and symlink targets always are).
#[derive(Debug, Clone, Copy)]
pub struct Compare {
    /// Permission bits.
    pub mode: bool,
    /// uid and gid.
    pub owner: bool,
    /// mtime of files, dirs and fifos, to the nanosecond (symlink times are not compared).
    pub mtime: bool,
    /// Link counts of non-directories and hard-link groups.
    pub links: bool,
    /// Extended attributes.
    pub xattrs: bool,
    /// Include the root directory's own attributes.
    pub root: bool,
}

impl Compare {
    /// Everything.
    pub const ALL: Self = Self {
        mode: true,
        owner: true,
        mtime: true,
        links: true,
        xattrs: true,
        root: true,
    };
}

/// Records the tree under `root` (not following symlinks); `xattrs` also records extended
/// attributes with `getfattr`.
pub fn scan(root: &Path, xattrs: bool) -> Result<Tree> {
    let mut tree = Tree::new();
    scan_into(root, Path::new(""), xattrs, &mut tree)?;
    Ok(tree)
}

fn scan_into(root: &Path, rel: &Path, xattrs: bool, tree: &mut Tree) -> Result<()> {
    let path = root.join(rel);
    let meta =
        std::fs::symlink_metadata(&path).with_context(|| format!("stat {}", path.display()))?;
    let ft = meta.file_type();
    let kind = if ft.is_file() {
        Kind::File
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        Kind::Symlink
    } else if ft.is_fifo() {
        Kind::Fifo
    } else {
        Kind::Other
    };
    let entry = Entry {
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: meta.size(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        nlink: meta.nlink(),
        ino: meta.ino(),
        hash: if kind == Kind::File {
            Some(hash_hex(&read(&path)?))
        } else {
            None
        },
        target: if kind == Kind::Symlink {
            Some(std::fs::read_link(&path)?)
        } else {
            None
        },
        xattrs: if xattrs {
            read_xattrs(&path)?
        } else {
            BTreeMap::new()
        },
    };
    tree.insert(rel.to_owned(), entry);
    if kind == Kind::Dir {
        let mut names = Vec::new();
        for dirent in
            std::fs::read_dir(&path).with_context(|| format!("readdir {}", path.display()))?
        {
            names.push(dirent?.file_name());
        }
        names.sort();
        for name in names {
            scan_into(root, &rel.join(name), xattrs, tree)?;
        }
    }
    Ok(())
}

/// All extended attributes of `path` (not following symlinks), name → hex value.
pub fn read_xattrs(path: &Path) -> Result<BTreeMap<String, String>> {
    let out = run(Command::new("getfattr")
        .args(["-h", "-d", "-m", "-", "-e", "hex", "--absolute-names"])
        .arg(path))?;
    if !out.success() {
        bail!(
            "getfattr failed (is package `attr` installed?): {}",
            out.describe()
        );
    }
    Ok(out
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_start_matches("0x").to_owned()))
        .collect())
}

/// Differences between `want` and `got`, one line each (empty when equal).
pub fn diff(want: &Tree, got: &Tree, cmp: Compare) -> Vec<String> {
    let mut out = Vec::new();
    for (path, w) in want {
        let Some(g) = got.get(path) else {
            out.push(format!("{}: missing", path.display()));
            continue;
        };
        if path.as_os_str().is_empty() && !cmp.root {
            continue;
        }
        diff_entry(path, w, g, cmp, &mut out);
    }
    for path in got.keys().filter(|p| !want.contains_key(*p)) {
        out.push(format!("{}: unexpected entry", path.display()));
    }
    if cmp.links && link_groups(want) != link_groups(got) {
        out.push(format!(
            "hard-link groups differ: want {:?}, got {:?}",
            link_groups(want),
            link_groups(got)
        ));
    }
    out
}

fn diff_entry(path: &Path, w: &Entry, g: &Entry, cmp: Compare, out: &mut Vec<String>) {
    let mut check = |what: &str, differs: bool, wv: String, gv: String| {
        if differs {
            out.push(format!("{}: {what} want {wv}, got {gv}", path.display()));
        }
    };
    check(
        "type",
        w.kind != g.kind,
        format!("{:?}", w.kind),
        format!("{:?}", g.kind),
    );
    check(
        "content",
        w.hash != g.hash,
        format!("{:?}/{}B", w.hash, w.size),
        format!("{:?}/{}B", g.hash, g.size),
    );
    check(
        "target",
        w.target != g.target,
        format!("{:?}", w.target),
        format!("{:?}", g.target),
    );
    let not_link = w.kind != Kind::Symlink;
    check(
        "mode",
        cmp.mode && not_link && w.mode != g.mode,
        format!("{:o}", w.mode),
        format!("{:o}", g.mode),
    );
    check(
        "owner",
        cmp.owner && (w.uid, w.gid) != (g.uid, g.gid),
        format!("{}:{}", w.uid, w.gid),
        format!("{}:{}", g.uid, g.gid),
    );
    check(
        "mtime_ns",
        cmp.mtime && not_link && w.mtime_ns != g.mtime_ns,
        w.mtime_ns.to_string(),
        g.mtime_ns.to_string(),
    );
    let links = cmp.links && w.kind != Kind::Dir;
    check(
        "nlink",
        links && w.nlink != g.nlink,
        w.nlink.to_string(),
        g.nlink.to_string(),
    );
    check(
        "xattrs",
        cmp.xattrs && w.xattrs != g.xattrs,
        format!("{:?}", w.xattrs),
        format!("{:?}", g.xattrs),
    );
}

/// Sets of paths sharing an inode (hard links), for non-directories with nlink > 1.
fn link_groups(tree: &Tree) -> BTreeSet<BTreeSet<PathBuf>> {
    let mut by_ino: BTreeMap<u64, BTreeSet<PathBuf>> = BTreeMap::new();
    for (path, e) in tree
        .iter()
        .filter(|(_, e)| e.kind != Kind::Dir && e.nlink > 1)
    {
        by_ino.entry(e.ino).or_default().insert(path.clone());
    }
    by_ino.into_values().collect()
}

/// Fails listing the differences unless `got` matches `want` under `cmp`.
pub fn assert_same(want: &Tree, got: &Tree, cmp: Compare, what: &str) -> Result<()> {
    let d = diff(want, got, cmp);
    if !d.is_empty() {
        bail!("{what}: {} difference(s):\n  {}", d.len(), d.join("\n  "));
    }
    Ok(())
}
