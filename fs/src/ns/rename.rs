//! `rename` in its three modes.
use super::dir::{add_links, check_name, touch_dir, unlink_inode};
use crate::FsError;
use crate::attr::{FileKind, Ino, ROOT_INO, RenameMode};
use crate::core::Core;
use crate::format::Dirent;
use crate::meta::Tag;
use crate::write::State;
use std::time::SystemTime;

/// One side of a rename: directory, tag of the name there, and the entry if present.
struct Side {
    dir: Ino,
    tag: Tag,
    name: Vec<u8>,
    ent: Option<Dirent>,
}

/// Whether `dir` is `anc` or lies below it.
fn inside(st: &mut State, mut dir: Ino, anc: Ino) -> Result<bool, FsError> {
    loop {
        if dir == anc {
            return Ok(true);
        }
        if dir == ROOT_INO {
            return Ok(false);
        }
        dir = st.inode(dir)?.parent;
    }
}

impl Core {
    fn side(&self, st: &mut State, dir: Ino, name: &[u8]) -> Result<Side, FsError> {
        if name == b"." || name == b".." {
            return Err(FsError::Invalid("rename of . or .."));
        }
        check_name(name)?;
        let (tag, ent) = self.entry(st, dir, name)?;
        Ok(Side {
            dir,
            tag,
            name: name.to_vec(),
            ent,
        })
    }

    /// `rename`: moves, replaces or exchanges entries (see [`RenameMode`]).
    pub(crate) fn rename(
        &self,
        (parent, name): (Ino, &[u8]),
        (new_parent, new_name): (Ino, &[u8]),
        mode: RenameMode,
    ) -> Result<(), FsError> {
        let mut st = self.st.lock();
        let src = self.side(&mut st, parent, name)?;
        let dst = self.side(&mut st, new_parent, new_name)?;
        let s = src.ent.clone().ok_or(FsError::NotFound)?;
        if s.kind == FileKind::Dir && inside(&mut st, dst.dir, s.ino)? {
            return Err(FsError::Invalid("directory into its own subtree"));
        }
        let now = SystemTime::now();
        match (mode, dst.ent.clone()) {
            (RenameMode::Exchange, None) => Err(FsError::NotFound),
            (RenameMode::NoReplace, Some(_)) => Err(FsError::Exists),
            (_, Some(d)) if d.ino == s.ino => Ok(()),
            (RenameMode::Exchange, Some(d)) => {
                if d.kind == FileKind::Dir && inside(&mut st, src.dir, d.ino)? {
                    return Err(FsError::Invalid("directory into its own subtree"));
                }
                exchange(&mut st, &src, &dst, (&s, &d), now)
            }
            (_, Some(d)) => {
                replace_check(&mut st, &s, &d)?;
                st.set_dent(dst.dir, dst.tag, None);
                unlink_inode(&mut st, dst.dir, d.ino, now)?;
                move_entry(&mut st, &src, &dst, &s, now)
            }
            (_, None) => move_entry(&mut st, &src, &dst, &s, now),
        }
    }
}

/// Checks that `s` may replace `d`.
fn replace_check(st: &mut State, s: &Dirent, d: &Dirent) -> Result<(), FsError> {
    match (s.kind == FileKind::Dir, d.kind == FileKind::Dir) {
        (true, false) => Err(FsError::NotDir),
        (false, true) => Err(FsError::IsDir),
        (true, true) if !st.dir(d.ino)?.is_empty() => Err(FsError::NotEmpty),
        _ => Ok(()),
    }
}

/// Re-parents `ino` (if a directory) from `from` to `to`, fixing `..` and link counts.
fn reparent(st: &mut State, ino: Ino, kind: FileKind, from: Ino, to: Ino) -> Result<(), FsError> {
    if kind != FileKind::Dir || from == to {
        return Ok(());
    }
    st.inode_mut(ino)?.parent = to;
    add_links(st, from, -1)?;
    add_links(st, to, 1)
}

fn move_entry(
    st: &mut State,
    src: &Side,
    dst: &Side,
    s: &Dirent,
    now: SystemTime,
) -> Result<(), FsError> {
    st.set_dent(src.dir, src.tag, None);
    let moved = Dirent {
        name: dst.name.clone(),
        ..s.clone()
    };
    st.set_dent(dst.dir, dst.tag, Some(moved));
    reparent(st, s.ino, s.kind, src.dir, dst.dir)?;
    st.inode_mut(s.ino)?.ctime = now;
    touch_dir(st, src.dir, now)?;
    touch_dir(st, dst.dir, now)
}

fn exchange(
    st: &mut State,
    src: &Side,
    dst: &Side,
    (s, d): (&Dirent, &Dirent),
    now: SystemTime,
) -> Result<(), FsError> {
    st.set_dent(
        src.dir,
        src.tag,
        Some(Dirent {
            name: src.name.clone(),
            ..d.clone()
        }),
    );
    st.set_dent(
        dst.dir,
        dst.tag,
        Some(Dirent {
            name: dst.name.clone(),
            ..s.clone()
        }),
    );
    reparent(st, s.ino, s.kind, src.dir, dst.dir)?;
    reparent(st, d.ino, d.kind, dst.dir, src.dir)?;
    st.inode_mut(s.ino)?.ctime = now;
    st.inode_mut(d.ino)?.ctime = now;
    touch_dir(st, src.dir, now)?;
    touch_dir(st, dst.dir, now)
}
