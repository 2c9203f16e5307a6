//! In-memory metadata: the inode cache, per-directory and per-inode xattr maps, dirty sets.
//!
//! Every metadata operation is a memory operation here; [`MetaCache::take_batch`] collects what
//! changed for one redb transaction. Maps are loaded whole from the database on first access
//! and kept (no eviction yet).
use super::feed::ChangeFeed;
use super::{Batch, MetaDb, Tag, pair_key};
use crate::FsError;
use crate::attr::Ino;
use crate::format::Inode;
use crate::format::{self, Dirent, Super, Xattr};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// The metadata records in memory (held with the open files behind the state lock, see
/// `write::State`).
pub(crate) struct MetaCache {
    db: Arc<MetaDb>,
    inodes: HashMap<Ino, Inode>,
    /// Inodes deleted in memory whose deletion may not be committed yet.
    deleted: HashSet<Ino>,
    dirty_inodes: HashSet<Ino>,
    dirs: HashMap<Ino, BTreeMap<Tag, Dirent>>,
    dirty_dents: HashSet<(Ino, Tag)>,
    xattrs: HashMap<Ino, BTreeMap<Tag, Xattr>>,
    dirty_xattrs: HashSet<(Ino, Tag)>,
    sup: Super,
    sup_dirty: bool,
    /// Records journaled by a soft commit (`Core::soft_commit`) and not yet in the database:
    /// the next durable commit writes them again.
    soft: SoftKeys,
    /// Changes since the last sync scan.
    pub(crate) feed: ChangeFeed,
}

impl MetaCache {
    /// MetaCache over `db` whose counters are `sup`.
    pub(crate) fn new(db: Arc<MetaDb>, sup: Super) -> Self {
        MetaCache {
            db,
            inodes: HashMap::new(),
            deleted: HashSet::new(),
            dirty_inodes: HashSet::new(),
            dirs: HashMap::new(),
            dirty_dents: HashSet::new(),
            xattrs: HashMap::new(),
            dirty_xattrs: HashSet::new(),
            sup,
            sup_dirty: false,
            soft: SoftKeys::default(),
            feed: ChangeFeed::default(),
        }
    }

    /// The inode, loading it on a cache miss.
    pub(crate) fn inode(&mut self, ino: Ino) -> Result<&mut Inode, FsError> {
        if !self.inodes.contains_key(&ino) {
            if self.deleted.contains(&ino) {
                return Err(FsError::NotFound);
            }
            let i = self.db.load_inode(ino)?.ok_or(FsError::NotFound)?;
            self.inodes.insert(ino, i);
        }
        self.inodes.get_mut(&ino).ok_or(FsError::NotFound)
    }

    /// The inode, marked dirty (to be written at the next flush).
    pub(crate) fn inode_mut(&mut self, ino: Ino) -> Result<&mut Inode, FsError> {
        self.inode(ino)?;
        self.feed.changed(None, Some(ino));
        self.dirty_inodes.insert(ino);
        self.inodes.get_mut(&ino).ok_or(FsError::NotFound)
    }

    /// Adds a new inode.
    pub(crate) fn insert_inode(&mut self, i: Inode) {
        self.feed.changed(None, Some(i.ino));
        self.dirty_inodes.insert(i.ino);
        self.inodes.insert(i.ino, i);
    }

    /// Drops an inode whose last link and last handle are gone, with its xattrs.
    pub(crate) fn forget(&mut self, ino: Ino) -> Result<(), FsError> {
        let tags: Vec<Tag> = self.xattrs(ino)?.keys().copied().collect();
        for t in tags {
            self.set_xattr(ino, t, None);
        }
        self.inodes.remove(&ino);
        self.deleted.insert(ino);
        self.dirty_inodes.insert(ino);
        Ok(())
    }

    /// A new inode number. Numbers are never reused, so the new inode has no xattrs in the
    /// database: its (empty) map is known without reading it (a write reads it to drop a file
    /// capability, see `Core::write_drops_capability`).
    pub(crate) fn alloc_ino(&mut self) -> Ino {
        let ino = self.sup.next_ino;
        self.sup.next_ino += 1;
        self.sup_dirty = true;
        self.xattrs.entry(ino).or_default();
        ino
    }

    /// Makes sure inode numbers below `n` are never handed out (a restored tree uses them).
    pub(crate) fn reserve_inos_below(&mut self, n: u64) {
        if self.sup.next_ino < n {
            self.sup.next_ino = n;
            self.sup_dirty = true;
        }
    }

    /// Inode numbers handed out so far (an upper bound of inodes in use).
    pub(crate) fn inodes_issued(&self) -> u64 {
        self.sup.next_ino - 1
    }

    /// The entries of directory `ino`, loaded on first access.
    pub(crate) fn dir(&mut self, ino: Ino) -> Result<&BTreeMap<Tag, Dirent>, FsError> {
        if !self.dirs.contains_key(&ino) {
            let d = self.db.load_dir(ino)?;
            self.dirs.insert(ino, d);
        }
        self.dirs.get(&ino).ok_or(FsError::NotFound)
    }

    /// Sets (`Some`) or removes (`None`) entry `tag` of the already-loaded directory `dir`.
    pub(crate) fn set_dent(&mut self, dir: Ino, tag: Tag, d: Option<Dirent>) {
        let m = self.dirs.entry(dir).or_default();
        match d {
            Some(d) => m.insert(tag, d),
            None => m.remove(&tag),
        };
        self.dirty_dents.insert((dir, tag));
        self.feed.changed(Some(dir), None);
    }

