//! The local metadata database: redb tables of sealed records (docs/formats/fs.md).
//!
//! Only inode numbers and name tags are in clear; every value is sealed with
//! `VolumeKeys::seal_record(table, key, plaintext)`. Writes arrive as one [`Batch`] per flush,
//! committed in one redb write transaction.
pub(crate) mod cache;
pub(crate) mod feed;
pub(crate) mod journal;

use crate::FsError;
use crate::attr::Ino;
use crate::crypto::VolumeKeys;
use crate::error::MetaDamage;
use crate::format::Inode;
use crate::format::{self, Dirent, SnapRecord, Super, Xattr};
use journal::SealedOp;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// A 32-byte name tag (`VolumeKeys::name_tag`).
pub(crate) type Tag = [u8; 32];

const INODES: TableDefinition<u64, &[u8]> = TableDefinition::new("inodes");
const DIRENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("dirents");
const XATTRS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("xattrs");
const SNAPS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("snapshots");
const META: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta");
const SYNC_INDEX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sync_index");
const SYNC_PEERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sync_peers");

/// Table tags bound into each record's AAD.
const T_INODE: u8 = 1;
const T_DIRENT: u8 = 2;
const T_XATTR: u8 = 3;
const T_SNAP: u8 = 4;
const T_META: u8 = 5;
const T_SYNC_INDEX: u8 = 6;
const T_SYNC_PEER: u8 = 7;
const SUPER_KEY: &[u8] = b"super";
/// A table with byte-string keys and values.
type BytesTable = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// The byte-keyed tables by tag (`inodes` has integer keys and is handled apart).
const TABLES: [(u8, BytesTable); 6] = [
    (T_DIRENT, DIRENTS),
    (T_XATTR, XATTRS),
    (T_SNAP, SNAPS),
    (T_META, META),
    (T_SYNC_INDEX, SYNC_INDEX),
    (T_SYNC_PEER, SYNC_PEERS),
];
const SYNC_KEY: &[u8] = b"sync";
/// META key of the highest journal sequence number the database includes (u64 LE).
const JOURNAL_KEY: &[u8] = b"journal";

/// Database key of an entry under `ino` (dirents and xattrs): ino LE ‖ tag.
pub(crate) fn pair_key(ino: Ino, tag: &Tag) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&ino.to_le_bytes());
    k[8..].copy_from_slice(tag);
    k
}

/// An inode, or the number of one whose record does not open and why.
pub(crate) type InodeOrBad = Result<Inode, (Ino, FsError)>;

pub(crate) use crate::format::Records;

/// Record plaintexts to write (`Some`) or delete (`None`) in one transaction.
#[derive(Default)]
pub(crate) struct Batch {
    pub(crate) inodes: Vec<(Ino, Option<Vec<u8>>)>,
    pub(crate) dirents: Vec<([u8; 40], Option<Vec<u8>>)>,
    pub(crate) xattrs: Vec<([u8; 40], Option<Vec<u8>>)>,
    pub(crate) snaps: Vec<(Tag, Option<Vec<u8>>)>,
    pub(crate) sup: Option<Super>,
    /// Sync index records by path tag (plaintexts of `format::sync`).
    pub(crate) sync_index: Vec<(Tag, Option<Vec<u8>>)>,
    /// Sync peer progress records by DeviceId.
    pub(crate) sync_peers: Vec<([u8; 32], Option<Vec<u8>>)>,
    /// The sync superblock record.
    pub(crate) sync_super: Option<Vec<u8>>,
    /// The journal mark to record (durable commits after journal entries were written).
    pub(crate) journal_through: Option<u64>,
}

impl Batch {
    /// Whether there is nothing to write.
    pub(crate) fn is_empty(&self) -> bool {
        self.inodes.is_empty()
            && self.dirents.is_empty()
            && self.xattrs.is_empty()
            && self.snaps.is_empty()
            && self.sup.is_none()
            && self.sync_index.is_empty()
            && self.sync_peers.is_empty()
            && self.sync_super.is_none()
            && self.journal_through.is_none()
    }
}

/// A redb failure as an `FsError`: a full disk is `NoSpace` (ENOSPC to the caller).
fn dberr(e: impl Into<redb::Error>) -> FsError {
    match e.into() {
        redb::Error::Io(io) if disk_full(&io) => FsError::NoSpace,
        e => FsError::Meta(e),
    }
}

