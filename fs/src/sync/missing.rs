//! Blocks that live files need and the local store lacks; per-path status.
use super::live::split;
use super::scan::{live_state, matches, walk};
use super::{PathStatus, SyncSlot};
use crate::FsError;
use crate::attr::{FileKind, Ino};
use crate::core::Core;
use crate::file::{FileContent, Missing};
use blockstore::BlockId;

impl Core {
    /// See `SyncHandle::missing`.
    pub(crate) fn sync_missing(
        &self,
        slot: &SyncSlot,
        max: usize,
    ) -> Result<Vec<BlockId>, FsError> {
        let mut g = slot.lock();
        let ss = g.as_mut().ok_or(FsError::NotSupported)?;
        let mut out = Missing::default();
        let inos: Vec<Ino> = ss.incomplete.iter().copied().collect();
        for ino in inos {
            if out.ids.len() >= max {
                break;
            }
            let Some(c) = self.content_of(ino)? else {
                ss.incomplete.remove(&ino);
                ss.local_prefix.remove(&ino);
                continue;
            };
            // The store keeps every block a live file refers to, so what a walk of this very
            // content found local is still local: walk on from there.
            let root = c.root.as_ref().map(|r| r.block.id);
            let below = match ss.local_prefix.get(&ino) {
                Some((r, at)) if Some(*r) == root => *at,
                _ => 0,
            };
            let (complete, local) = self.missing_of(&c, &mut out, (max, below))?;
            if complete {
                ss.incomplete.remove(&ino);
                ss.local_prefix.remove(&ino);
            } else if let Some(r) = root {
                ss.local_prefix.insert(ino, (r, local));
            }
        }
        Ok(out.ids)
    }

    /// The stored content of file `ino`, `None` if it is gone or not a file.
    fn content_of(&self, ino: Ino) -> Result<Option<FileContent>, FsError> {
        let mut st = self.st.lock();
        match st.inode(ino) {
            Ok(i) if i.kind == FileKind::File => Ok(Some(i.content)),
            Ok(_) | Err(FsError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Adds missing blocks of `c` to `out` (see `ContentEngine::missing_blocks`).
    fn missing_of(
        &self,
        c: &FileContent,
        out: &mut Missing,
        max_below: (usize, u64),
    ) -> Result<(bool, u64), FsError> {
        let has = |id: &BlockId| self.store.has(id).unwrap_or(false);
        self.engine.missing_blocks(c, &has, out, max_below)
    }

    /// See `SyncHandle::status`.
    pub(crate) fn sync_status(&self, slot: &SyncSlot, path: &[u8]) -> Result<PathStatus, FsError> {
        let g = slot.lock();
        let ss = g.as_ref().ok_or(FsError::NotSupported)?;
        let path = path.strip_prefix(b"/").unwrap_or(path);
        let rec = ss.entries.get(path);
        let ino = self.ino_at(path)?;
        let live = match ino {
            Some(ino) => live_state(&mut self.st.lock(), ino, path.to_vec())?,
            None => None,
        };
        let buffered = ino.is_some_and(|i| self.st.lock().files.dirty().contains(&i));
        let pending = buffered
            || match (&rec, &live) {
                (Some(r), Some(l)) => !matches(&r.entry, &l.state),
                (Some(r), None) => !r.entry.deleted,
                (None, Some(_)) => true,
                (None, None) => return Err(FsError::NotFound),
            };
        let local = match &live {
            Some(l) => {
                self.missing_of(&l.state.content, &mut Missing::default(), (1, 0))?
                    .0
            }
            None => true,
        };
        Ok(PathStatus {
            local,
            pending,
            version: rec.map(|r| r.entry.version.clone()).unwrap_or_default(),
            author: rec.map_or([0; 32], |r| r.entry.author),
        })
    }

    /// Paths where the live tree and the index differ (a full walk; for tests and fsck-like
    /// checks). Empty right after a scan, apart from files being written (held back).
    pub(crate) fn sync_check(&self, slot: &SyncSlot) -> Result<Vec<Vec<u8>>, FsError> {
        let g = slot.lock();
        let ss = g.as_ref().ok_or(FsError::NotSupported)?;
        let mut st = self.st.lock();
        let live = walk(&mut st)?;
        // Files being written are left for a later scan on purpose (scan::defer_held).
        let mut out: Vec<Vec<u8>> = (live.iter())
            .filter(|(p, l)| {
                !st.feed.hold.contains_key(&l.ino)
                    && !ss
                        .entries
                        .get(*p)
                        .is_some_and(|r| matches(&r.entry, &l.state))
            })
            .map(|(p, _)| p.clone())
            .collect();
        let gone = ss
            .entries
            .iter()
            .filter(|(p, r)| !r.entry.deleted && !live.contains_key(*p));
        out.extend(gone.map(|(p, _)| p.clone()));
        Ok(out)
    }

    /// The inode at `path` in the live tree.
    fn ino_at(&self, path: &[u8]) -> Result<Option<Ino>, FsError> {
        let (parent, name) = split(path);
        let mut st = self.st.lock();
        let mut dir = crate::attr::ROOT_INO;
        for c in parent.split(|b| *b == b'/').filter(|c| !c.is_empty()) {
            match self.entry(&mut st, dir, c)?.1 {
                Some(d) if d.kind == FileKind::Dir => dir = d.ino,
                _ => return Ok(None),
            }
        }
        if name.is_empty() {
            return Ok(Some(dir));
        }
        Ok(self.entry(&mut st, dir, name)?.1.map(|d| d.ino))
    }
}
