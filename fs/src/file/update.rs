//! Incremental update: re-chunk only the regions a write touches, then rebuild the tree.
//!
//! The old tree is flattened to its leaves (chunks and holes). Each dirty extent is widened to
//! the chunks that hold its first byte's predecessor and its last byte, so a region starts at an
//! old chunk boundary (FastCDC started there reproduces the old cuts for unchanged bytes) and
//! ends at one (a forced cut: later chunks are untouched). Widening left by one byte makes an
//! append re-chunk from the start of the old last chunk instead of leaving a runt behind.
//! Holes are never widened into: writing one byte into a sparse gigabyte materializes one chunk.
use super::tree::Entry;
use super::{AVG_CHUNK, MIN_CHUNK};
use super::{BlockKind, ContentEngine, FileContent, MAX_CHUNK, WriteBuffer};
use crate::FsError;
use fastcdc::v2020::FastCDC;
use std::borrow::Cow;

/// Regions up to this size are sealed without the thread pool (see `store_chunks_inline`).
const INLINE_SEAL_MAX: usize = 256 << 10;

/// The flattened old content: leaves plus their start offsets (`offs[i]..offs[i + 1]`).
struct Leaves {
    v: Vec<Entry>,
    offs: Vec<u64>,
}

impl Leaves {
    fn new(v: Vec<Entry>) -> Self {
        let mut offs = Vec::with_capacity(v.len() + 1);
        let mut s = 0u64;
        offs.push(0);
        for e in &v {
            s += e.len;
            offs.push(s);
        }
        Leaves { v, offs }
    }

    /// Index of the leaf holding byte `p` (`p` < total length).
    fn at(&self, p: u64) -> usize {
        self.offs.partition_point(|&s| s <= p).saturating_sub(1)
    }

    fn is_data(&self, i: usize) -> bool {
        self.v.get(i).is_some_and(|e| e.r.is_some())
    }

    /// `a..b` widened to whole data chunks at both ends (see module doc).
    fn widen(&self, a: u64, b: u64, size: u64) -> (u64, u64) {
        let i = self.at(a.saturating_sub(1));
        let x = if self.is_data(i) { self.offs[i] } else { a };
        let j = self.at(b - 1);
        let y = if self.is_data(j) {
            self.offs[j + 1].min(size)
        } else {
            b
        };
        (x.min(a), y.max(b))
    }

    /// Appends the old leaves between `a` and `b` (never cutting a data chunk), holes clipped.
    fn keep(&self, a: u64, b: u64, out: &mut Vec<Entry>) {
        if a >= b {
            return;
        }
        let mut i = self.at(a);
        while i < self.v.len() && self.offs[i] < b {
            let e = self.v[i];
            let (s, t) = (self.offs[i].max(a), self.offs[i + 1].min(b));
            debug_assert!(e.r.is_none() || (s, t) == (self.offs[i], self.offs[i + 1]));
            out.push(Entry { r: e.r, len: t - s });
            i += 1;
        }
    }
}

/// Sorted, merged byte regions to re-chunk.
fn regions(old: &Leaves, old_size: u64, new_size: u64, dirty: &WriteBuffer) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = dirty
        .extents()
        .filter_map(|(a, d)| {
            let b = (a + d.len() as u64).min(new_size);
            (a < b).then(|| old.widen(a, b, new_size))
        })
        .collect();
    if new_size < old_size && new_size > 0 {
        // A chunk straddling the new end is cut: its head must be re-stored.
        let i = old.at(new_size - 1);
        if old.is_data(i) && old.offs[i + 1] > new_size {
            v.push((old.offs[i], new_size));
        }
    }
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

