//! Volume maintenance: statfs, stats, gc, fsck.
use crate::FsError;
use crate::attr::{FileKind, StatFs};
use crate::core::Core;
use crate::format::Inode;
use crate::ns::dir::NAME_MAX;
use blockstore::BlockId;
use std::collections::{HashMap, HashSet};

/// Volume-level counts for `fossa status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VolumeStats {
    /// Inodes in use.
    pub inodes: u64,
    /// Regular files.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Sum of file sizes.
    pub logical_bytes: u64,
    /// Snapshots retained.
    pub snapshots: u64,
}

/// Result of [`crate::Fs::fsck`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Inodes checked.
    pub inodes: u64,
    /// Blocks reachable from the live tree and snapshots, each read and verified.
    pub blocks: u64,
    /// Problems found, one line each (block ids, inode numbers, and the path of a damaged
    /// file: fsck runs on an unlocked volume).
    pub problems: Vec<String>,
    /// What the block store's own check found and repaired.
    pub store: blockstore::FsckReport,
    /// Blocks of a rebuilt block index that nothing reaches, made Cached (repair mode).
    pub reclassified: usize,
}

/// Result of [`crate::Fs::gc`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blocks reachable (kept).
    pub live_blocks: u64,
    /// What the store removed and reclaimed.
    pub store: blockstore::GcStats,
}

impl Core {
    /// Free space of the filesystem holding the block store.
    pub(crate) fn statfs(&self) -> Result<StatFs, FsError> {
        let v = rustix::fs::statvfs(self.store.dir()).map_err(std::io::Error::from)?;
        let frsize = if v.f_frsize > 0 {
            v.f_frsize
        } else {
            v.f_bsize
        };
        // An upper bound, cheap: `df` calls this often, a full scan would be too slow.
        let used = self.st.lock().inodes_issued();
        Ok(StatFs {
            blocks: v.f_blocks,
            bfree: v.f_bfree,
            bavail: v.f_bavail,
            files: used + v.f_ffree.max(1 << 20),
            ffree: v.f_ffree.max(1 << 20),
            bsize: u32::try_from(frsize).unwrap_or(4096),
            namelen: NAME_MAX as u32,
        })
    }

    /// Every inode, as the database holds it after a flush, plus open unlinked ones.
    pub(crate) fn all_inodes(&self) -> Result<(Vec<Inode>, Vec<String>), FsError> {
        self.flush_all(true)?;
        self.inodes_now()
    }

    /// Every inode the database holds, plus those only in memory (new, or open and unlinked),
    /// without a flush: changes not yet flushed may be missing.
    fn inodes_now(&self) -> Result<(Vec<Inode>, Vec<String>), FsError> {
        let mut problems = Vec::new();
        let mut by_ino: HashMap<u64, Inode> = HashMap::new();
        for r in self.db.all_inodes()? {
            match r {
                Ok(i) => {
                    by_ino.insert(i.ino, i);
                }
                Err((ino, e)) => problems.push(format!("inode {ino}: {e}")),
            }
        }
        for i in self.st.lock().cached_inodes() {
            by_ino.entry(i.ino).or_insert_with(|| i.clone());
        }
        Ok((by_ino.into_values().collect(), problems))
    }

    /// Counts of inodes, files, dirs, bytes and snapshots.
    /// No flush: `fossa status` polls this while a sync writes, and a durable flush per call
    /// held the store's lock through an fsync of everything fetched since the last one.
    pub(crate) fn stats(&self) -> Result<VolumeStats, FsError> {
        let (inodes, _) = self.inodes_now()?;
        let mut s = VolumeStats {
            inodes: inodes.len() as u64,
            ..VolumeStats::default()
        };
        for i in &inodes {
            match i.kind {
                FileKind::File => {
                    s.files += 1;
                    s.logical_bytes += i.content.size;
                }
                FileKind::Dir => s.dirs += 1,
                _ => {}
            }
        }
        s.snapshots = self.db.snapshots()?.len() as u64;
        Ok(s)
    }

    /// Blocks reachable from the live tree and every snapshot.
    pub(crate) fn live_blocks(
        &self,
        problems: &mut Vec<String>,
    ) -> Result<HashSet<BlockId>, FsError> {
        self.flush_all(true)?;
        self.reachable_now(problems)
    }

    /// Blocks reachable from the inodes as they are now (database and memory) and from every
    /// snapshot, without a flush first.
    fn reachable_now(&self, problems: &mut Vec<String>) -> Result<HashSet<BlockId>, FsError> {
        let (inodes, p) = self.inodes_now()?;
        problems.extend(p);
        let mut live = HashSet::new();
        for i in &inodes {
            self.engine.visit_blocks(&i.content, &mut |id| {
                live.insert(id);
            })?;
        }
        self.snapshot_blocks(&mut live, problems)?;
        Ok(live)
    }

