//! Per-directory redundancy levels (DESIGN invariant 7): the `user.fossa.redundancy` xattr on a
//! directory sets how many distinct nodes must hold every block below it; a deeper setting
//! overrides a shallower one; the default is [`DEFAULT_LEVEL`]. The xattr is an ordinary
//! `user.*` xattr, so it syncs with its directory like any other (docs/redundancy.md).
use crate::FsError;
use crate::attr::{FileKind, Ino, ROOT_INO};
use crate::core::Core;
use crate::write::State;
use blockstore::BlockId;
use std::collections::HashMap;

/// The xattr that holds a directory's level.
pub const REDUNDANCY_XATTR: &[u8] = b"user.fossa.redundancy";
/// The level of everything no directory above sets.
pub const DEFAULT_LEVEL: u8 = 1;
/// The highest level accepted.
pub const MAX_LEVEL: u8 = 16;

/// The level a directory's xattr value sets: ASCII decimal 1..=[`MAX_LEVEL`].
pub fn parse_level(value: &[u8]) -> Result<u8, FsError> {
    let bad = || FsError::Invalid("redundancy level must be a number from 1 to 16");
    let s = std::str::from_utf8(value).map_err(|_| bad())?;
    match s.trim().parse::<u8>() {
        Ok(n) if (1..=MAX_LEVEL).contains(&n) => Ok(n),
        _ => Err(bad()),
    }
}

/// A directory whose own xattr sets a level, and the blocks that setting governs (those of the
/// files below it not under a deeper setting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelDir {
    /// Path relative to the volume root (`""` for the root).
    pub path: Vec<u8>,
    /// The level set there.
    pub level: u8,
    /// The locally known blocks it governs.
    pub blocks: Vec<BlockId>,
}

/// The redundancy of one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redundancy {
    /// The level that applies (inherited or set here).
    pub level: u8,
    /// The level set on this very directory, if any.
    pub set_here: Option<u8>,
}

impl Core {
    /// The level `ino`'s own xattr sets (directories only; a malformed value counts as unset).
    fn own_level(&self, st: &mut State, ino: Ino) -> Result<Option<u8>, FsError> {
        let tag = self.keys.name_tag(ino, REDUNDANCY_XATTR);
        Ok(st
            .xattrs(ino)?
            .get(&tag)
            .and_then(|x| parse_level(&x.value).ok()))
    }

    /// Walks `path` from the root, carrying the inherited level.
    pub(crate) fn redundancy_at(&self, path: &[u8]) -> Result<Redundancy, FsError> {
        let mut st = self.st.lock();
        let mut ino = ROOT_INO;
        let mut level = self.own_level(&mut st, ROOT_INO)?.unwrap_or(DEFAULT_LEVEL);
        let mut set_here = self.own_level(&mut st, ROOT_INO)?;
        for c in path.split(|b| *b == b'/').filter(|c| !c.is_empty()) {
            let d = self.entry(&mut st, ino, c)?.1.ok_or(FsError::NotFound)?;
            ino = d.ino;
            set_here = match d.kind {
                FileKind::Dir => self.own_level(&mut st, ino)?,
                _ => None,
            };
            level = set_here.unwrap_or(level);
        }
        Ok(Redundancy { level, set_here })
    }

    /// Every block of every live file with the level it needs (the highest among the files
    /// that share it). Pointer blocks not held locally are skipped with their subtrees.
    pub(crate) fn block_levels(&self) -> Result<HashMap<BlockId, u8>, FsError> {
        let files = {
            let mut st = self.st.lock();
            let top = self.own_level(&mut st, ROOT_INO)?.unwrap_or(DEFAULT_LEVEL);
            self.files_with_levels(&mut st, top)?
        };
        let mut out: HashMap<BlockId, u8> = HashMap::new();
        for (content, level) in files {
            let mut add = |id| {
                let l = out.entry(id).or_insert(level);
                *l = (*l).max(level);
            };
            let has = |id: &BlockId| self.store.has(id).unwrap_or(false);
            self.engine.visit_local_blocks(&content, &has, &mut add)?;
        }
        Ok(out)
    }