impl ContentEngine {
    /// See [`ContentEngine::update`].
    pub(crate) fn update_tree(
        &self,
        c: &FileContent,
        new_size: u64,
        dirty: &WriteBuffer,
    ) -> Result<FileContent, FsError> {
        let (root, height) = Self::root_entry(c)?;
        let mut v = Vec::new();
        self.collect_leaves(&root, height, &mut v)?;
        if new_size > c.size {
            v.push(Entry::hole(new_size - c.size));
        }
        let old = Leaves::new(v);
        let mut leaves = Vec::new();
        let mut pos = 0;
        for (a, b) in regions(&old, c.size, new_size, dirty) {
            old.keep(pos, a, &mut leaves);
            let buf = self.materialize(&old, a, b, dirty)?;
            leaves.extend(self.store_chunks(&buf)?);
            pos = b;
        }
        old.keep(pos, new_size, &mut leaves);
        if leaves.iter().map(|e| e.len).sum::<u64>() != new_size {
            return Err(FsError::Invalid("content update lost track of lengths"));
        }
        Ok(FileContent {
            size: new_size,
            root: self.build(leaves)?,
        })
    }

    /// The new bytes of region `a..b`: old chunks not wholly overwritten, then the writes.
    /// A region inside one write (a big sequential write) is borrowed, not copied.
    fn materialize<'a>(
        &self,
        old: &Leaves,
        a: u64,
        b: u64,
        dirty: &'a WriteBuffer,
    ) -> Result<Cow<'a, [u8]>, FsError> {
        if let Some((o, d)) = dirty.covering(a, b) {
            return Ok(Cow::Borrowed(&d[(a - o) as usize..(b - o) as usize]));
        }
        let mut buf = vec![0u8; (b - a) as usize];
        let mut i = old.at(a);
        while i < old.v.len() && old.offs[i] < b {
            let (s, t) = (old.offs[i], old.offs[i + 1]);
            if let Some(r) = &old.v[i].r
                // Old bytes wholly overwritten need not be fetched and decrypted.
                && dirty.covering(s.max(a), t.min(b)).is_none()
            {
                let d = self.chunk(r, t - s)?;
                let (from, to) = (s.max(a), t.min(b));
                buf[(from - a) as usize..(to - a) as usize]
                    .copy_from_slice(&d[(from - s) as usize..(to - s) as usize]);
            }
            i += 1;
        }
        dirty.overlay(a, &mut buf);
        Ok(Cow::Owned(buf))
    }

    /// Cuts `buf` into chunks and seals + stores them in parallel. The cutting (sequential by
    /// nature) runs on one pool thread and hands each chunk off as soon as it is found, so on two
    /// cores the other one is already encrypting; the cutter then joins in. Results come back
    /// by index so the order of completion does not matter.
    pub(crate) fn store_chunks(&self, buf: &[u8]) -> Result<Vec<Entry>, FsError> {
        if buf.len() <= INLINE_SEAL_MAX {
            return self.store_chunks_inline(buf);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        rayon::scope(|s| {
            let cdc = FastCDC::new(buf, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK);
            for (i, c) in cdc.enumerate() {
                let tx = tx.clone();
                s.spawn(move |_| {
                    let part = &buf[c.offset..c.offset + c.length];
                    let r = self.put_blob(BlockKind::Data, part).map(|r| Entry {
                        r: Some(r),
                        len: c.length as u64,
                    });
                    // The receiver outlives the scope, so this cannot fail.
                    let _ = tx.send((i, r));
                });
            }
        });
        drop(tx);
        let mut got: Vec<(usize, Result<Entry, FsError>)> = rx.into_iter().collect();
        got.sort_unstable_by_key(|(i, _)| *i);
        got.into_iter().map(|(_, r)| r).collect()
    }

    /// Small regions (most files of an untar) are sealed on the calling thread: waking the
    /// pool for a chunk or two costs more than the sealing (its idle workers spin in
    /// `sched_yield`).
    fn store_chunks_inline(&self, buf: &[u8]) -> Result<Vec<Entry>, FsError> {
        FastCDC::new(buf, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
            .map(|c| {
                let part = &buf[c.offset..c.offset + c.length];
                Ok(Entry {
                    r: Some(self.put_blob(BlockKind::Data, part)?),
                    len: c.length as u64,
                })
            })
            .collect()
    }
}
