//! Snapshots: the live tree serialised into encrypted directory blocks (Fossil's archive),
//! a sealed record per snapshot pointing at its root block. Browsing is in `view`; the anchor
//! file (a copy of the snapshot records) and recovering a damaged database from it are in
//! `recover`.
use crate::FsError;
use crate::attr::{FileKind, Ino, ROOT_INO};
use crate::core::Core;
use crate::crypto::BlockRef;
use crate::file::BlockKind;
use crate::format::Inode;
use crate::format::{self, SnapDir, SnapEntry, SnapRecord};
use crate::meta::{Batch, Tag};
use crate::ns::dir::check_name;
use crate::write::State;
use crate::write::flush_data;
use blockstore::BlockId;
use std::collections::HashSet;
use std::time::SystemTime;

pub(crate) mod recover;
mod view;

pub(crate) use view::{SNAP_DIR, SNAP_ROOT, Snapshots, is_virtual};

/// A snapshot as listed by [`crate::Fs::snapshots`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its name (the directory under `.snapshots/`).
    pub name: String,
    /// When it was taken.
    pub time: SystemTime,
}

impl Core {
    /// The tag a snapshot name is indexed under.
    pub(crate) fn snap_tag(&self, name: &[u8]) -> Tag {
        self.keys.name_tag(0, name)
    }

    /// Snapshot record by name.
    pub(crate) fn find_snapshot(&self, name: &[u8]) -> Result<Option<SnapRecord>, FsError> {
        let tag = self.snap_tag(name);
        Ok(self
            .db
            .snapshots()?
            .into_iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, r)| r))
    }

    /// Retains the current tree as snapshot `name`.
    pub(crate) fn snapshot(&self, name: &str) -> Result<SnapshotInfo, FsError> {
        check_name(name.as_bytes())?;
        if self.find_snapshot(name.as_bytes())?.is_some() {
            return Err(FsError::Exists);
        }
        self.flush_all(true)?;
        let root = {
            let mut st = self.st.lock();
            for ino in st.files.dirty() {
                flush_data(&self.engine, &mut st, ino, None)?;
            }
            self.archive_dir(&mut st, ROOT_INO)?
        };
        let time = SystemTime::now();
        let rec = SnapRecord {
            name: name.to_string(),
            time,
            root,
        };
        let mut b = Batch::default();
        b.snaps.push((
            self.snap_tag(name.as_bytes()),
            Some(format::encode_snap(&rec)),
        ));
        self.commit_batch(&b)?;
        self.save_anchor_logged();
        Ok(SnapshotInfo {
            name: name.to_string(),
            time,
        })
    }

    /// Writes directory `ino` and everything below as `BlockKind::Dir` blocks.
    fn archive_dir(&self, st: &mut State, ino: Ino) -> Result<BlockRef, FsError> {
        let this = st.inode(ino)?.clone();
        let dents: Vec<_> = st.dir(ino)?.values().cloned().collect();
        let mut entries = Vec::with_capacity(dents.len());
        for d in dents {
            let inode = st.inode(d.ino)?.clone();
            let sub = match d.kind {
                FileKind::Dir => Some(self.archive_dir(st, d.ino)?),
                _ => None,
            };
            entries.push(SnapEntry {
                name: d.name,
                inode,
                sub,
            });
        }
        let payload = format::encode_snapdir(&SnapDir { this, entries });
        self.engine.put_blob(BlockKind::Dir, &payload)
    }

    /// Snapshots, oldest first.
    pub(crate) fn snapshots(&self) -> Result<Vec<SnapshotInfo>, FsError> {
        let mut v: Vec<SnapshotInfo> = self
            .db
            .snapshots()?
            .into_iter()
            .map(|(_, r)| SnapshotInfo {
                name: r.name,
                time: r.time,
            })
            .collect();
        v.sort_by(|a, b| (a.time, &a.name).cmp(&(b.time, &b.name)));
        Ok(v)
    }

    /// Forgets snapshot `name`; its blocks go at the next gc.
    pub(crate) fn remove_snapshot(&self, view: &Snapshots, name: &str) -> Result<(), FsError> {
        if self.find_snapshot(name.as_bytes())?.is_none() {
            return Err(FsError::NotFound);
        }
        let mut b = Batch::default();
        b.snaps.push((self.snap_tag(name.as_bytes()), None));
        self.commit_batch(&b)?;
        self.save_anchor_logged();
        view.forget(self.snap_tag(name.as_bytes()));
        Ok(())
    }

    /// Fetches and decodes one snapshot directory block.
    pub(crate) fn snap_dir(&self, r: &BlockRef) -> Result<SnapDir, FsError> {
        match self.engine.get_blob(r)? {
            (BlockKind::Dir, p) => format::decode_snapdir(&p),
            _ => Err(FsError::BadBlock(r.id)),
        }
    }

    /// Visits every directory block and file inode below `r`; unreadable blocks become
    /// problem lines.
    pub(crate) fn walk_snap(
        &self,
        r: &BlockRef,
        on_block: &mut dyn FnMut(BlockId),
        on_file: &mut dyn FnMut(&Inode),
        problems: &mut Vec<String>,
    ) {
        on_block(r.id);
        let d = match self.snap_dir(r) {
            Ok(d) => d,
            Err(e) => return problems.push(format!("snapshot directory block {}: {e}", r.id)),
        };
        for e in &d.entries {
            match &e.sub {
                Some(s) => self.walk_snap(s, on_block, on_file, problems),
                None => on_file(&e.inode),
            }
        }
    }

    /// Adds every block the snapshots reach to `live`.
    pub(crate) fn snapshot_blocks(
        &self,
        live: &mut HashSet<BlockId>,
        problems: &mut Vec<String>,
    ) -> Result<(), FsError> {
        let mut files = Vec::new();
        for (_, s) in self.db.snapshots()? {
            let mut on_block = |id| {
                live.insert(id);
            };
            self.walk_snap(
                &s.root,
                &mut on_block,
                &mut |i| files.push(i.content),
                problems,
            );
        }
        for c in files {
            self.engine.visit_blocks(&c, &mut |id| {
                live.insert(id);
            })?;
        }
        Ok(())
    }
}
