//! The in-memory path index, its persistence in meta.redb and peer progress.
use super::Entry;
use super::SyncConfig;
use super::entry;
use super::paths::PathMap;
use super::version::short_id;
use crate::FsError;
use crate::attr::Ino;
use crate::crypto::{VolumeKeys, random_array};
use crate::format::sync as fmt;
use crate::meta::{Batch, MetaDb, Tag};
use blockstore::BlockId;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Pseudo inode under which path tags are computed (no real inode has it).
const PATH_TAG_INO: u64 = u64::MAX;

/// One stored entry: the state, the signed blob that carries it and its local sequence.
#[derive(Clone, Debug)]
pub(crate) struct Rec {
    pub(crate) entry: Entry,
    pub(crate) blob: Vec<u8>,
    pub(crate) seq: u64,
}

/// Sync bookkeeping behind `Core::sync`.
pub(crate) struct SyncState {
    pub(crate) cfg: SyncConfig,
    /// This device's short id.
    pub(crate) me: u64,
    pub(crate) index_id: u64,
    pub(crate) seq: u64,
    pub(crate) entries: BTreeMap<Vec<u8>, Rec>,
    by_seq: BTreeMap<u64, Vec<u8>>,
    peers: HashMap<[u8; 32], (u64, u64)>,
    /// Where synced inodes are (kept by scans and merges).
    pub(crate) paths: PathMap,
    /// The next scan walks the whole tree (after enabling, or a failed commit).
    pub(crate) full: bool,
    /// Files whose blocks may not all be local (every file when sync is enabled, then the
    /// files that merges set).
    pub(crate) incomplete: BTreeSet<Ino>,
    /// Per incomplete file: its tree root when last walked, and the offset below which that
    /// walk found every block local (so the next walk starts there).
    pub(crate) local_prefix: HashMap<Ino, (BlockId, u64)>,
}

impl SyncState {
    /// Loads the index from `db`, creating a new one (new index_id) if there is none. The
    /// second value is the superblock to write when the index is new.
    pub(crate) fn load(
        db: &MetaDb,
        keys: &VolumeKeys,
        cfg: SyncConfig,
    ) -> Result<(Self, Option<Vec<u8>>), FsError> {
        let (index_id, seq, new) = match db.load_sync_super()? {
            Some(p) => {
                let (i, s) = fmt::decode_pair(&p)?;
                (i, s, None)
            }
            None => {
                let i = u64::from_le_bytes(random_array()?).max(1);
                (i, 0, Some(fmt::encode_pair(i, 0)))
            }
        };
        let mut s = SyncState {
            me: short_id(&cfg.signer.device()),
            cfg,
            index_id,
            seq,
            entries: BTreeMap::new(),
            by_seq: BTreeMap::new(),
            peers: HashMap::new(),
            incomplete: BTreeSet::new(),
            local_prefix: HashMap::new(),
            paths: PathMap::default(),
            full: true,
        };
        for p in db.load_sync_index()? {
            let (seq, blob) = fmt::decode_index_rec(&p)?;
            let entry = entry::open_trusted(keys, &blob)?;
            s.insert(Rec { entry, blob, seq });
        }
        for (k, p) in db.load_sync_peers()? {
            if let Ok(dev) = <[u8; 32]>::try_from(k.as_slice()) {
                s.peers.insert(dev, fmt::decode_pair(&p)?);
            }
        }
        Ok((s, new))
    }

    fn insert(&mut self, r: Rec) {
        if let Some(old) = self.entries.get(&r.entry.path) {
            self.by_seq.remove(&old.seq);
        }
        self.by_seq.insert(r.seq, r.entry.path.clone());
        self.entries.insert(r.entry.path.clone(), r);
    }

    /// The next local sequence number.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Stores `r` in memory and adds its record and the superblock to `b`.
    pub(crate) fn store(&mut self, keys: &VolumeKeys, r: Rec, b: &mut Batch) {
        let tag: Tag = keys.name_tag(PATH_TAG_INO, &r.entry.path);
        b.sync_index
            .push((tag, Some(fmt::encode_index_rec(r.seq, &r.blob))));
        b.sync_super = Some(fmt::encode_pair(self.index_id, self.seq));
        self.insert(r);
    }

    /// Signs `e` as this device under a new sequence and stores it.
    pub(crate) fn store_own(
        &mut self,
        keys: &VolumeKeys,
        e: Entry,
        seq: u64,
        b: &mut Batch,
    ) -> Result<(), FsError> {
        let blob = entry::sign(keys, &self.cfg, &e)?;
        self.store(
            keys,
            Rec {
                entry: e,
                blob,
                seq,
            },
            b,
        );
        Ok(())
    }

    /// Up to `max` (seq, blob) with seq > `after`.
    pub(crate) fn updates(&self, after: u64, max: usize) -> Vec<(u64, Vec<u8>)> {
        let from = after.saturating_add(1);
        let seqs = self.by_seq.range(from..).take(max);
        seqs.filter_map(|(s, p)| self.entries.get(p).map(|r| (*s, r.blob.clone())))
            .collect()
    }

    /// Saved progress in `peer`'s index.
    pub(crate) fn progress(&self, peer: &[u8; 32]) -> (u64, u64) {
        self.peers.get(peer).copied().unwrap_or((0, 0))
    }

    /// Records progress in `peer`'s index (in memory and in `b`).
    pub(crate) fn set_progress(&mut self, peer: [u8; 32], at: (u64, u64), b: &mut Batch) {
        self.peers.insert(peer, at);
        b.sync_peers
            .push((peer, Some(fmt::encode_pair(at.0, at.1))));
    }
}