    /// The xattrs of `ino`, loaded on first access.
    pub(crate) fn xattrs(&mut self, ino: Ino) -> Result<&BTreeMap<Tag, Xattr>, FsError> {
        if !self.xattrs.contains_key(&ino) {
            let x = self.db.load_xattrs(ino)?;
            self.xattrs.insert(ino, x);
        }
        self.xattrs.get(&ino).ok_or(FsError::NotFound)
    }

    /// Sets or removes xattr `tag` of `ino` (its map must be loaded).
    pub(crate) fn set_xattr(&mut self, ino: Ino, tag: Tag, x: Option<Xattr>) {
        let m = self.xattrs.entry(ino).or_default();
        match x {
            Some(x) => m.insert(tag, x),
            None => m.remove(&tag),
        };
        self.dirty_xattrs.insert((ino, tag));
        self.feed.changed(None, Some(ino));
    }

    /// Inodes currently in memory (including open unlinked ones).
    pub(crate) fn cached_inodes(&self) -> impl Iterator<Item = &Inode> {
        self.inodes.values()
    }

    /// Whether any metadata record is dirty.
    pub(crate) fn has_dirty(&self) -> bool {
        !(self.dirty_inodes.is_empty()
            && self.dirty_dents.is_empty()
            && self.dirty_xattrs.is_empty()
            && !self.sup_dirty)
    }

    /// Collects every dirty record, and every record journaled by a soft commit since the
    /// last durable one, into a batch for a durable commit; clears both.
    pub(crate) fn take_batch(&mut self) -> Batch {
        let mut b = Batch::default();
        self.take_batch_into(&mut b);
        b
    }

    /// [`MetaCache::take_batch`] into `b` (which may already hold other records).
    pub(crate) fn take_batch_into(&mut self, b: &mut Batch) {
        let soft = std::mem::take(&mut self.soft);
        self.dirty_inodes.extend(soft.inodes);
        self.dirty_dents.extend(soft.dents);
        self.dirty_xattrs.extend(soft.xattrs);
        self.sup_dirty |= soft.sup;
        self.take_dirty(b);
    }

    /// Collects the records dirtied since the last commit of any kind for a soft commit; they
    /// are kept (`soft`) for the next durable commit.
    pub(crate) fn take_soft_batch(&mut self) -> Batch {
        let mut b = Batch::default();
        self.take_dirty(&mut b);
        self.soft.inodes.extend(b.inodes.iter().map(|(i, _)| *i));
        self.soft
            .dents
            .extend(b.dirents.iter().map(|(k, _)| split_key(k)));
        self.soft
            .xattrs
            .extend(b.xattrs.iter().map(|(k, _)| split_key(k)));
        self.soft.sup |= b.sup.is_some();
        b
    }

    /// Collects every dirty record into `b` and clears the dirty sets.
    fn take_dirty(&mut self, b: &mut Batch) {
        for ino in self.dirty_inodes.drain() {
            let rec = self.inodes.get(&ino).filter(|i| i.nlink > 0);
            b.inodes.push((ino, rec.map(format::encode_inode)));
        }
        for (dir, tag) in self.dirty_dents.drain() {
            let rec = self.dirs.get(&dir).and_then(|m| m.get(&tag));
            b.dirents
                .push((pair_key(dir, &tag), rec.map(format::encode_dirent)));
        }
        for (ino, tag) in self.dirty_xattrs.drain() {
            let rec = self.xattrs.get(&ino).and_then(|m| m.get(&tag));
            b.xattrs
                .push((pair_key(ino, &tag), rec.map(format::encode_xattr)));
        }
        if std::mem::take(&mut self.sup_dirty) {
            b.sup = Some(self.sup);
        }
    }

    /// After `b` was committed: deleted inodes are gone from the database too.
    pub(crate) fn committed(&mut self, b: &Batch) {
        for (ino, rec) in &b.inodes {
            if rec.is_none() && !self.inodes.contains_key(ino) {
                self.deleted.remove(ino);
            }
        }
    }

    /// After `b` failed to commit: marks its records dirty again so a later flush retries.
    pub(crate) fn restore(&mut self, b: &Batch) {
        self.dirty_inodes.extend(b.inodes.iter().map(|(i, _)| *i));
        self.dirty_dents
            .extend(b.dirents.iter().map(|(k, _)| split_key(k)));
        self.dirty_xattrs
            .extend(b.xattrs.iter().map(|(k, _)| split_key(k)));
        self.sup_dirty |= b.sup.is_some();
    }
}

/// Keys of records journaled by soft commits since the last durable commit.
#[derive(Default)]
struct SoftKeys {
    inodes: HashSet<Ino>,
    dents: HashSet<(Ino, Tag)>,
    xattrs: HashSet<(Ino, Tag)>,
    sup: bool,
}

/// The (ino, tag) of a dirent or xattr database key.
fn split_key(k: &[u8; 40]) -> (Ino, Tag) {
    let mut i = [0u8; 8];
    let mut t = [0u8; 32];
    i.copy_from_slice(&k[..8]);
    t.copy_from_slice(&k[8..]);
    (u64::from_le_bytes(i), t)
}