/// ENOSPC or EDQUOT.
fn disk_full(io: &std::io::Error) -> bool {
    let full = [rustix::io::Errno::NOSPC, rustix::io::Errno::DQUOT].map(|n| Some(n.raw_os_error()));
    full.contains(&io.raw_os_error())
}

/// Maps a redb error met while opening the database at `path`: what says the file is
/// unreadable (corruption, a short file, a format redb cannot repair) is
/// [`FsError::MetaDamaged`], an ordinary I/O error (permissions, a full disk) stays one.
fn open_error(path: &Path, e: redb::Error) -> FsError {
    use std::io::ErrorKind::{InvalidData, UnexpectedEof};
    match e {
        redb::Error::Io(io) if disk_full(&io) => FsError::NoSpace,
        redb::Error::Io(io) if !matches!(io.kind(), UnexpectedEof | InvalidData) => FsError::Io(io),
        e @ (redb::Error::DatabaseAlreadyOpen
        | redb::Error::LockProtocolMismatch
        | redb::Error::TransactionInProgress) => dberr(e),
        other => FsError::MetaDamaged {
            path: path.to_owned(),
            damage: MetaDamage::Unreadable(other),
        },
    }
}

/// The open metadata database.
pub(crate) struct MetaDb {
    /// `None` only while a reopen after a failed write could not open it again.
    db: parking_lot::RwLock<Option<Database>>,
    path: std::path::PathBuf,
    keys: Arc<VolumeKeys>,
}

impl MetaDb {
    /// Opens or creates the database, making sure every table exists. A file redb cannot
    /// open is [`FsError::MetaDamaged`].
    pub(crate) fn open(path: &Path, keys: Arc<VolumeKeys>) -> Result<Self, FsError> {
        let db = Self::open_db(path)?;
        Ok(MetaDb {
            db: parking_lot::RwLock::new(Some(db)),
            path: path.to_owned(),
            keys,
        })
    }

    fn open_db(path: &Path) -> Result<Database, FsError> {
        let damaged = |e: redb::Error| open_error(path, e);
        let db = Database::create(path).map_err(|e| damaged(e.into()))?;
        let tx = db.begin_write().map_err(|e| damaged(e.into()))?;
        tx.open_table(INODES).map_err(|e| damaged(e.into()))?;
        for t in [DIRENTS, XATTRS, SNAPS, META, SYNC_INDEX, SYNC_PEERS] {
            tx.open_table(t).map_err(|e| damaged(e.into()))?;
        }
        tx.commit().map_err(|e| damaged(e.into()))?;
        Ok(db)
    }

