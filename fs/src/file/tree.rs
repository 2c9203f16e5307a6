//! The Merkle tree over a file's chunks: walking and building (the pointer-block codec is
//! `format::pointer`).
//!
//! A pointer block lists children as `(ref, length)`; lengths, not offsets, so that inserting
//! bytes changes only the blocks on the path to the change. A hole is an entry with an all-zero
//! ref: it reads as zeros and is never stored. Pointer blocks are grouped content-defined (a
//! group ends after a child whose id matches a mask), so an insertion that changes the number of
//! chunks shifts no later group and later pointer blocks dedupe. Layout: docs/formats/fs-content.md.
use super::cache::{Cached, ChunkData};
use super::{BlockKind, ContentEngine, FileContent, Missing, TreeRoot};
use crate::FsError;
use crate::crypto::BlockRef;
use crate::format::pointer::{Entry, MAX_DEPTH, decode_pointer, encode_pointer};
use blockstore::BlockId;
use rayon::prelude::*;
use std::ops::Range;
use std::sync::Arc;

/// Merges adjacent holes (so all-hole groups collapse) and drops empty entries.
/// Each entry's tag goes along (a hole has none; see [`OldTree`]).
pub(crate) fn merge_holes_tagged(
    v: Vec<Entry>,
    tags: Vec<Option<usize>>,
) -> (Vec<Entry>, Vec<Option<usize>>) {
    let mut out: Vec<Entry> = Vec::with_capacity(v.len());
    let mut out_tags = Vec::with_capacity(v.len());
    for (e, t) in v.into_iter().zip(tags).filter(|(e, _)| e.len > 0) {
        match out.last_mut() {
            Some(last) if last.r.is_none() && e.r.is_none() => last.len += e.len,
            _ => {
                out.push(e);
                out_tags.push(t.filter(|_| e.r.is_some()));
            }
        }
    }
    (out, out_tags)
}

/// The pointer blocks of a file's old tree, kept while its update is built so that the new
/// tree can take over those whose children did not change (see [`ContentEngine::build`]).
#[derive(Default)]
pub(crate) struct OldTree {
    /// `nodes[h - 1]`: the pointer blocks at height `h`, in file order.
    nodes: Vec<Vec<OldNode>>,
    /// The index in `nodes[0]` of each leaf's parent (`None` for holes), leaf by leaf.
    leaf_parent: Vec<Option<usize>>,
}

/// A pointer block of the old tree.
struct OldNode {
    entry: Entry,
    /// Index of its parent among the pointer blocks one level up.
    parent: Option<usize>,
    /// Index of its first child one level down (among the leaves for height 1), and how
    /// many children it has.
    first: usize,
    count: usize,
}

impl OldTree {
    /// Records pointer block `e` at `height`; returns its index at that height.
    fn push(
        &mut self,
        height: u8,
        entry: Entry,
        parent: Option<usize>,
        leaves: usize,
        count: usize,
    ) -> usize {
        let h = usize::from(height);
        if self.nodes.len() < h {
            self.nodes.resize_with(h, Vec::new);
        }
        // Children are recorded after their parent: the first lands at the current end.
        let first = match h {
            1 => leaves,
            _ => self.nodes[h - 2].len(),
        };
        let level = &mut self.nodes[h - 1];
        level.push(OldNode {
            entry,
            parent,
            first,
            count,
        });
        level.len() - 1
    }

    /// The parent index of entry `i` at `height - 1`.
    fn parent(&self, height: u8, i: usize) -> Option<usize> {
        match height {
            1 => self.leaf_parent.get(i).copied().flatten(),
            _ => self.nodes.get(usize::from(height) - 2)?.get(i)?.parent,
        }
    }

    /// The old pointer block at `height` (its index and entry) whose children are exactly the
    /// entries tagged `tags`, if there is one.
    fn reusable(&self, height: u8, tags: &[Option<usize>]) -> Option<(usize, Entry)> {
        let first = (*tags.first()?)?;
        let p = self.parent(height, first)?;
        let node = self.nodes.get(usize::from(height) - 1)?.get(p)?;
        let same = node.first == first
            && node.count == tags.len()
            && tags
                .iter()
                .enumerate()
                .all(|(k, t)| *t == Some(first + k) && self.parent(height, first + k) == Some(p));
        same.then_some((p, node.entry))
    }
}

