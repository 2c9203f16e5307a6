//! Scanning the live tree into the index: every path whose state differs from its entry
//! gets a new version signed by this device; vanished paths get tombstones.
use super::index::SyncState;
use super::version::bump;
use super::{Entry, EntryKind, Xattrs};
use crate::FsError;
use crate::attr::{FileKind, Ino, ROOT_INO};
use crate::core::Core;
use crate::crypto::VolumeKeys;
use crate::file::FileContent;
use crate::format::sync::{SYNCED_XATTR_PREFIX, XATTRS_MAX};
use crate::meta::Batch;
use crate::write::State;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

/// Longest a file being written is left out of scans (see `defer_held`).
const SYNC_HOLD_MAX: Duration = Duration::from_secs(10);

/// Whether a scan leaves files being written for later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hold {
    /// Local scans: announce a file once it is fsynced or closed.
    Defer,
    /// Before merging: every local change counts.
    Capture,
}

/// Paths a scan found vanished (`gone`) or possibly changed (`changed`, with live state).
#[derive(Default)]
pub(crate) struct Diff {
    pub(crate) gone: BTreeSet<Vec<u8>>,
    pub(crate) changed: BTreeMap<Vec<u8>, Entry>,
}

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
    let xattrs = synced_xattrs(st, ino)?;
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
        xattrs,
    };
    Ok(Some(Live { state, ino }))
}

/// The `user.*` xattrs of `ino`, sorted by name.
fn synced_xattrs(st: &mut State, ino: Ino) -> Result<Xattrs, FsError> {
    let mut v: Vec<_> = st
        .xattrs(ino)?
        .values()
        .filter(|x| x.name.starts_with(SYNCED_XATTR_PREFIX))
        .map(|x| (x.name.clone(), x.value.clone()))
        .collect();
    v.sort();
    v.truncate(XATTRS_MAX);
    Ok(v)
}

/// Every synced path of the live tree.
pub(crate) fn walk(st: &mut State) -> Result<BTreeMap<Vec<u8>, Live>, FsError> {
    walk_from(st, ROOT_INO, Vec::new())
}

/// Every synced path below directory `top` (at path `prefix`).
pub(crate) fn walk_from(
    st: &mut State,
    top: Ino,
    prefix: Vec<u8>,
) -> Result<BTreeMap<Vec<u8>, Live>, FsError> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(top, prefix)];
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
        && e.xattrs == live.xattrs
}

/// A tombstone for stored entry `e`.
fn tombstone(e: &Entry, now: SystemTime) -> Entry {
    Entry {
        deleted: true,
        mtime: now,
        content: FileContent::default(),
        target: Vec::new(),
        xattrs: Vec::new(),
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
    /// since the last scan): the whole tree after enabling (or a failed commit), otherwise
    /// only the directories and inodes marked changed. Tombstones come first, deepest paths
    /// first; then new or changed paths, parents before children.
    pub(crate) fn scan(
        &mut self,
        core: &Core,
        st: &mut State,
        b: &mut Batch,
        hold: Hold,
    ) -> Result<(), FsError> {
        if !std::mem::take(&mut st.feed.dirty) {
            return Ok(());
        }
        let dirs = std::mem::take(&mut st.feed.dirs);
        let inos = std::mem::take(&mut st.feed.inos);
        let mut d = Diff::default();
        if std::mem::take(&mut self.full) {
            self.full_diff(st, &mut d)?;
        } else {
            self.delta(core, st, (dirs, inos), &mut d)?;
        }
        if hold == Hold::Defer {
            self.defer_held(st, &mut d);
        }
        self.record_diff(&core.keys, d, b)
    }

    /// Leaves files being written out of this scan (their in-between states would only make
    /// peers fetch blocks that are about to be replaced) and keeps them for a later one;
    /// after `SYNC_HOLD_MAX` of deferral (a file kept open and written for long) they go anyway.
    fn defer_held(&self, st: &mut State, d: &mut Diff) {
        let now = Instant::now();
        let mut held = Vec::new();
        d.changed.retain(|p, _| {
            let Some(ino) = self.paths.get(p) else {
                return true;
            };
            let Some(since) = st.feed.hold.get_mut(&ino) else {
                return true;
            };
            let first = *since.get_or_insert(now);
            let keep = now.duration_since(first) >= SYNC_HOLD_MAX;
            if keep {
                *since = Some(now);
            } else {
                held.push(ino);
            }
            keep
        });
        if !held.is_empty() {
            st.feed.inos.extend(held);
            st.feed.dirty = true;
        }
    }

    fn full_diff(&mut self, st: &mut State, d: &mut Diff) -> Result<(), FsError> {
        let live = walk(st)?;
        self.paths.clear();
        for (p, l) in &live {
            self.paths.set(p.clone(), Some(l.ino));
        }
        let gone = self
            .entries
            .iter()
            .filter(|(p, r)| !r.entry.deleted && !live.contains_key(*p));
        d.gone.extend(gone.map(|(p, _)| p.clone()));
        d.changed
            .extend(live.into_iter().map(|(p, l)| (p, l.state)));
        Ok(())
    }

    /// Tombstones for `d.gone`, then new versions for what in `d.changed` differs.
    fn record_diff(&mut self, keys: &VolumeKeys, d: Diff, b: &mut Batch) -> Result<(), FsError> {
        let now = SystemTime::now();
        for p in d.gone.iter().rev() {
            self.paths.set(p.clone(), None);
            let Some(r) = self.entries.get(p).filter(|r| !r.entry.deleted) else {
                continue;
            };
            let t = tombstone(&r.entry, now);
            self.record_local(keys, t, b)?;
        }
        for (p, state) in d.changed {
            let same = self
                .entries
                .get(&p)
                .is_some_and(|r| matches(&r.entry, &state));
            if !same {
                self.record_local(keys, state, b)?;
            }
        }
        Ok(())
    }
}
