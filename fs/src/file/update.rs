//! Incremental update: re-chunk only the regions a write touches, then rebuild the tree.
//!
//! The old tree is flattened to its leaves (chunks and holes). Each dirty extent is widened to
//! the chunks that hold its first byte's predecessor and its last byte, so a region starts at an
//! old chunk boundary (FastCDC started there reproduces the old cuts for unchanged bytes) and
//! ends at one (a forced cut: later chunks are untouched). Widening left by one byte makes an
//! append re-chunk from the start of the old last chunk instead of leaving a runt behind.
//! Holes are never widened into: writing one byte into a sparse gigabyte materializes one chunk.
use super::chunker::Pieces;
use super::tree::{Entry, OldTree};
use super::{BlockKind, ContentEngine, FileContent, WriteBuffer};
use crate::FsError;
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

    /// Appends the old leaves between `a` and `b` (never cutting a data chunk), holes clipped,
    /// and their indices to `tags` (see `OldTree`).
    fn keep(&self, a: u64, b: u64, out: &mut Vec<Entry>, tags: &mut Vec<Option<usize>>) {
        if a >= b {
            return;
        }
        let mut i = self.at(a);
        while i < self.v.len() && self.offs[i] < b {
            let e = self.v[i];
            let (s, t) = (self.offs[i].max(a), self.offs[i + 1].min(b));
            debug_assert!(e.r.is_none() || (s, t) == (self.offs[i], self.offs[i + 1]));
            out.push(Entry { r: e.r, len: t - s });
            tags.push(e.r.map(|_| i));
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
        let mut tree = OldTree::default();
        self.collect_leaves((&root, height, None), &mut v, &mut tree)?;
        if new_size > c.size {
            v.push(Entry::hole(new_size - c.size));
        }
        let old = Leaves::new(v);
        let (mut leaves, mut tags) = (Vec::new(), Vec::new());
        let mut pos = 0;
        for (a, b) in regions(&old, c.size, new_size, dirty) {
            old.keep(pos, a, &mut leaves, &mut tags);
            let run = self.materialize(&old, (a, b), dirty)?;
            let new = self.store_chunks(&run)?;
            tags.resize(tags.len() + new.len(), None);
            leaves.extend(new);
            pos = b;
        }
        old.keep(pos, new_size, &mut leaves, &mut tags);
        if leaves.iter().map(|e| e.len).sum::<u64>() != new_size {
            return Err(FsError::Invalid("content update lost track of lengths"));
        }
        Ok(FileContent {
            size: new_size,
            root: self.build(leaves, tags, &tree)?,
        })
    }

    /// The new bytes of region `a..b` as pieces: buffered writes borrowed, and between them
    /// the old bytes they do not cover (fetched and decrypted; holes as zeros).
    fn materialize<'a>(
        &self,
        old: &Leaves,
        (a, b): (u64, u64),
        dirty: &'a WriteBuffer,
    ) -> Result<Pieces<'a>, FsError> {
        let mut pieces = Pieces::default();
        let mut pos = a;
        for (o, d) in dirty.extents_in(a, b) {
            let (from, to) = (o.max(a), (o + d.len() as u64).min(b));
            if pos < from {
                pieces.push(Cow::Owned(self.old_bytes(old, pos, from)?));
            }
            pieces.push(Cow::Borrowed(&d[(from - o) as usize..(to - o) as usize]));
            pos = to;
        }
        if pos < b {
            pieces.push(Cow::Owned(self.old_bytes(old, pos, b)?));
        }
        Ok(pieces)
    }

    /// The old content's bytes `a..b` (holes read as zeros).
    fn old_bytes(&self, old: &Leaves, a: u64, b: u64) -> Result<Vec<u8>, FsError> {
        let mut buf = vec![0u8; (b - a) as usize];
        let mut i = old.at(a);
        while i < old.v.len() && old.offs[i] < b {
            let (s, t) = (old.offs[i], old.offs[i + 1]);
            if let Some(r) = &old.v[i].r {
                let d = self.chunk(r, t - s)?;
                let (from, to) = (s.max(a), t.min(b));
                buf[(from - a) as usize..(to - a) as usize]
                    .copy_from_slice(&d[(from - s) as usize..(to - s) as usize]);
            }
            i += 1;
        }
        Ok(buf)
    }

    /// Cuts `run` into chunks and seals + stores them in parallel. The cutting (sequential by
    /// nature) runs on one pool thread and hands each chunk off as soon as it is found, so on two
    /// cores the other one is already encrypting; the cutter then joins in. Results come back
    /// by index so the order of completion does not matter.
    pub(crate) fn store_chunks(&self, run: &Pieces<'_>) -> Result<Vec<Entry>, FsError> {
        if run.len() <= INLINE_SEAL_MAX {
            return self.store_chunks_inline(run);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        rayon::scope(|s| {
            for (i, c) in run.chunks().enumerate() {
                let tx = tx.clone();
                let part = run.slice(c);
                s.spawn(move |_| {
                    let r = self.put_blob(BlockKind::Data, &part).map(|r| Entry {
                        r: Some(r),
                        len: part.len() as u64,
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
    fn store_chunks_inline(&self, run: &Pieces<'_>) -> Result<Vec<Entry>, FsError> {
        run.chunks()
            .map(|c| {
                let part = run.slice(c);
                Ok(Entry {
                    r: Some(self.put_blob(BlockKind::Data, &part)?),
                    len: part.len() as u64,
                })
            })
            .collect()
    }
}
