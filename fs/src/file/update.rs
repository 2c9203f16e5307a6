//! Incremental update: re-chunk only the regions a write touches, then rebuild the tree.
//!
//! The old tree is flattened to its leaves (chunks and holes). Each dirty extent is widened to
//! the chunks that hold its first byte's predecessor and its last byte, so a region starts at an
//! old chunk boundary (FastCDC started there reproduces the old cuts for unchanged bytes) and
//! ends at one (a forced cut: later chunks are untouched). Widening left by one byte makes an
//! append re-chunk from the start of the old last chunk instead of leaving a runt behind.
//! Holes are never widened into: writing one byte into a sparse gigabyte materializes one chunk.
//!
//! An update that changes nothing before the lowest pointer block of the tree's right edge (an
//! append, a write into the last chunks, a grow) flattens and rebuilds only that edge, so its
//! cost does not grow with the file (`update_right_edge`): a streaming write updates its file
//! every 16 MiB, and a whole-tree rebuild each time made writing a file quadratic in its size.
//! The edge runs through the last data: a hole after it (a file grown by `fallocate`, as fio
//! and download tools do, then filled) is set aside and grown back by the update.
use super::chunker::Pieces;
use super::tree::{OldTree, groups, merge_holes_tagged, root_over};
use super::window::{OldRoot, or_general};
use super::{BlockKind, ContentEngine, FileContent, WriteBuffer};
use crate::error::{Bug, FsError};
use crate::format::pointer::{Entry, MAX_DEPTH};
use std::borrow::Cow;
use std::sync::Arc;

/// Regions up to this size are sealed without the thread pool (see `store_chunks_inline`).
const INLINE_SEAL_MAX: usize = 256 << 10;

/// The pointer blocks along the old tree's right edge: `kids[h - 1]` are the children of the
/// edge block at height `h` (the last child of each is the edge block below).
struct RightEdge {
    kids: Vec<Arc<Vec<Entry>>>,
    /// Byte offset of the lowest edge block's first child.
    start: u64,
    /// Length of the hole that ends the file after its last data (a preallocated file being
    /// filled): left out of `kids`, and the update grows the rest back over it.
    trailing: u64,
}

/// The flattened old content: leaves plus their start offsets (`offs[i]..offs[i + 1]`).
pub(super) struct Leaves {
    v: Vec<Entry>,
    offs: Vec<u64>,
}

impl Leaves {
    /// Leaves `v`, the first starting at byte `base` of the file.
    pub(super) fn new(v: Vec<Entry>, base: u64) -> Self {
        let mut offs = Vec::with_capacity(v.len() + 1);
        let mut s = base;
        offs.push(base);
        for e in &v {
            s += e.len;
            offs.push(s);
        }
        Leaves { v, offs }
    }

    /// Index of the leaf holding byte `p` (`p` < total length).
    pub(super) fn at(&self, p: u64) -> usize {
        self.offs.partition_point(|&s| s <= p).saturating_sub(1)
    }

    /// Where leaf `i` starts and ends.
    pub(super) fn bounds(&self, i: usize) -> (u64, u64) {
        (self.offs[i], self.offs[i + 1])
    }

