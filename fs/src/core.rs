//! The shared core behind [`crate::Fs`]: components, the state lock, and the flush path.
//!
//! Locking: one `parking_lot::Mutex<State>` guards all metadata and buffered file data;
//! content I/O (reads, and updates in flight, see `writeback`) runs without it. `flush_lock`
//! serialises flushes so that batches reach redb in the order they were taken; the sealing
//! and the redb commit run outside the state lock.
use crate::FsError;
use crate::attr::{Caller, FileKind, Ino, ROOT_INO};
use crate::crypto::{VolumeKeys, VolumeSecret};
use crate::error::MetaDamage;
use crate::file::ContentEngine;
use crate::format::Inode;
use crate::format::Super;
use crate::meta::cache::MetaCache;
use crate::meta::journal::Journal;
use crate::meta::{Batch, MetaDb};
use crate::write::{self, State};
use blockstore::{BlockSource, BlockStore};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// Components and state of an open volume.
pub(crate) struct Core {
    pub(crate) store: Arc<BlockStore>,
    pub(crate) engine: ContentEngine,
    pub(crate) keys: Arc<VolumeKeys>,
    pub(crate) db: Arc<MetaDb>,
    pub(crate) st: Mutex<State>,
    /// Serialises flushes; holds the metadata journal, written only by flushes.
    flush_lock: Mutex<Journal>,
    pub(crate) opts: FsOptions,
    /// The snapshot anchor file (`recover.rs`).
    pub(crate) anchor: PathBuf,
}

/// Tuning of an [`crate::Fs`].
#[derive(Clone, Debug)]
pub struct FsOptions {
    /// Buffered bytes per open file before they are chunked and stored in the background.
    pub file_dirty_limit: usize,
    /// Buffered bytes across all files before writers wait for the background flush.
    pub total_dirty_limit: usize,
    /// Mount read-only.
    pub read_only: bool,
}

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions {
            file_dirty_limit: 16 << 20,
            total_dirty_limit: 256 << 20,
            read_only: false,
        }
    }
}

impl Core {
    /// Opens the metadata database, creating the root directory on a new volume.
    pub(crate) fn open(
        store: Arc<BlockStore>,
        source: Arc<dyn BlockSource>,
        meta_path: &Path,
        vs: &VolumeSecret,
        root_owner: Caller,
        opts: FsOptions,
    ) -> Result<Self, FsError> {
        let keys = Arc::new(VolumeKeys::derive(vs));
        let db = Arc::new(MetaDb::open(meta_path, keys.clone())?);
        let damaged = |e: FsError| match e {
            FsError::Meta(e) => FsError::MetaDamaged {
                path: meta_path.to_owned(),
                damage: MetaDamage::Unreadable(e),
            },
            e @ (FsError::BadRecord(_) | FsError::Crypto(_)) => FsError::MetaDamaged {
                path: meta_path.to_owned(),
                damage: MetaDamage::Record(Box::new(e)),
            },
            other => other,
        };
        if db.load_super().map_err(damaged)?.is_some() {
            db.load_inode(ROOT_INO).map_err(damaged)?;
        }
        let journal = replay_journal(&db, &store, &meta_path.with_extension("journal"))?;
        let loaded = db.load_super()?;
        let fresh = loaded.is_none();
        let sup = loaded.unwrap_or(Super {
            next_ino: ROOT_INO + 1,
        });
        let mut st = State::new(MetaCache::new(db.clone(), sup));
        if fresh {
            let owner = Caller {
                umask: 0,
                ..root_owner
            };
            let mut root = Inode::new(ROOT_INO, FileKind::Dir, owner, 0o755, SystemTime::now());
            root.parent = ROOT_INO;
            st.insert_inode(root);
            let mut b = st.take_batch();
            b.sup = Some(sup);
            db.commit(&b, true)?;
        }
        Ok(Core {
            engine: ContentEngine::new(store.clone(), source, keys.clone()),
            store,
            keys,
            db,
            st: Mutex::new(st),
            flush_lock: Mutex::new(journal),
            opts,
            anchor: anchor_path(meta_path),
        })
    }

    /// Buffer limits (per file, total) for writes.
    pub(crate) fn limits(&self) -> (usize, usize) {
        (self.opts.file_dirty_limit, self.opts.total_dirty_limit)
    }

    /// Commits a batch built outside the dirty sets (snapshot records), durably, after the
    /// store commit.
    pub(crate) fn commit_batch(&self, b: &Batch) -> Result<(), FsError> {
        let mut journal = self.flush_lock.lock();
        self.store.commit()?;
        durable_commit(&self.db, &mut journal, b)
    }

    /// Makes every dirty metadata record, and the blocks put so far, survive the death of the
    /// daemon without syncing anything (the metadata journal, `meta::journal`): a `sync(1)`
    /// afterwards makes them durable. Called at the close of a file (FUSE `flush`), so that
    /// `write; close; sync` is durable without an fsync per close.
    pub(crate) fn soft_commit(&self) -> Result<(), FsError> {
        if !self.st.lock().has_dirty() {
            return Ok(());
        }
        let mut journal = self.flush_lock.lock();
        let batch = self.st.lock().take_soft_batch();
        if batch.is_empty() {
            return Ok(());
        }
        // The records go to the journal only; memory keeps them (the state never evicts) and
        // the next durable commit writes them to the database.
        let r = self
            .store
            .soft_flush()
            .map_err(FsError::from)
            .and_then(|ids| {
                let ops = self.db.seal(&batch)?;
                journal.append(ids, ops)
            });
        if r.is_err() {
            self.st.lock().restore(&batch);
        }
        r
    }