/// Content-defined grouping: at least 2 entries (so every level shrinks), at most `max`, and a
/// cut after a child whose id's low bits are all ones (about `max / 2` per group on average).
pub(crate) fn groups(level: &[Entry], max: usize) -> Vec<Range<usize>> {
    let mask = natural_mask(max);
    let mut out = Vec::new();
    let mut start = 0;
    for (i, e) in level.iter().enumerate() {
        if cuts_after(i + 1 - start, e, max, mask) {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < level.len() {
        out.push(start..level.len());
    }
    out
}

/// The root of a finished tree: the one entry left at `height` (none for an all-hole file).
pub(crate) fn root_over(level: &[Entry], height: u8) -> Option<TreeRoot> {
    level.first().and_then(|e| {
        e.r.map(|block| TreeRoot {
            block,
            depth: height,
        })
    })
}

/// The id bits that mark a natural cut for groups of at most `max`.
pub(crate) fn natural_mask(max: usize) -> u32 {
    (max / 2).next_power_of_two() as u32 - 1
}

/// Whether a group of `n` entries ending with `e` ends there (see [`groups`]).
pub(crate) fn cuts_after(n: usize, e: &Entry, max: usize, mask: u32) -> bool {
    let natural = e.r.is_some_and(|r| {
        u32::from_le_bytes([r.id.0[0], r.id.0[1], r.id.0[2], r.id.0[3]]) & mask == mask
    });
    n >= max || (n >= 2 && natural)
}

/// Appends the part of chunk `d` (at `start`, `len` bytes) that overlaps `want` to `out`,
/// which holds the bytes from `want.start` found so far; a gap before it (a hole) becomes
/// zeros. Chunks must come in file order.
fn append_overlap(d: &[u8], start: u64, len: u64, want: &Range<u64>, out: &mut Vec<u8>) {
    let (from, to) = (start.max(want.start), (start + len).min(want.end));
    if from < to {
        out.resize(out.len().max((from - want.start) as usize), 0);
        out.extend_from_slice(&d[(from - start) as usize..(to - start) as usize]);
    }
}

impl ContentEngine {
    /// The validated entries of pointer block `r` at `height`, whose lengths must sum to `len`.
    pub(crate) fn pointer(
        &self,
        r: &BlockRef,
        height: u8,
        len: u64,
    ) -> Result<Arc<Vec<Entry>>, FsError> {
        let entries = match self.fetch.cache.get(&r.id) {
            Some(Cached::Pointer(h, e)) if h == height => e,
            _ => {
                let (kind, p) = self.get_blob(r)?;
                if kind != BlockKind::Pointer {
                    return Err(FsError::BadBlock(r.id));
                }
                let e = Arc::new(decode_pointer(r.id, height, &p)?);
                self.fetch
                    .cache
                    .insert(r.id, Cached::Pointer(height, e.clone()));
                e
            }
        };
        let sum = entries.iter().try_fold(0u64, |s, e| s.checked_add(e.len));
        if sum != Some(len) || entries.is_empty() {
            return Err(FsError::BadBlock(r.id));
        }
        Ok(entries)
    }

    /// The plaintext of data chunk `r`, which must be exactly `len` bytes.
    pub(crate) fn chunk(&self, r: &BlockRef, len: u64) -> Result<ChunkData, FsError> {
        self.fetch.chunk(r, len)
    }

    /// The root as an entry covering the whole file, and its height.
    pub(crate) fn root_entry(c: &FileContent) -> Result<(Entry, u8), FsError> {
        match &c.root {
            None => Ok((Entry::hole(c.size), 0)),
            Some(TreeRoot { block, depth }) if *depth > MAX_DEPTH || c.size == 0 => {
                Err(FsError::BadBlock(block.id))
            }
            Some(TreeRoot { block, depth }) => Ok((
                Entry {
                    r: Some(*block),
                    len: c.size,
                },
                *depth,
            )),
        }
    }

    /// Appends the bytes of `e` (covering `start..`) that fall in `want` to `out` (see
    /// `append_overlap`). Building the result in order, rather than copying into a buffer
    /// zero-filled first, spares a cold sequential read a pass over every byte. Holes are
    /// skipped: the caller pads `out` to the length it asked for.
    pub(crate) fn read_into(
        &self,
        e: &Entry,
        height: u8,
        start: u64,
        want: &Range<u64>,
        out: &mut Vec<u8>,
    ) -> Result<(), FsError> {
        let Some(r) = &e.r else { return Ok(()) };
        let (off, end) = (want.start, want.end);
        if height == 0 {
            append_overlap(&self.chunk(r, e.len)?, start, e.len, want, out);
            return Ok(());
        }
        let kids = self.pointer(r, height, e.len)?;
        let mut s = start;
        let mut hits = Vec::new();
        for k in kids.iter() {
            if s >= end {
                break;
            }
            if s + k.len > off {
                hits.push((k, s));
            }
            s += k.len;
        }
        if height == 1 && hits.len() > 1 {
            // A read spanning several chunks fetches and decrypts them in parallel.
            let chunks = hits
                .par_iter()
                .map(|(k, _)| k.r.as_ref().map(|r| self.chunk(r, k.len)).transpose())
                .collect::<Result<Vec<_>, _>>()?;
            for ((k, s), d) in hits.iter().zip(chunks) {
                if let Some(d) = d {
                    append_overlap(&d, *s, k.len, want, out);
                }
            }
            return Ok(());
        }
        for (k, s) in hits {
            self.read_into(k, height - 1, s, want, out)?;
        }
        Ok(())
    }

    /// Calls `f(block, len, height, at_hand)` for every block under `e` (covering `start..`)
    /// that overlaps `want`, in order. Descends only into pointer blocks `has` says are at
    /// hand, so the walk itself never asks the block source for a block that is not.
    pub(crate) fn walk_range(
        &self,
        (e, height, start): (&Entry, u8, u64),
        want: &Range<u64>,
        has: &dyn Fn(&BlockId) -> bool,
        f: &mut dyn FnMut(&BlockRef, u64, u8, bool),
    ) -> Result<(), FsError> {
        let Some(r) = &e.r else { return Ok(()) };
        let at_hand = has(&r.id);
        f(r, e.len, height, at_hand);
        if height == 0 || !at_hand {
            return Ok(());
        }
        let mut s = start;
        for k in self.pointer(r, height, e.len)?.iter() {
            if s >= want.end {
                break;
            }
            if s + k.len > want.start {
                self.walk_range((k, height - 1, s), want, has, f)?;
            }
            s += k.len;
        }
        Ok(())
    }

    /// Flattens the tree under `e` (at `height`, under pointer `parent` if any) into leaf
    /// entries (chunks and holes), in order, and records its pointer blocks in `old`.
    pub(crate) fn collect_leaves(
        &self,
        (e, height, parent): (&Entry, u8, Option<usize>),
        out: &mut Vec<Entry>,
        old: &mut OldTree,
    ) -> Result<(), FsError> {
        match &e.r {
            Some(r) if height > 0 => {
                let kids = self.pointer(r, height, e.len)?;
                let idx = old.push(height, *e, parent, out.len(), kids.len());
                for k in kids.iter() {
                    self.collect_leaves((k, height - 1, Some(idx)), out, old)?;
                }
            }
            Some(_) => {
                old.leaf_parent.push(parent);
                out.push(*e);
            }
            None => {
                // Holes are never taken over (they are clipped and merged), so a pointer
                // block over one is sealed again.
                old.leaf_parent.push(None);
                out.push(*e);
            }
        }
        Ok(())
    }

    /// Calls `f` on every block under `e`; chunks are named, not fetched.
    pub(crate) fn visit(
        &self,
        e: &Entry,
        height: u8,
        f: &mut dyn FnMut(BlockId),
    ) -> Result<(), FsError> {
        let Some(r) = &e.r else { return Ok(()) };
        f(r.id);
        if height > 0 {
            for k in self.pointer(r, height, e.len)?.iter() {
                self.visit(k, height - 1, f)?;
            }
        }
        Ok(())
    }

    /// Like `visit`, but does not descend into pointer blocks `has` says are not local
    /// (they are still reported).
    pub(crate) fn visit_local(
        &self,
        (e, height): (&Entry, u8),
        has: &dyn Fn(&BlockId) -> bool,
        f: &mut dyn FnMut(BlockId),
    ) -> Result<(), FsError> {
        let Some(r) = &e.r else { return Ok(()) };
        f(r.id);
        if height > 0 && has(&r.id) {
            for k in self.pointer(r, height, e.len)?.iter() {
                self.visit_local((k, height - 1), has, f)?;
            }
        }
        Ok(())
    }

    /// Pushes onto `out` (up to `max` ids) blocks under `e`, which starts at byte `off`, that
    /// `has` says are not local; a missing pointer block is listed and not descended, and
    /// entries below byte `skip` are taken as local without a look. True if nothing was missing.
    pub(crate) fn missing(
        &self,
        (e, height): (&Entry, u8),
        (off, skip): (u64, u64),
        has: &dyn Fn(&BlockId) -> bool,
        out: &mut Missing,
        max: usize,
    ) -> Result<bool, FsError> {
        let Some(r) = &e.r else { return Ok(true) };
        if off + e.len <= skip {
            return Ok(true);
        }
        if !has(&r.id) {
            out.gap.get_or_insert(off);
            if out.ids.len() < max && out.seen.insert(r.id) {
                out.ids.push(r.id);
            }
            return Ok(false);
        }
        let mut complete = true;
        if height > 0 {
            let mut at = off;
            for k in self.pointer(r, height, e.len)?.iter() {
                if out.ids.len() >= max {
                    out.gap.get_or_insert(at);
                    return Ok(false);
                }
                complete &= self.missing((k, height - 1), (at, skip), has, out, max)?;
                at += k.len;
            }
        }
        Ok(complete)
    }

    /// Builds the pointer levels above `leaves`; `None` when the file is empty or one hole.
    /// `tags[i]` names the old leaf that `leaves[i]` is (see [`OldTree`]): a group whose
    /// entries are exactly an old pointer block's children takes that block over instead of
    /// sealing it again, level by level. The result is the same tree as without `old` (the
    /// same children make the same block), but a write at the end of a large file seals only
    /// the pointer blocks along its right edge, not every pointer block of the file.
    pub(crate) fn build(
        &self,
        level: Vec<Entry>,
        tags: Vec<Option<usize>>,
        old: &OldTree,
    ) -> Result<Option<TreeRoot>, FsError> {
        let (mut level, mut tags) = merge_holes_tagged(level, tags);
        let mut height = 0u8;
        while level.len() > 1 {
            height += 1;
            let gs = groups(&level, self.opts.max_fanout);
            let (cur, cur_tags) = (&level, &tags);
            let next = gs
                .into_par_iter()
                .map(|g| match old.reusable(height, &cur_tags[g.clone()]) {
                    Some((p, e)) => Ok((e, Some(p))),
                    None => self.put_group(&cur[g], height).map(|e| (e, None)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let (next, next_tags) = next.into_iter().unzip();
            (level, tags) = merge_holes_tagged(next, next_tags);
        }
        Ok(root_over(&level, height))
    }

    /// Stores one pointer block over `g`; a lone hole passes up unchanged (holes cost nothing).
    pub(crate) fn put_group(&self, g: &[Entry], height: u8) -> Result<Entry, FsError> {
        if let [e @ Entry { r: None, .. }] = g {
            return Ok(*e);
        }
        let len = g.iter().map(|e| e.len).sum();
        #[cfg(test)]
        self.pointers_sealed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let r = self.put_blob(BlockKind::Pointer, &encode_pointer(height, g))?;
        Ok(Entry { r: Some(r), len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::pointer::test_entry as data;

    #[test]
    fn groups_shrink_and_respect_max() {
        let level: Vec<Entry> = (0..1000u32).map(|i| data(i as u8, 1)).collect();
        let gs = groups(&level, 8);
        assert!(gs.iter().all(|g| g.len() <= 8 && !g.is_empty()));
        assert_eq!(gs.iter().map(|g| g.len()).sum::<usize>(), 1000);
        assert!(gs.len() < 1000 / 2 + 1);
    }

    #[test]
    fn holes_merge() {
        let v = vec![Entry::hole(1), Entry::hole(2), data(1, 3), Entry::hole(0)];
        let (v, tags) = merge_holes_tagged(v, vec![Some(0), None, Some(2), None]);
        assert_eq!(v, vec![Entry::hole(3), data(1, 3)]);
        assert_eq!(
            tags,
            vec![None, Some(2)],
            "a hole has no tag, a chunk keeps its own"
        );
    }
}