    /// The open database (`None` only while a reopen after a failed write has not succeeded).
    fn handle(&self) -> Result<parking_lot::MappedRwLockReadGuard<'_, Database>, FsError> {
        parking_lot::RwLockReadGuard::try_map(self.db.read(), Option::as_ref)
            .map_err(|_| FsError::BadRecord("metadata database not open"))
    }

    fn begin_read(&self) -> Result<redb::ReadTransaction, FsError> {
        self.handle()?.begin_read().map_err(dberr)
    }

    /// After a failed write: redb fails every later operation on this handle, so the
    /// database is closed and opened again (it returns to its last commit; nothing written
    /// since is lost, the dirty records are still in memory). Lets the daemon carry on
    /// once space returns.
    fn reopen(&self) {
        let mut g = self.db.write();
        drop(g.take());
        match Self::open_db(&self.path) {
            Ok(db) => *g = Some(db),
            Err(e) => tracing::warn!(error = %e, "metadata database not reopened yet"),
        }
    }

    /// The sealed snapshot records as stored (table key, sealed value).
    pub(crate) fn sealed_snapshots(&self) -> Result<Records, FsError> {
        let tx = self.begin_read()?;
        let t = tx.open_table(SNAPS).map_err(dberr)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(dberr)? {
            let (k, v) = item.map_err(dberr)?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Opens a sealed snapshot record stored under `key` (from an anchor file).
    pub(crate) fn open_snapshot(&self, key: &[u8], sealed: &[u8]) -> Result<SnapRecord, FsError> {
        let p = self.keys.open_record(T_SNAP, key, sealed)?;
        format::decode_snap(&p)
    }

    /// Writes sealed snapshot records as they are (their AAD binds only table and key), in
    /// one durable transaction.
    pub(crate) fn put_sealed_snapshots(&self, recs: &Records) -> Result<(), FsError> {
        let tx = self.handle()?.begin_write().map_err(dberr)?;
        {
            let mut t = tx.open_table(SNAPS).map_err(dberr)?;
            for (k, v) in recs {
                t.insert(k.as_slice(), v.as_slice()).map_err(dberr)?;
            }
        }
        tx.commit().map_err(dberr)
    }

    /// The superblock, `None` for a new volume.
    pub(crate) fn load_super(&self) -> Result<Option<Super>, FsError> {
        let tx = self.begin_read()?;
        let t = tx.open_table(META).map_err(dberr)?;
        let Some(v) = t.get(SUPER_KEY).map_err(dberr)? else {
            return Ok(None);
        };
        let p = self.keys.open_record(T_META, SUPER_KEY, v.value())?;
        format::decode_super(&p).map(Some)
    }

    /// One inode, `None` if absent.
    pub(crate) fn load_inode(&self, ino: Ino) -> Result<Option<Inode>, FsError> {
        let tx = self.begin_read()?;
        let t = tx.open_table(INODES).map_err(dberr)?;
        let Some(v) = t.get(ino).map_err(dberr)? else {
            return Ok(None);
        };
        self.open_inode(ino, v.value()).map(Some)
    }

    fn open_inode(&self, ino: Ino, sealed: &[u8]) -> Result<Inode, FsError> {
        let r = self
            .keys
            .open_record(T_INODE, &ino.to_le_bytes(), sealed)
            .and_then(|p| format::decode_inode(ino, &p));
        if let Err(e) = &r {
            tracing::error!(ino, error = %e, "inode record does not open");
        }
        r
    }

    /// Every inode in the database (gc, fsck, stats).
    pub(crate) fn all_inodes(&self) -> Result<Vec<InodeOrBad>, FsError> {
        let tx = self.begin_read()?;
        let t = tx.open_table(INODES).map_err(dberr)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(dberr)? {
            let (k, v) = item.map_err(dberr)?;
            let ino = k.value();
            out.push(self.open_inode(ino, v.value()).map_err(|e| (ino, e)));
        }
        Ok(out)
    }

    /// All entries of directory `ino`, by tag.
    pub(crate) fn load_dir(&self, ino: Ino) -> Result<BTreeMap<Tag, Dirent>, FsError> {
        self.load_pairs(DIRENTS, T_DIRENT, ino, format::decode_dirent)
    }

    /// All xattrs of inode `ino`, by tag.
    pub(crate) fn load_xattrs(&self, ino: Ino) -> Result<BTreeMap<Tag, Xattr>, FsError> {
        self.load_pairs(XATTRS, T_XATTR, ino, format::decode_xattr)
    }

    fn load_pairs<V>(
        &self,
        def: TableDefinition<&[u8], &[u8]>,
        table: u8,
        ino: Ino,
        decode: fn(&[u8]) -> Result<V, FsError>,
    ) -> Result<BTreeMap<Tag, V>, FsError> {
        let tx = self.begin_read()?;
        let t = tx.open_table(def).map_err(dberr)?;
        let (lo, hi) = (pair_key(ino, &[0; 32]), pair_key(ino, &[0xff; 32]));
        let mut out = BTreeMap::new();
        for item in t.range(lo.as_slice()..=hi.as_slice()).map_err(dberr)? {
            let (k, v) = item.map_err(dberr)?;
            let p = self.keys.open_record(table, k.value(), v.value());
            let rec = p.and_then(|p| decode(&p)).inspect_err(|e| {
                tracing::error!(ino, error = %e, table, "entry record does not open");
            })?;
            let mut tag = [0u8; 32];
            tag.copy_from_slice(&k.value()[8..]);
            out.insert(tag, rec);
        }
        Ok(out)
    }

    /// Every snapshot record.
    pub(crate) fn snapshots(&self) -> Result<Vec<(Tag, SnapRecord)>, FsError> {
        let tx = self.begin_read()?;
        let t = tx.open_table(SNAPS).map_err(dberr)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(dberr)? {
            let (k, v) = item.map_err(dberr)?;
            let p = self.keys.open_record(T_SNAP, k.value(), v.value())?;
            let mut tag = [0u8; 32];
            tag.copy_from_slice(k.value());
            out.push((tag, format::decode_snap(&p)?));
        }
        Ok(out)
    }

    /// The sync superblock plaintext, `None` before sync was enabled.
    pub(crate) fn load_sync_super(&self) -> Result<Option<Vec<u8>>, FsError> {
        let tx = self.begin_read()?;
        let t = tx.open_table(META).map_err(dberr)?;
        let Some(v) = t.get(SYNC_KEY).map_err(dberr)? else {
            return Ok(None);
        };
        self.keys.open_record(T_META, SYNC_KEY, v.value()).map(Some)
    }

    /// Every sync index record (plaintexts).
    pub(crate) fn load_sync_index(&self) -> Result<Vec<Vec<u8>>, FsError> {
        Ok(self
            .load_all(SYNC_INDEX, T_SYNC_INDEX)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// Every sync peer record: (DeviceId, plaintext).
    pub(crate) fn load_sync_peers(&self) -> Result<Records, FsError> {
        self.load_all(SYNC_PEERS, T_SYNC_PEER)
    }

    fn load_all(&self, def: TableDefinition<&[u8], &[u8]>, table: u8) -> Result<Records, FsError> {
        let tx = self.begin_read()?;
        let t = tx.open_table(def).map_err(dberr)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(dberr)? {
            let (k, v) = item.map_err(dberr)?;
            let p = self.keys.open_record(table, k.value(), v.value())?;
            out.push((k.value().to_vec(), p));
        }
        Ok(out)
    }

    /// The highest journal sequence number the database includes (0 if none).
    pub(crate) fn journal_through(&self) -> Result<u64, FsError> {
        let tx = self.begin_read()?;
        let t = tx.open_table(META).map_err(dberr)?;
        let Some(v) = t.get(JOURNAL_KEY).map_err(dberr)? else {
            return Ok(0);
        };
        let p = self.keys.open_record(T_META, JOURNAL_KEY, v.value())?;
        let b: [u8; 8] = p
            .as_slice()
            .try_into()
            .map_err(|_| FsError::BadRecord("journal mark"))?;
        Ok(u64::from_le_bytes(b))
    }

    /// Seals every record of `b`, in the order a commit applies them.
    pub(crate) fn seal(&self, b: &Batch) -> Result<Vec<SealedOp>, FsError> {
        let mut ops = Vec::new();
        let mut add = |table: u8, key: &[u8], rec: &Option<Vec<u8>>| -> Result<(), FsError> {
            let value = match rec {
                Some(p) => Some(self.keys.seal_record(table, key, p)?),
                None => None,
            };
            ops.push(SealedOp {
                table,
                key: key.to_vec(),
                value,
            });
            Ok(())
        };
        for (ino, rec) in &b.inodes {
            add(T_INODE, &ino.to_le_bytes(), rec)?;
        }
        for (k, rec) in &b.dirents {
            add(T_DIRENT, k, rec)?;
        }
        for (k, rec) in &b.xattrs {
            add(T_XATTR, k, rec)?;
        }
        for (k, rec) in &b.snaps {
            add(T_SNAP, k, rec)?;
        }
        if let Some(sup) = &b.sup {
            add(T_META, SUPER_KEY, &Some(format::encode_super(sup)))?;
        }
        for (k, rec) in &b.sync_index {
            add(T_SYNC_INDEX, k, rec)?;
        }
        for (k, rec) in &b.sync_peers {
            add(T_SYNC_PEER, k, rec)?;
        }
        if let Some(s) = &b.sync_super {
            add(T_META, SYNC_KEY, &Some(s.clone()))?;
        }
        if let Some(n) = b.journal_through {
            add(T_META, JOURNAL_KEY, &Some(n.to_le_bytes().to_vec()))?;
        }
        Ok(ops)
    }

    /// Seals and writes `b` in one transaction (durable or not).
    pub(crate) fn commit(&self, b: &Batch, durable: bool) -> Result<(), FsError> {
        let ops = self.seal(b)?;
        self.apply(&ops, durable)
    }

    /// Writes sealed records in one transaction (durable or not). A failed write (a full
    /// disk) reopens the database, so that the next commit can succeed once there is room.
    pub(crate) fn apply(&self, ops: &[SealedOp], durable: bool) -> Result<(), FsError> {
        for op in ops {
            let ok = match op.table {
                T_INODE => op.key.len() == 8,
                t => TABLES.iter().any(|(tag, _)| *tag == t),
            };
            if !ok {
                return Err(FsError::BadRecord(
                    "sealed record for an unknown table or key",
                ));
            }
        }
        if self.db.read().is_none() {
            self.reopen();
        }
        let g = self.db.read();
        let db = g
            .as_ref()
            .ok_or(FsError::BadRecord("metadata database not open"))?;
        let r = Self::apply_once(db, ops, durable);
        drop(g);
        r.map_err(|e| {
            if matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo) {
                tracing::warn!(error = %e, "metadata commit failed; reopening the database");
                self.reopen();
            }
            dberr(e)
        })
    }

    fn apply_once(db: &Database, ops: &[SealedOp], durable: bool) -> Result<(), redb::Error> {
        let mut tx = db.begin_write()?;
        tx.set_durability(match durable {
            true => Durability::Immediate,
            false => Durability::None,
        })?;
        {
            let mut inodes = tx.open_table(INODES)?;
            let mut tables = Vec::new();
            for (tag, def) in TABLES {
                tables.push((tag, tx.open_table(def)?));
            }
            for op in ops {
                if op.table == T_INODE {
                    let mut k = [0u8; 8];
                    k.copy_from_slice(&op.key);
                    let ino = u64::from_le_bytes(k);
                    match &op.value {
                        Some(v) => drop(inodes.insert(ino, v.as_slice())?),
                        None => drop(inodes.remove(ino)?),
                    }
                    continue;
                }
                let Some((_, t)) = tables.iter_mut().find(|(tag, _)| *tag == op.table) else {
                    continue; // checked by `apply`
                };
                match &op.value {
                    Some(v) => drop(t.insert(op.key.as_slice(), v.as_slice())?),
                    None => drop(t.remove(op.key.as_slice())?),
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests panic on purpose
    use super::*;
    use crate::crypto::VolumeSecret;
    use std::process::Command;

    /// Unmounts the tmpfs even when the test panics.
    struct Tmpfs(std::path::PathBuf);

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }

    fn raw(db: &MetaDb, ino: u64) -> Option<Vec<u8>> {
        let tx = db.begin_read().unwrap();
        let t = tx.open_table(INODES).unwrap();
        let v = t.get(ino).unwrap()?;
        Some(
            db.keys
                .open_record(T_INODE, &ino.to_le_bytes(), v.value())
                .unwrap(),
        )
    }

    fn batch(first: u64, n: u64, len: usize) -> Batch {
        Batch {
            inodes: (first..first + n)
                .map(|i| (i, Some(vec![i as u8; len])))
                .collect(),
            ..Batch::default()
        }
    }

    #[test]
    fn a_full_disk_fails_a_commit_and_the_next_one_succeeds_once_there_is_room() {
        let tmp = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(tmp.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: mounting a tmpfs needs root");
            return;
        }
        let _mount = Tmpfs(tmp.path().to_owned());
        let keys = Arc::new(VolumeKeys::derive(&VolumeSecret([7; 32])));
        let db = MetaDb::open(&tmp.path().join("meta.redb"), keys).unwrap();
        db.commit(&batch(1, 10, 100), true).unwrap();
        let filler = tmp.path().join("filler");
        let _ = std::fs::write(&filler, vec![0u8; 8 << 20]); // fills the tmpfs (ENOSPC)
        let mut failed = None;
        for round in 0..50 {
            if let Err(e) = db.commit(&batch(1000 + round * 200, 200, 2000), true) {
                failed = Some(e);
                break;
            }
        }
        assert!(matches!(failed, Some(FsError::NoSpace)), "got {failed:?}");
        std::fs::remove_file(&filler).unwrap();
        db.commit(&batch(5, 1, 100), true).unwrap();
        assert_eq!(raw(&db, 5), Some(vec![5u8; 100]));
        assert_eq!(raw(&db, 1), Some(vec![1u8; 100]));
    }
}