    /// Moves all buffered file data into blocks, commits the store, then commits all dirty
    /// metadata in one redb transaction (durable if asked). The store commit always comes
    /// first: the database must never reference a block the store has not made durable.
    pub(crate) fn flush_all(&self, durable: bool) -> Result<(), FsError> {
        self.flush_with(durable, |_, _| Ok(()))
    }

    /// [`Core::flush_all`] that also runs `extra` under the state lock after the data flush
    /// and before the batch is taken; what `extra` adds to the batch commits with it. If
    /// `extra` fails, nothing is committed beyond what it had already done in memory.
    pub(crate) fn flush_with(
        &self,
        durable: bool,
        extra: impl FnOnce(&mut State, &mut Batch) -> Result<(), FsError>,
    ) -> Result<(), FsError> {
        self.commit(durable, None, extra)
    }

    /// Moves the buffered data of `ino` alone into blocks, then commits like
    /// [`Core::flush_all`]: an fsync does not wait for other files' buffers.
    pub(crate) fn flush_file(&self, ino: Ino) -> Result<(), FsError> {
        self.commit(true, Some(ino), |_, _| Ok(()))
    }

    /// Flushes the data of `only` (default: every dirty file), then commits the store and
    /// the metadata, running `extra` as [`Core::flush_with`] describes.
    fn commit(
        &self,
        durable: bool,
        only: Option<Ino>,
        extra: impl FnOnce(&mut State, &mut Batch) -> Result<(), FsError>,
    ) -> Result<(), FsError> {
        let mut journal = self.flush_lock.lock();
        // A file whose data does not fit on a full disk stays dirty (its buffer kept, its
        // inode as it was), and the rest still commits: deletes must land on a full disk,
        // since they and gc are how room is made. The error is reported after the commit.
        let mut full = None;
        let batch = {
            let mut st = self.st.lock();
            let inos = only.map_or_else(|| st.files.dirty(), |i| vec![i]);
            for ino in inos {
                match write::flush_data(&self.engine, &mut st, ino, None) {
                    Ok(()) => {}
                    Err(e) if only.is_none() && e.is_no_space() => {
                        full.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            let mut b = Batch::default();
            extra(&mut st, &mut b)?;
            st.take_batch_into(&mut b);
            b
        };
        let r = self
            .store
            .commit()
            .map_err(FsError::from)
            .and_then(|()| match durable {
                true => durable_commit(&self.db, &mut journal, &batch),
                false if batch.is_empty() => Ok(()),
                false => self.db.commit(&batch, false),
            });
        let mut st = self.st.lock();
        match r {
            Ok(()) => st.committed(&batch),
            Err(_) => st.restore(&batch),
        }
        r.and(full.map_or(Ok(()), Err))
    }
}

impl write::Landing for Core {
    fn engine(&self) -> &ContentEngine {
        &self.engine
    }
    fn state(&self) -> &Mutex<State> {
        &self.st
    }
    fn limits(&self) -> (usize, usize) {
        self.limits()
    }
}

/// The snapshot anchor file of the volume whose metadata database is `meta_path`.
pub(crate) fn anchor_path(meta_path: &Path) -> PathBuf {
    meta_path.with_extension("snapshots")
}

/// Commits `b` durably; when journal entries were written since the last durable commit, the
/// commit also records the journal's mark (making the entries' non-durable redb commits
/// durable with it) and the journal is emptied.
fn durable_commit(db: &MetaDb, journal: &mut Journal, b: &Batch) -> Result<(), FsError> {
    let dirty = journal.is_dirty();
    let mut ops = db.seal(b)?;
    if dirty {
        let mark = Batch {
            journal_through: Some(journal.last_seq()),
            ..Batch::default()
        };
        ops.extend(db.seal(&mark)?);
    }
    if ops.is_empty() {
        return Ok(());
    }
    db.apply(&ops, true)?;
    if dirty {
        journal.reset()?;
    }
    Ok(())
}

/// Opens the metadata journal next to the database and replays what it holds past the
/// database's mark (`meta::journal`), durably, before anything reads the database.
fn replay_journal(db: &MetaDb, store: &BlockStore, path: &Path) -> Result<Journal, FsError> {
    let through = db.journal_through()?;
    let (mut journal, replay) = Journal::open(path, through, store)?;
    if replay.through > through || !replay.ops.is_empty() {
        let mut ops = replay.ops;
        let mark = Batch {
            journal_through: Some(replay.through),
            ..Batch::default()
        };
        ops.extend(db.seal(&mark)?);
        db.apply(&ops, true)?;
        tracing::info!(
            entries = replay.entries,
            dropped = replay.dropped,
            "replayed the metadata journal"
        );
    }
    if replay.dropped > 0 {
        tracing::warn!(
            entries = replay.dropped,
            "metadata journal entries lost with blocks a crash did not keep"
        );
    }
    if journal.is_dirty() {
        journal.reset()?;
    }
    Ok(journal)
}
