//! Checking every indexed block, and rebuilding the index from the data files.
use super::{BlockStore, State};
use crate::error::io_error;
use crate::format::{
    Entry, FILE_HEADER_LEN, RECORD_HEADER_LEN, data_file_name, decode_record_header,
};
use crate::{BlockId, Class, StoreError};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Result of [`crate::BlockStore::fsck`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Blocks read and verified.
    pub blocks_checked: u64,
    /// Blocks whose bytes do not match their id.
    pub corrupt: Vec<BlockId>,
    /// Index entries pointing outside the data files.
    pub dangling: Vec<BlockId>,
    /// Index entries rebuilt from data files (repair mode).
    pub repaired: u64,
    /// The blocks those entries are for, indexed as unpinned Own.
    pub rebuilt: Vec<BlockId>,
}

/// A record found by scanning a data file whose bytes match its id.
struct Found {
    id: BlockId,
    offset: u64,
    len: u32,
}

/// Valid records of one data file and where the valid part ends.
struct Scan {
    found: Vec<Found>,
    end: u64,
}

/// Reads a data file record by record. Stops at the first damaged header (a torn tail);
/// skips records whose bytes do not match their id.
fn scan_file(path: &Path, file: &File) -> Result<Scan, StoreError> {
    let mut r = BufReader::with_capacity(1 << 20, file);
    r.seek(SeekFrom::Start(FILE_HEADER_LEN))
        .map_err(|e| io_error(path, e))?;
    let mut scan = Scan {
        found: Vec::new(),
        end: FILE_HEADER_LEN,
    };
    let mut header = [0u8; RECORD_HEADER_LEN as usize];
    let mut data = Vec::new();
    loop {
        if r.read_exact(&mut header).is_err() {
            break;
        }
        let Ok(h) = decode_record_header(&header) else {
            break;
        };
        data.resize(h.len as usize, 0);
        if r.read_exact(&mut data).is_err() {
            break;
        }
        if BlockId::of(&data) == h.id {
            scan.found.push(Found {
                id: h.id,
                offset: scan.end,
                len: h.len,
            });
        } else {
            tracing::error!(block = %h.id, file = %path.display(), offset = scan.end, "corrupt record");
        }
        scan.end += RECORD_HEADER_LEN + u64::from(h.len);
    }
    Ok(scan)
}

impl BlockStore {
    /// Reads and verifies every block; with `repair`, rebuilds damaged index entries.
    ///
    /// Repair drops corrupt and dangling entries, then scans every data file (orphans
    /// included) and indexes each intact record whose id is missing, as an unpinned Own
    /// block. Pins of lost entries are not recovered, and blocks deleted by GC but not yet
    /// compacted come back as Own until the next GC.
    pub fn fsck(&self, repair: bool) -> Result<FsckReport, StoreError> {
        let mut st = self.state.lock();
        if let Some(w) = st.writer.as_mut() {
            w.flush(&self.mark)?;
        }
        let mut report = FsckReport::default();
        self.check_entries(&mut report)?;
        if repair {
            self.repair(&mut st, &mut report)?;
        }
        tracing::info!(
            checked = report.blocks_checked,
            corrupt = report.corrupt.len(),
            dangling = report.dangling.len(),
            repaired = report.repaired,
            "fsck done"
        );
        Ok(report)
    }

    fn check_entries(&self, r: &mut FsckReport) -> Result<(), StoreError> {
        let mut entries: Vec<(BlockId, Entry)> =
            self.map.read().iter().map(|(id, e)| (*id, *e)).collect();
        entries.sort_by_key(|(_, e)| (e.file, e.offset));
        let handles = self.handles.read().clone();
        let mut sizes = HashMap::new();
        for (id, e) in entries {
            let Some(file) = handles.get(&e.file) else {
                r.dangling.push(id);
                continue;
            };
            let size = *sizes
                .entry(e.file)
                .or_insert_with(|| file.metadata().map(|m| m.len()).unwrap_or(0));
            if e.offset < FILE_HEADER_LEN || e.data_offset() + u64::from(e.len) > size {
                tracing::error!(block = %id, file = e.file, offset = e.offset, "dangling index entry");
                r.dangling.push(id);
                continue;
            }
            r.blocks_checked += 1;
            match self.read_verified(&id, &e, file) {
                Ok(_) => {}
                Err(StoreError::Corrupt { .. }) => r.corrupt.push(id),
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    fn repair(&self, st: &mut State, r: &mut FsckReport) -> Result<(), StoreError> {
        let bad: Vec<BlockId> = r.corrupt.iter().chain(&r.dangling).copied().collect();
        self.remove_entries(st, &bad);
        let files: Vec<u32> = st.file_lens.keys().chain(&st.orphans).copied().collect();
        for n in files {
            let Some(file) = self.handles.read().get(&n).cloned() else {
                continue;
            };
            let scan = scan_file(&self.data_dir.join(data_file_name(n)), &file)?;
            for f in scan.found {
                if self.map.read().contains_key(&f.id) {
                    continue;
                }
                let e = Entry {
                    file: n,
                    offset: f.offset,
                    len: f.len,
                    class: Class::Own,
                    pinned: false,
                    hits: 0,
                };
                self.map.write().insert(f.id, e);
                st.dirty.insert(f.id);
                st.removed.remove(&f.id);
                r.repaired += 1;
                r.rebuilt.push(f.id);
            }
            if st.orphans.contains(&n) {
                st.adopt.insert(n, scan.end);
            }
        }
        self.commit_locked(st)
    }

    /// Makes the unpinned Own blocks among `ids` Cached (evicted first under the cache
    /// quota) and commits; returns how many changed. For blocks a rebuilt index indexed as
    /// Own that the layer above finds unreachable: the records do not carry the class.
    pub fn make_cached(&self, ids: &[BlockId]) -> Result<usize, StoreError> {
        let mut st = self.state.lock();
        let mut n = 0;
        for id in ids {
            let was = self.map.read().get(id).copied();
            let Some(e) = was.filter(|e| e.class == Class::Own && !e.pinned) else {
                continue;
            };
            self.update(&mut st, id, |e| e.class = Class::Cached);
            self.cache.lock().insert(*id, u64::from(e.len), e.hits);
            n += 1;
        }
        self.evict(&mut st);
        self.commit_locked(&mut st)?;
        Ok(n)
    }
}
