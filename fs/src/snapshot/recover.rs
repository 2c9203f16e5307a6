//! Recovery of damaged databases (docs/cli.md, "Recovery").
//!
//! The metadata database is recovered into a new, empty one: the snapshot records come back
//! from the snapshot anchor file (`meta.snapshots`, kept next to the database and rewritten
//! after every snapshot change), and the tree either from the latest snapshot or from the
//! peers (an empty tree and a new sync index, which the peers fill at the next connection).
//! A block index rebuilt from the data files knows no classes: blocks the metadata and
//! snapshots reach stay Own, the others become Cached.
use crate::FsError;
use crate::attr::{Caller, ROOT_INO};
use crate::core::Core;
use crate::core::FsOptions;
use crate::crypto::{BlockRef, VolumeSecret, random_array};
use crate::format::anchor::{decode_anchor, encode_anchor};
use crate::format::{Dirent, SnapRecord};
use crate::meta::{Batch, Records};
use crate::write::State;
use blockstore::{BlockId, BlockSource, BlockStore};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where [`recover_meta`] takes the tree from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoverFrom {
    /// The latest snapshot in the anchor file (a volume with no other device).
    LatestSnapshot,
    /// The other devices: the tree starts empty and their indexes fill it at the next mount.
    Peers,
}

/// What the recovered tree came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovered {
    /// The tree as of this snapshot; changes after it are lost.
    Snapshot {
        /// The snapshot's name.
        name: String,
        /// When it was taken.
        time: SystemTime,
        /// Files and directories restored (hard links counted once).
        files: u64,
        /// Directories restored, the root included.
        dirs: u64,
        /// Directory blocks that could not be read (their subtrees are missing).
        unreadable: Vec<BlockId>,
    },
    /// Nothing local: the peers' indexes fill the tree at the next connection.
    Peers,
    /// No snapshot and no peer: the volume restarts empty.
    Nothing,
}

/// What [`recover_meta`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Where the damaged database was moved (`None` if there was none).
    pub damaged: Option<PathBuf>,
    /// Snapshot records restored from the anchor file.
    pub snapshots: usize,
    /// Where the tree came from.
    pub source: Recovered,
}

/// Counts while restoring a snapshot tree.
#[derive(Default)]
struct Restored {
    inos: HashSet<u64>,
    dirs: u64,
    unreadable: Vec<BlockId>,
}

/// Replaces a damaged (or missing) metadata database at `meta_path` with a recovered one; see
/// the module doc. The damaged file is kept as `meta.redb.damaged`. Open the volume with
/// [`crate::Fs::open`] afterwards.
pub fn recover_meta(
    store: Arc<BlockStore>,
    source: Arc<dyn BlockSource>,
    meta_path: &Path,
    vs: &VolumeSecret,
    root_owner: Caller,
    from: RecoverFrom,
) -> Result<Recovery, FsError> {
    let anchored = read_anchor(&crate::core::anchor_path(meta_path));
    let damaged = move_aside(meta_path)?;
    let core = Core::open(
        store,
        source,
        meta_path,
        vs,
        root_owner,
        FsOptions::default(),
    )?;
    let snaps: Vec<(Vec<u8>, Vec<u8>, SnapRecord)> = anchored
        .into_iter()
        .filter_map(|(k, v)| match core.db.open_snapshot(&k, &v) {
            Ok(r) => Some((k, v, r)),
            Err(e) => {
                tracing::warn!(error = %e, "skipping a snapshot record of the anchor file");
                None
            }
        })
        .collect();
    let sealed: Records = snaps
        .iter()
        .map(|(k, v, _)| (k.clone(), v.clone()))
        .collect();
    core.db.put_sealed_snapshots(&sealed)?;
    let latest = snaps.iter().map(|(_, _, r)| r).max_by_key(|r| r.time);
    let source = match (from, latest) {
        (RecoverFrom::Peers, _) => Recovered::Peers,
        (RecoverFrom::LatestSnapshot, Some(rec)) => core.restore_snapshot(rec)?,
        (RecoverFrom::LatestSnapshot, None) => Recovered::Nothing,
    };
    core.restart_sync_index()?;
    core.flush_all(true)?;
    core.save_anchor()?;
    Ok(Recovery {
        damaged,
        snapshots: snaps.len(),
        source,
    })
}

/// Renames the database to `<name>.damaged`; `None` if it did not exist.
fn move_aside(meta_path: &Path) -> Result<Option<PathBuf>, FsError> {
    // The close journal's entries build on the damaged database's state: replayed over the
    // recovered tree they would name inodes it does not have, so they go aside with it.
    let journal = meta_path.with_extension("journal");
    rename_if_present(&journal, &journal.with_extension("journal.damaged"))?;
    let aside = meta_path.with_extension("redb.damaged");
    rename_if_present(meta_path, &aside)
}