    /// Directories with a level set, each with the blocks it governs (`fossa status`).
    pub(crate) fn level_dirs(&self) -> Result<Vec<LevelDir>, FsError> {
        let files = {
            let mut st = self.st.lock();
            self.files_by_setting(&mut st)?
        };
        let (mut dirs, files) = files;
        let has = |id: &BlockId| self.store.has(id).unwrap_or(false);
        for (content, owner) in files {
            let out = &mut dirs[owner].blocks;
            self.engine
                .visit_local_blocks(&content, &has, &mut |id| out.push(id))?;
        }
        for d in &mut dirs {
            d.blocks.sort_unstable();
            d.blocks.dedup();
        }
        dirs.retain(|d| d.level != 0);
        Ok(dirs)
    }

    /// The setting directories (index 0 is the root, level 0 when unset) and every regular
    /// file's content with the index of the setting that governs it.
    #[expect(clippy::type_complexity, reason = "private helper of level_dirs")]
    fn files_by_setting(
        &self,
        st: &mut State,
    ) -> Result<(Vec<LevelDir>, Vec<(crate::file::FileContent, usize)>), FsError> {
        let root = LevelDir {
            path: Vec::new(),
            level: self.own_level(st, ROOT_INO)?.unwrap_or(0),
            blocks: Vec::new(),
        };
        let mut dirs = vec![root];
        let mut files = Vec::new();
        let mut stack = vec![(ROOT_INO, Vec::new(), 0usize)];
        while let Some((dir, path, owner)) = stack.pop() {
            let ents: Vec<_> = st.dir(dir)?.values().cloned().collect();
            for d in ents {
                match d.kind {
                    FileKind::Dir => {
                        let mut p = path.clone();
                        if !p.is_empty() {
                            p.push(b'/');
                        }
                        p.extend_from_slice(&d.name);
                        let owner = match self.own_level(st, d.ino)? {
                            Some(level) => {
                                dirs.push(LevelDir {
                                    path: p.clone(),
                                    level,
                                    blocks: Vec::new(),
                                });
                                dirs.len() - 1
                            }
                            None => owner,
                        };
                        stack.push((d.ino, p, owner));
                    }
                    FileKind::File => files.push((st.inode(d.ino)?.content, owner)),
                    _ => {}
                }
            }
        }
        Ok((dirs, files))
    }

    /// The blocks of the file at `path` reachable through local pointer blocks.
    pub(crate) fn blocks_at(&self, path: &[u8]) -> Result<Vec<BlockId>, FsError> {
        let content = {
            let mut st = self.st.lock();
            let mut ino = ROOT_INO;
            for c in path.split(|b| *b == b'/').filter(|c| !c.is_empty()) {
                ino = self.entry(&mut st, ino, c)?.1.ok_or(FsError::NotFound)?.ino;
            }
            let i = st.inode(ino)?;
            if i.kind != FileKind::File {
                return Ok(Vec::new());
            }
            i.content
        };
        let mut out = Vec::new();
        let has = |id: &BlockId| self.store.has(id).unwrap_or(false);
        self.engine
            .visit_local_blocks(&content, &has, &mut |id| out.push(id))?;
        Ok(out)
    }

    /// (content, level) of every regular file, walking directories with their levels.
    fn files_with_levels(
        &self,
        st: &mut State,
        top: u8,
    ) -> Result<Vec<(crate::file::FileContent, u8)>, FsError> {
        let mut out = Vec::new();
        let mut stack = vec![(ROOT_INO, top)];
        while let Some((dir, level)) = stack.pop() {
            let ents: Vec<_> = st.dir(dir)?.values().cloned().collect();
            for d in ents {
                match d.kind {
                    FileKind::Dir => {
                        let l = self.own_level(st, d.ino)?.unwrap_or(level);
                        stack.push((d.ino, l));
                    }
                    FileKind::File => out.push((st.inode(d.ino)?.content, level)),
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_strictly() {
        assert_eq!(parse_level(b"3").unwrap(), 3);
        assert_eq!(parse_level(b" 16\n").unwrap(), 16);
        for bad in [&b"0"[..], b"17", b"-1", b"three", b"", b"\xff"] {
            assert!(parse_level(bad).is_err(), "{bad:?}");
        }
    }
}