    pub(super) fn is_data(&self, i: usize) -> bool {
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
    pub(super) fn keep(&self, a: u64, b: u64, out: &mut Vec<Entry>, tags: &mut Vec<Option<usize>>) {
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
        if let Some(edge) = self.right_edge(c, new_size, dirty)? {
            return self.update_right_edge(c, new_size, dirty, &edge);
        }
        if new_size == c.size
            && let Some(updated) = self.update_middle(c, dirty)?
        {
            return Ok(updated);
        }
        #[cfg(test)]
        self.full_updates
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (root, height) = Self::root_entry(c)?;
        let mut v = Vec::new();
        let mut tree = OldTree::default();
        self.collect_leaves((&root, height, None), &mut v, &mut tree)?;
        if new_size > c.size {
            v.push(Entry::hole(new_size - c.size));
        }
        let (leaves, tags) =
            self.rechunk(&Leaves::new(v, 0), (c.size, new_size), new_size, dirty)?;
        Ok(FileContent {
            size: new_size,
            root: self.build(leaves, tags, &tree)?,
        })
    }

    /// The new leaves from `old.offs[0]` to `end`: old leaves kept, dirty regions re-chunked
    /// and stored. Tags as in [`Leaves::keep`].
    fn rechunk(
        &self,
        old: &Leaves,
        (old_size, new_size): (u64, u64),
        end: u64,
        dirty: &WriteBuffer,
    ) -> Result<(Vec<Entry>, Vec<Option<usize>>), FsError> {
        let (mut leaves, mut tags) = (Vec::new(), Vec::new());
        let mut pos = old.offs[0];
        for (a, b) in regions(old, old_size, new_size, dirty) {
            old.keep(pos, a, &mut leaves, &mut tags);
            let run = self.materialize(old, (a, b), dirty)?;
            let new = self.store_chunks(&run)?;
            tags.resize(tags.len() + new.len(), None);
            leaves.extend(new);
            pos = b;
        }
        old.keep(pos, end, &mut leaves, &mut tags);
        let (got, want) = (leaves.iter().map(|e| e.len).sum::<u64>(), end - old.offs[0]);
        if got != want {
            let op = "content update";
            return Err(FsError::bug(Bug::LengthsLost { op, got, want }));
        }
        Ok((leaves, tags))
    }

    /// An overwrite within a file whose size does not change, through `update_window`: the
    /// leaves around the writes are re-chunked and the tree is updated around them. `None`
    /// when that path does not apply (a hole on the way).
    fn update_middle(
        &self,
        c: &FileContent,
        dirty: &WriteBuffer,
    ) -> Result<Option<FileContent>, FsError> {
        let (root, height) = Self::root_entry(c)?;
        if height == 0 || self.opts.whole_tree_updates {
            return Ok(None);
        }
        let old = OldRoot { root, height };
        let a = dirty.extents().map(|(a, _)| a).min();
        let b = dirty.extents().map(|(a, d)| a + d.len() as u64).max();
        let (Some(a), Some(b)) = (a, b.map(|b| b.min(c.size))) else {
            return Ok(None);
        };
        if a >= b {
            return Ok(None);
        }
        // The widening reads the leaf before the first byte and the one holding the last.
        let Some(around) = or_general(self.entries_at(&old, 0, (a.saturating_sub(1), b)))? else {
            return Ok(None);
        };
        let (Some(first), Some(last)) = (around.first(), around.last()) else {
            return Ok(None);
        };
        let (x, y) = (first.start, last.start + last.e.len);
        let sub = Leaves::new(around.iter().map(|l| l.e).collect(), x);
        let (leaves, _) = self.rechunk(&sub, (c.size, c.size), y, dirty)?;
        or_general(self.update_window(&old, (x, y), leaves))
    }

    /// The old tree's right edge, if this update changes nothing before its lowest pointer
    /// block (an append, or a write into the last few chunks): then only that edge is
    /// rebuilt, at a cost independent of the file's size. `None` sends the update down the
    /// general path. The edge descends through the last data child at each level; the holes
    /// after it make up the file's trailing hole (`RightEdge::trailing`), which the update
    /// treats as a grow of the file without it. Holes before that child take the general
    /// path (rare: sparse files), which keeps the argument in `update_right_edge` simple.
    fn right_edge(
        &self,
        c: &FileContent,
        new_size: u64,
        dirty: &WriteBuffer,
    ) -> Result<Option<RightEdge>, FsError> {
        if new_size < c.size || c.size == 0 || self.opts.whole_tree_updates {
            return Ok(None);
        }
        let (mut e, height) = Self::root_entry(c)?;
        if height == 0 {
            return Ok(None);
        }
        let mut kids = Vec::with_capacity(usize::from(height));
        let (mut start, mut trailing) = (0u64, 0u64);
        for h in (1..=height).rev() {
            let Some(r) = e.r else { return Ok(None) };
            let mut ch = self.pointer(&r, h, e.len)?;
            // The edge runs through the last data child; holes after it are the file's
            // trailing hole. Holes before it take the general path.
            let Some(j) = ch.iter().rposition(|k| k.r.is_some()) else {
                return Ok(None);
            };
            if ch[..j].iter().any(|k| k.r.is_none()) {
                return Ok(None);
            }
            if j + 1 < ch.len() {
                trailing += ch[j + 1..].iter().map(|k| k.len).sum::<u64>();
                ch = Arc::new(ch[..=j].to_vec());
            }
            let last = ch[j];
            if h > 1 {
                start += ch[..j].iter().map(|k| k.len).sum::<u64>();
            }
            kids.push(ch);
            e = last;
        }
        kids.reverse();
        // A region is widened left to the chunk holding its first byte's predecessor, so
        // everything stays within the lowest edge block when each write starts past its
        // first byte.
        let first = dirty.extents().map(|(a, _)| a).min().unwrap_or(new_size);
        Ok((first > start).then_some(RightEdge {
            kids,
            start,
            trailing,
        }))
    }

    /// [`ContentEngine::update`] through the right edge (see [`Self::right_edge`]). The tree
    /// is the one `build` makes from all the leaves: `build` groups each level left to right
    /// and a group starts afresh after a cut, so the groups left of an edge block are the old
    /// ones; the edge block's children start right after a cut, so grouping them (with the new
    /// entries from below) from their first one gives the groups `build` would. Every group
    /// that holds an edge block's children is new (an edge block's children hold no cut of
    /// their own, so the kept ones always join the first new entry), so nothing here is taken
    /// over. The edge's pointer blocks hold no holes, so the first entry of every rebuilt
    /// level is data (a kept child, or a block over one) and hole merging cannot reach left
    /// of the edge; holes the update adds (a grow, a write past the end) merge as in `build`.
    fn update_right_edge(
        &self,
        c: &FileContent,
        new_size: u64,
        dirty: &WriteBuffer,
        edge: &RightEdge,
    ) -> Result<FileContent, FsError> {
        // Without its trailing hole the old file ends at its last data; the update grows it
        // back to `new_size` (the hole then merges as in `build`).
        let old_size = c.size.checked_sub(edge.trailing).ok_or_else(|| {
            let trailing = edge.trailing;
            FsError::bug(Bug::TreeLengths {
                size: c.size,
                trailing,
            })
        })?;
        let mut v = edge.kids[0].to_vec();
        if new_size > old_size {
            v.push(Entry::hole(new_size - old_size));
        }
        let (leaves, tags) = self.rechunk(
            &Leaves::new(v, edge.start),
            (old_size, new_size),
            new_size,
            dirty,
        )?;
        let (mut level, _) = merge_holes_tagged(leaves, tags);
        let mut height = 0u8;
        loop {
            let h = usize::from(height);
            // The level is whole (nothing of it left of the edge) once no block above has a
            // child before the edge.
            let whole = edge.kids.iter().skip(h + 1).all(|k| k.len() == 1);
            if whole && level.len() <= 1 {
                break;
            }
            height += 1;
            if usize::from(height) > usize::from(MAX_DEPTH) {
                return Err(FsError::bug(Bug::TreeTooDeep { max: MAX_DEPTH }));
            }
            let next = self.seal_groups(&level, groups(&level, self.opts.max_fanout), height)?;
            // Below the old root, the edge block's siblings before it join the new entries.
            level = match edge
                .kids
                .get(usize::from(height))
                .and_then(|k| k.split_last())
            {
                Some((_, before)) => {
                    let mut v = before.to_vec();
                    v.extend(next);
                    v
                }
                None => next,
            };
            let n = level.len();
            (level, _) = merge_holes_tagged(level, vec![None; n]);
        }
        Ok(FileContent {
            size: new_size,
            root: root_over(&level, height),
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
    pub(super) fn old_bytes(&self, old: &Leaves, a: u64, b: u64) -> Result<Vec<u8>, FsError> {
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