fn rename_if_present(from: &Path, to: &Path) -> Result<Option<PathBuf>, FsError> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(Some(to.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The records of the anchor file; none if it is missing or damaged.
fn read_anchor(path: &Path) -> Records {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "no snapshot anchor");
            return Vec::new();
        }
    };
    decode_anchor(&bytes).unwrap_or_else(|e| {
        tracing::error!(file = %path.display(), error = %e, "damaged snapshot anchor");
        Vec::new()
    })
}

/// Writes `bytes` to `path` durably and atomically (temporary file, fsync, rename, fsync of
/// the directory).
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("snapshots.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

impl Core {
    /// Rewrites the anchor file from the database's snapshot records.
    pub(crate) fn save_anchor(&self) -> Result<(), FsError> {
        let recs = self.db.sealed_snapshots()?;
        write_durably(&self.anchor, &encode_anchor(&recs))?;
        Ok(())
    }

    /// [`Core::save_anchor`] after a snapshot change, which has succeeded whatever happens
    /// here: a failure is logged (recovery would then miss the change).
    pub(crate) fn save_anchor_logged(&self) {
        if let Err(e) = self.save_anchor() {
            tracing::error!(file = %self.anchor.display(), error = %e, "could not write the snapshot anchor");
        }
    }

    /// Writes the anchor file of a volume that has snapshots but none yet.
    pub(crate) fn ensure_anchor(&self) -> Result<(), FsError> {
        if !self.anchor.exists() && !self.db.sealed_snapshots()?.is_empty() {
            self.save_anchor_logged();
        }
        Ok(())
    }

    /// Makes the live tree the tree of snapshot `rec` (over a fresh database).
    fn restore_snapshot(&self, rec: &SnapRecord) -> Result<Recovered, FsError> {
        let mut c = Restored::default();
        let mut st = self.st.lock();
        self.restore_dir(&mut st, &rec.root, &mut c);
        let max = c.inos.iter().copied().max().unwrap_or(ROOT_INO);
        st.reserve_inos_below(max + 1);
        drop(st);
        Ok(Recovered::Snapshot {
            name: rec.name.clone(),
            time: rec.time,
            files: c.inos.len() as u64 - c.dirs.min(c.inos.len() as u64),
            dirs: c.dirs,
            unreadable: c.unreadable,
        })
    }

    /// Restores directory block `r` and everything below; false if its block is unreadable
    /// (the caller then leaves the entry out).
    fn restore_dir(&self, st: &mut State, r: &BlockRef, c: &mut Restored) -> bool {
        let d = match self.snap_dir(r) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(block = %r.id, error = %e, "snapshot directory block unreadable");
                c.unreadable.push(r.id);
                return false;
            }
        };
        let dir = d.this.ino;
        c.inos.insert(dir);
        c.dirs += 1;
        st.insert_inode(d.this);
        for e in d.entries {
            let restored = match &e.sub {
                Some(sub) => self.restore_dir(st, sub, c),
                None => {
                    c.inos.insert(e.inode.ino);
                    true
                }
            };
            if !restored {
                continue;
            }
            let dent = Dirent {
                name: e.name,
                ino: e.inode.ino,
                kind: e.inode.kind,
            };
            st.set_dent(dir, self.keys.name_tag(dir, &dent.name), Some(dent));
            if e.sub.is_none() {
                st.insert_inode(e.inode);
            }
        }
        true
    }

    /// Gives the fresh database a new sync index whose sequence starts above any counter
    /// this device used before: the time in microseconds since the epoch (counters grow by
    /// one per change). Versions this device makes from now on then dominate its old ones.
    fn restart_sync_index(&self) -> Result<(), FsError> {
        let id = u64::from_le_bytes(random_array()?).max(1);
        let floor = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2));
        let b = Batch {
            sync_super: Some(crate::format::sync::encode_pair(id, floor)),
            ..Batch::default()
        };
        self.db.commit(&b, true)
    }

    /// After the block index was rebuilt from the data files: the rebuilt blocks that
    /// neither the tree nor a snapshot reaches become Cached (the records carry no class).
    /// Returns how many; with metadata problems nothing is changed (everything stays Own).
    pub(crate) fn classify_rebuilt(
        &self,
        rebuilt: &[BlockId],
        problems: &mut Vec<String>,
    ) -> Result<usize, FsError> {
        let mut p = Vec::new();
        let live = self.live_blocks(&mut p)?;
        if !p.is_empty() {
            problems.push("rebuilt block index: every block kept as own data".into());
            return Ok(0);
        }
        let cached: Vec<BlockId> = rebuilt
            .iter()
            .filter(|id| !live.contains(id))
            .copied()
            .collect();
        Ok(self.store.make_cached(&cached)?)
    }
}
