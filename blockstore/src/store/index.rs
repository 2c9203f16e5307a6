//! The durable index in redb: block entries, committed data-file lengths and a format version.
//!
//! The store keeps a full copy of the index in memory (loaded here at open); redb is written
//! only by [`Index::commit`], one durable transaction per store commit.
use crate::error::{index_error, open_error};
use crate::format::{ENTRY_LEN, Entry, FORMAT_VERSION, decode_entry, encode_entry};
use crate::{BadFile, BlockId, StoreError};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// id → entry.
const BLOCKS: TableDefinition<&[u8; 32], &[u8; ENTRY_LEN]> = TableDefinition::new("blocks");
/// data file number → committed length in bytes.
const FILES: TableDefinition<u32, u64> = TableDefinition::new("files");
/// key → value; holds `format_version`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const VERSION_KEY: &str = "format_version";

/// Everything one store commit writes to the index.
#[derive(Default)]
pub(super) struct Batch {
    /// Entries to insert or overwrite.
    pub(super) put: Vec<(BlockId, Entry)>,
    /// Entries to delete.
    pub(super) remove: Vec<BlockId>,
    /// New committed lengths of data files.
    pub(super) file_lens: BTreeMap<u32, u64>,
    /// Data files to forget (compacted away).
    pub(super) drop_files: BTreeSet<u32>,
}

/// What [`Index::load`] returns.
pub(super) struct Loaded {
    pub(super) blocks: HashMap<BlockId, Entry>,
    pub(super) file_lens: BTreeMap<u32, u64>,
}

/// The redb database.
pub(super) struct Index {
    db: Database,
    path: PathBuf,
}

impl Index {
    /// Opens or creates the index at `path`, checks its format version and loads it. A file
    /// redb cannot open or read is [`StoreError::IndexDamaged`].
    pub(super) fn open(path: &Path) -> Result<(Self, Loaded), StoreError> {
        let db = Database::create(path).map_err(|e| open_error(path, e))?;
        let index = Index {
            db,
            path: path.to_owned(),
        };
        index.check_version()?;
        let loaded = index.load()?;
        Ok((index, loaded))
    }

    fn err(&self, e: impl Into<redb::Error>) -> StoreError {
        index_error(&self.path, e)
    }

    /// Errors while opening and loading: damage is [`StoreError::IndexDamaged`].
    fn open_err(&self, e: impl Into<redb::Error>) -> StoreError {
        open_error(&self.path, e)
    }

    fn check_version(&self) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.open_err(e))?;
        {
            let mut meta = tx.open_table(META).map_err(|e| self.open_err(e))?;
            let found = meta
                .get(VERSION_KEY)
                .map_err(|e| self.open_err(e))?
                .map(|v| v.value());
            match found {
                Some(v) if v == u64::from(FORMAT_VERSION) => {}
                Some(found) => {
                    return Err(StoreError::Format {
                        path: self.path.clone(),
                        fault: BadFile::IndexVersion {
                            found,
                            supported: u64::from(FORMAT_VERSION),
                        },
                    });
                }
                None => {
                    meta.insert(VERSION_KEY, u64::from(FORMAT_VERSION))
                        .map_err(|e| self.open_err(e))?;
                }
            }
            // Create the other tables so that read transactions find them.
            tx.open_table(BLOCKS).map_err(|e| self.open_err(e))?;
            tx.open_table(FILES).map_err(|e| self.open_err(e))?;
        }
        tx.commit().map_err(|e| self.open_err(e))
    }

    /// Reads the whole index. Undecodable entries are skipped with a warning (fsck repair
    /// rebuilds them from the data files).
    fn load(&self) -> Result<Loaded, StoreError> {
        let tx = self.db.begin_read().map_err(|e| self.open_err(e))?;
        let blocks_t = tx.open_table(BLOCKS).map_err(|e| self.open_err(e))?;
        let mut blocks = HashMap::new();
        for row in blocks_t.iter().map_err(|e| self.open_err(e))? {
            let (k, v) = row.map_err(|e| self.open_err(e))?;
            let id = BlockId(*k.value());
            match decode_entry(v.value()) {
                Ok(entry) => {
                    blocks.insert(id, entry);
                }
                Err(reason) => tracing::warn!(block = %id, reason, "skipping bad index entry"),
            }
        }
        let files_t = tx.open_table(FILES).map_err(|e| self.open_err(e))?;
        let mut file_lens = BTreeMap::new();
        for row in files_t.iter().map_err(|e| self.open_err(e))? {
            let (k, v) = row.map_err(|e| self.open_err(e))?;
            file_lens.insert(k.value(), v.value());
        }
        Ok(Loaded { blocks, file_lens })
    }

    /// Applies `batch` in one durable write transaction.
    pub(super) fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut blocks = tx.open_table(BLOCKS).map_err(|e| self.err(e))?;
            for id in &batch.remove {
                blocks.remove(id.as_bytes()).map_err(|e| self.err(e))?;
            }
            for (id, entry) in &batch.put {
                blocks
                    .insert(id.as_bytes(), &encode_entry(entry))
                    .map_err(|e| self.err(e))?;
            }
            let mut files = tx.open_table(FILES).map_err(|e| self.err(e))?;
            for (no, len) in &batch.file_lens {
                files.insert(*no, *len).map_err(|e| self.err(e))?;
            }
            for no in &batch.drop_files {
                files.remove(*no).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }
}
