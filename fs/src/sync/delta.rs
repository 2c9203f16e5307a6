//! The incremental scan: only directories whose entries changed and inodes whose state
//! changed since the last scan are compared with the index.
use super::EntryKind;
use super::index::SyncState;
use super::paths::below;
use super::scan::{Diff, join, live_state, walk_from};
use crate::FsError;
use crate::attr::{FileKind, Ino, ROOT_INO};
use crate::core::Core;
use crate::write::State;
use std::collections::HashSet;

/// The inode at `path` in the live tree now (`None` if the path does not resolve).
pub(crate) fn resolve(core: &Core, st: &mut State, path: &[u8]) -> Result<Option<Ino>, FsError> {
    let mut ino = ROOT_INO;
    for c in path.split(|b| *b == b'/').filter(|c| !c.is_empty()) {
        if st.inode(ino)?.kind != FileKind::Dir {
            return Ok(None);
        }
        match st.dir(ino)?.get(&core.keys.name_tag(ino, c)) {
            Some(d) => ino = d.ino,
            None => return Ok(None),
        }
    }
    Ok(Some(ino))
}

impl SyncState {
    /// Compares the children of each changed directory and the state of each changed inode
    /// (at the paths where it still is) with the index.
    pub(crate) fn delta(
        &mut self,
        core: &Core,
        st: &mut State,
        (dirs, inos): (HashSet<Ino>, HashSet<Ino>),
        d: &mut Diff,
    ) -> Result<(), FsError> {
        for dir in dirs {
            let paths = match dir {
                ROOT_INO => vec![Vec::new()],
                _ => self.paths.paths(dir),
            };
            for p in paths {
                if resolve(core, st, &p)? == Some(dir) {
                    self.diff_children(st, dir, &p, d)?;
                }
            }
        }
        for ino in inos {
            for p in self.paths.paths(ino) {
                if resolve(core, st, &p)? == Some(ino)
                    && let Some(l) = live_state(st, ino, p.clone())?
                {
                    d.changed.insert(p, l.state);
                }
            }
        }
        let changed = &d.changed;
        d.gone.retain(|p| !changed.contains_key(p));
        Ok(())
    }

    /// New, replaced and vanished entries of directory `dir` at path `p`.
    fn diff_children(
        &mut self,
        st: &mut State,
        dir: Ino,
        p: &[u8],
        d: &mut Diff,
    ) -> Result<(), FsError> {
        let kids: Vec<_> = st.dir(dir)?.values().cloned().collect();
        let mut seen = HashSet::new();
        for k in kids {
            let path = join(p, &k.name);
            let Some(l) = live_state(st, k.ino, path.clone())? else {
                continue;
            };
            seen.insert(path.clone());
            let live_entry = self.entries.get(&path).is_some_and(|r| !r.entry.deleted);
            if live_entry && self.paths.get(&path) == Some(k.ino) {
                continue;
            }
            self.paths.set(path.clone(), Some(k.ino));
            let is_dir = l.state.kind == EntryKind::Dir;
            d.changed.insert(path.clone(), l.state);
            self.new_subtree(st, (k.ino, is_dir), &path, d)?;
        }
        let gone = below(&self.entries, p)
            .filter(|(q, r)| !r.entry.deleted && is_child(p, q) && !seen.contains(*q))
            .map(|(q, _)| q.clone())
            .collect::<Vec<_>>();
        for q in gone {
            self.gone_below(&q, &HashSet::new(), d);
            d.gone.insert(q);
        }
        Ok(())
    }

    /// A node newly at `path`: everything below it is new, and index entries below it that
    /// the tree no longer has are gone.
    fn new_subtree(
        &mut self,
        st: &mut State,
        (ino, is_dir): (Ino, bool),
        path: &[u8],
        d: &mut Diff,
    ) -> Result<(), FsError> {
        let live = match is_dir {
            true => walk_from(st, ino, path.to_vec())?,
            false => Default::default(),
        };
        let keep: HashSet<Vec<u8>> = live.keys().cloned().collect();
        self.gone_below(path, &keep, d);
        for (q, l) in live {
            self.paths.set(q.clone(), Some(l.ino));
            d.changed.insert(q, l.state);
        }
        Ok(())
    }

    /// Marks live index entries below `q` gone, except those in `keep`.
    fn gone_below(&self, q: &[u8], keep: &HashSet<Vec<u8>>, d: &mut Diff) {
        let under = below(&self.entries, q).filter(|(x, r)| !r.entry.deleted && !keep.contains(*x));
        d.gone.extend(under.map(|(x, _)| x.clone()));
    }
}

/// Whether `q` is a direct child of path `p`.
fn is_child(p: &[u8], q: &[u8]) -> bool {
    let rest = if p.is_empty() { q } else { &q[p.len() + 1..] };
    !rest.contains(&b'/')
}
