//! Scanning the live tree into the index: every path whose state differs from its entry
//! gets a new version signed by this device; vanished paths get tombstones.
use super::entry::{Entry, EntryKind};
use super::index::SyncState;
use super::version::bump;
use crate::FsError;
use crate::attr::{FileKind, Ino, ROOT_INO};
use crate::cache::State;
use crate::crypto::VolumeKeys;
use crate::file::FileContent;
use crate::meta::Batch;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// A path of the live tree: its state (as an unversioned entry) and inode.
pub(crate) struct Live {
    pub(crate) state: Entry,
    pub(crate) ino: Ino,
}

/// The entry kind of a synced inode kind.
pub(crate) fn entry_kind(k: FileKind) -> Option<EntryKind> {
    match k {
        FileKind::File => Some(EntryKind::File),
        FileKind::Dir => Some(EntryKind::Dir),
        FileKind::Symlink => Some(EntryKind::Symlink),
        _ => None,
    }
}

/// Joins a parent path and a name.
pub(crate) fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = parent.to_vec();
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// The state of inode `ino` at `path`, `None` for kinds that are not synced.
pub(crate) fn live_state(st: &mut State, ino: Ino, path: Vec<u8>) -> Result<Option<Live>, FsError> {
    let i = st.inode(ino)?;
    let Some(kind) = entry_kind(i.kind) else {
        return Ok(None);
    };
    let state = Entry {
        path,
        kind,
        deleted: false,
        perm: i.perm & 0o7777,
        mtime: i.mtime,
        content: if kind == EntryKind::File {
            i.content
        } else {
            FileContent::default()
        },
        target: if kind == EntryKind::Symlink {
            i.target.clone()
        } else {
            Vec::new()
        },
        version: Vec::new(),
        author: [0; 32],
    };
    Ok(Some(Live { state, ino }))
}

/// Every synced path of the live tree.
pub(crate) fn walk(st: &mut State) -> Result<BTreeMap<Vec<u8>, Live>, FsError> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(ROOT_INO, Vec::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let ents: Vec<_> = st.dir(dir)?.values().cloned().collect();
        for d in ents {
            let path = join(&prefix, &d.name);
            let Some(l) = live_state(st, d.ino, path.clone())? else {
                continue;
            };
            if l.state.kind == EntryKind::Dir {
                stack.push((d.ino, path.clone()));
            }
            out.insert(path, l);
        }
    }
    Ok(out)
}

/// Whether the stored entry already describes the live state (a directory's mtime is not
/// compared: it moves whenever its entries change).
pub(crate) fn matches(e: &Entry, live: &Entry) -> bool {
    !e.deleted
        && e.kind == live.kind
        && e.perm == live.perm
        && (e.kind == EntryKind::Dir || e.mtime == live.mtime)
        && e.content == live.content
        && e.target == live.target
}

/// A tombstone for stored entry `e`.
fn tombstone(e: &Entry, now: SystemTime) -> Entry {
    Entry {
        deleted: true,
        mtime: now,
        content: FileContent::default(),
        target: Vec::new(),
        ..e.clone()
    }
}

impl SyncState {
    /// Stores `state` as a new local version of its path (on top of the stored version).
    pub(crate) fn record_local(
        &mut self,
        keys: &VolumeKeys,
        mut state: Entry,
        b: &mut Batch,
    ) -> Result<(), FsError> {
        let old = self
            .entries
            .get(&state.path)
            .map(|r| r.entry.version.clone());
        let seq = self.next_seq();
        state.version = bump(&old.unwrap_or_default(), self.me, seq);
        state.author = self.cfg.signer.device();
        self.store_own(keys, state, seq, b)
    }

    /// Records every difference between the live tree and the index (if the tree changed
    /// since the last scan). Tombstones come first, deepest paths first; then new or changed
    /// paths, parents before children.
    pub(crate) fn scan(
        &mut self,
        st: &mut State,
        keys: &VolumeKeys,
        b: &mut Batch,
    ) -> Result<(), FsError> {
        if !std::mem::take(&mut st.sync_dirty) {
            return Ok(());
        }
        let live = walk(st)?;
        let now = SystemTime::now();
        let gone: Vec<Entry> = (self.entries.iter().rev())
            .filter(|(p, r)| !r.entry.deleted && !live.contains_key(*p))
            .map(|(_, r)| tombstone(&r.entry, now))
            .collect();
        let changed: Vec<Entry> = (live.into_values())
            .filter(|l| {
                !self
                    .entries
                    .get(&l.state.path)
                    .is_some_and(|r| matches(&r.entry, &l.state))
            })
            .map(|l| l.state)
            .collect();
        for e in gone.into_iter().chain(changed) {
            self.record_local(keys, e, b)?;
        }
        Ok(())
    }
}