    /// Deletes every block neither the tree nor a snapshot reaches.
    ///
    /// On a full disk the flush before it may fail (a write waiting for room): gc goes on
    /// then, since it is what makes room, keeping every block put since the store's last
    /// commit as well as everything the inodes in memory reach.
    pub(crate) fn gc(&self) -> Result<GcReport, FsError> {
        let mut problems = Vec::new();
        let mut live = match self.flush_all(true) {
            Err(e) if e.is_no_space() => {
                tracing::warn!(error = %e, "gc on a full disk: pending writes not flushed");
                self.store.pending().into_iter().collect()
            }
            r => {
                r?;
                HashSet::new()
            }
        };
        live.extend(self.reachable_now(&mut problems)?);
        if !problems.is_empty() {
            // An unreadable record may hide live blocks: deleting now could lose data.
            tracing::error!(?problems, "gc skipped: metadata problems");
            return Err(FsError::BadRecord("gc refused: run fsck"));
        }
        let store = self.store.gc(&live)?;
        Ok(GcReport {
            live_blocks: live.len() as u64,
            store,
        })
    }

    /// Store check, then every reachable block read and decrypted, then link counts.
    pub(crate) fn fsck(&self, repair: bool) -> Result<FsckReport, FsError> {
        let store = self.store.fsck(repair)?;
        let mut r = FsckReport {
            store,
            ..FsckReport::default()
        };
        if repair && !r.store.rebuilt.is_empty() {
            r.reclassified = self.classify_rebuilt(&r.store.rebuilt, &mut r.problems)?;
        }
        let (inodes, p) = self.all_inodes()?;
        r.problems.extend(p);
        r.inodes = inodes.len() as u64;
        let names = self.paths_by_ino();
        for i in &inodes {
            self.check_content(i, names.get(&i.ino).map(Vec::as_slice), &mut r);
        }
        self.check_links(&inodes, &mut r)?;
        self.check_snapshots(&mut r)?;
        Ok(r)
    }

    /// Reads a file's whole content; a failure is reported with the file's `path` if known.
    pub(crate) fn check_content(&self, i: &Inode, path: Option<&[u8]>, r: &mut FsckReport) {
        if i.kind != FileKind::File {
            return;
        }
        let _ = self.engine.visit_blocks(&i.content, &mut |_| r.blocks += 1);
        // Reading the whole file decrypts and verifies every chunk and pointer block.
        let mut off = 0;
        while off < i.content.size {
            let n = (i.content.size - off).min(8 << 20) as usize;
            if let Err(e) = self.engine.read(&i.content, off, n) {
                let file =
                    path.map_or_else(String::new, |p| format!("{} ", crate::ns::names::shown(p)));
                r.problems
                    .push(format!("{file}(inode {}): content at {off}: {e}", i.ino));
                return;
            }
            off += n as u64;
        }
    }

    fn check_links(&self, inodes: &[Inode], r: &mut FsckReport) -> Result<(), FsError> {
        let mut refs: HashMap<u64, u32> = HashMap::new();
        let mut st = self.st.lock();
        for i in inodes.iter().filter(|i| i.kind == FileKind::Dir) {
            for d in st.dir(i.ino)?.values() {
                let n = refs.entry(d.ino).or_default();
                *n += if d.kind == FileKind::Dir { 2 } else { 1 };
                if d.kind == FileKind::Dir {
                    *refs.entry(i.ino).or_default() += 1;
                }
            }
        }
        *refs.entry(crate::ROOT_INO).or_default() += 2;
        for i in inodes.iter().filter(|i| i.nlink > 0) {
            let want = refs.remove(&i.ino).unwrap_or(0);
            if want != i.nlink {
                r.problems.push(format!(
                    "inode {}: nlink {} but {} links",
                    i.ino, i.nlink, want
                ));
            }
        }
        for ino in refs.keys() {
            r.problems
                .push(format!("directory entry points to missing inode {ino}"));
        }
        Ok(())
    }

    /// Reads every directory block and file of every snapshot.
    fn check_snapshots(&self, r: &mut FsckReport) -> Result<(), FsError> {
        let mut files = Vec::new();
        let mut blocks = 0;
        for (_, s) in self.db.snapshots()? {
            let mut on_file = |i: &Inode| files.push(i.clone());
            self.walk_snap(&s.root, &mut |_| blocks += 1, &mut on_file, &mut r.problems);
        }
        r.blocks += blocks;
        for i in &files {
            self.check_content(i, None, r);
        }
        Ok(())
    }
}
