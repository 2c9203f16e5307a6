//! The Merkle tree over a file's chunks: pointer-block format, walking, and building.
//!
//! A pointer block lists children as `(ref, length)`; lengths, not offsets, so that inserting
//! bytes changes only the blocks on the path to the change. A hole is an entry with an all-zero
//! ref: it reads as zeros and is never stored. Pointer blocks are grouped content-defined (a
//! group ends after a child whose id matches a mask), so an insertion that changes the number of
//! chunks shifts no later group and later pointer blocks dedupe. Layout: docs/formats/fs-content.md.
use super::cache::{Cached, ChunkData};
use super::{BlockKind, ContentEngine, FileContent, Missing, TreeRoot};
use crate::FsError;
use crate::crypto::{BLOCK_REF_LEN, BlockRef};
use blockstore::BlockId;
use rayon::prelude::*;
use std::ops::Range;
use std::sync::Arc;

/// Format version byte of pointer blocks.
pub(crate) const PTR_VERSION: u8 = 1;
/// Header: version u8, height u8, count u16.
const PTR_HEADER: usize = 4;
/// Encoded size of one entry: ref 64 B + length u64.
pub(crate) const ENTRY_LEN: usize = BLOCK_REF_LEN + 8;
/// Hard cap on entries per pointer block (the format's limit; options may lower it).
pub const MAX_FANOUT: usize = 256;
/// Deepest tree accepted (256^8 chunks is far beyond any u64 file).
const MAX_DEPTH: u8 = 8;

/// One child of a pointer block (or one leaf of the flattened tree).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The child block; `None` for a hole.
    pub(crate) r: Option<BlockRef>,
    /// Bytes of file content the child covers (> 0).
    pub(crate) len: u64,
}

impl Entry {
    /// A hole of `len` zero bytes.
    pub(crate) fn hole(len: u64) -> Self {
        Entry { r: None, len }
    }
}

/// Encodes a pointer block payload (after the block type byte).
pub(crate) fn encode_pointer(height: u8, entries: &[Entry]) -> Vec<u8> {
    let mut p = Vec::with_capacity(PTR_HEADER + entries.len() * ENTRY_LEN);
    p.push(PTR_VERSION);
    p.push(height);
    p.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for e in entries {
        match &e.r {
            Some(r) => r.encode(&mut p),
            None => p.extend_from_slice(&[0u8; BLOCK_REF_LEN]),
        }
        p.extend_from_slice(&e.len.to_le_bytes());
    }
    p
}

/// Decodes and structurally validates a pointer block payload; any defect is `BadBlock(id)`.
pub(crate) fn decode_pointer(id: BlockId, height: u8, p: &[u8]) -> Result<Vec<Entry>, FsError> {
    let bad = || FsError::BadBlock(id);
    let [ver, h, c0, c1, body @ ..] = p else {
        return Err(bad());
    };
    let count = u16::from_le_bytes([*c0, *c1]) as usize;
    if *ver != PTR_VERSION || *h != height || count == 0 || count > MAX_FANOUT {
        return Err(bad());
    }
    if body.len() != count * ENTRY_LEN {
        return Err(bad());
    }
    body.chunks_exact(ENTRY_LEN)
        .map(|b| {
            let (rb, lb) = b.split_at(BLOCK_REF_LEN);
            let len = u64::from_le_bytes(lb.try_into().map_err(|_| bad())?);
            let r = match rb.iter().all(|x| *x == 0) {
                true => None,
                false => Some(BlockRef::decode(rb).map_err(|_| bad())?),
            };
            let too_big = height == 1 && r.is_some() && len > super::MAX_CHUNK as u64;
            if len == 0 || too_big {
                return Err(bad());
            }
            Ok(Entry { r, len })
        })
        .collect()
}

/// Merges adjacent holes (so all-hole groups collapse) and drops empty entries.
pub(crate) fn merge_holes(v: &mut Vec<Entry>) {
    let mut out: Vec<Entry> = Vec::with_capacity(v.len());
    for e in v.drain(..).filter(|e| e.len > 0) {
        match out.last_mut() {
            Some(last) if last.r.is_none() && e.r.is_none() => last.len += e.len,
            _ => out.push(e),
        }
    }
    *v = out;
}

/// Content-defined grouping: at least 2 entries (so every level shrinks), at most `max`, and a
/// cut after a child whose id's low bits are all ones (about `max / 2` per group on average).
fn groups(level: &[Entry], max: usize) -> Vec<Range<usize>> {
    let mask = (max / 2).next_power_of_two() as u32 - 1;
    let mut out = Vec::new();
    let mut start = 0;
    for (i, e) in level.iter().enumerate() {
        let n = i + 1 - start;
        let natural = e.r.is_some_and(|r| {
            u32::from_le_bytes([r.id.0[0], r.id.0[1], r.id.0[2], r.id.0[3]]) & mask == mask
        });
        if n >= max || (n >= 2 && natural) {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < level.len() {
        out.push(start..level.len());
    }
    out
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

    /// Appends the data chunks under `e` (covering `start..`) that overlap `want`, in order.
    pub(crate) fn chunks_in(
        &self,
        e: &Entry,
        height: u8,
        start: u64,
        want: Range<u64>,
        out: &mut Vec<(BlockRef, u64)>,
    ) -> Result<(), FsError> {
        let Some(r) = &e.r else { return Ok(()) };
        if height == 0 {
            out.push((*r, e.len));
            return Ok(());
        }
        let mut s = start;
        for k in self.pointer(r, height, e.len)?.iter() {
            if s >= want.end {
                break;
            }
            if s + k.len > want.start {
                self.chunks_in(k, height - 1, s, want.clone(), out)?;
            }
            s += k.len;
        }
        Ok(())
    }

    /// Flattens the tree under `e` into leaf entries (chunks and holes), in order.
    pub(crate) fn collect_leaves(
        &self,
        e: &Entry,
        height: u8,
        out: &mut Vec<Entry>,
    ) -> Result<(), FsError> {
        match &e.r {
            Some(r) if height > 0 => {
                for k in self.pointer(r, height, e.len)?.iter() {
                    self.collect_leaves(k, height - 1, out)?;
                }
            }
            _ => out.push(*e),
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
    pub(crate) fn build(&self, mut level: Vec<Entry>) -> Result<Option<TreeRoot>, FsError> {
        merge_holes(&mut level);
        let mut height = 0u8;
        while level.len() > 1 {
            height += 1;
            let gs = groups(&level, self.opts.max_fanout);
            let cur = &level;
            let mut next = gs
                .into_par_iter()
                .map(|g| self.put_group(&cur[g], height))
                .collect::<Result<Vec<_>, _>>()?;
            merge_holes(&mut next);
            level = next;
        }
        Ok(level.first().and_then(|e| {
            e.r.map(|block| TreeRoot {
                block,
                depth: height,
            })
        }))
    }

    /// Stores one pointer block over `g`; a lone hole passes up unchanged (holes cost nothing).
    fn put_group(&self, g: &[Entry], height: u8) -> Result<Entry, FsError> {
        if let [e @ Entry { r: None, .. }] = g {
            return Ok(*e);
        }
        let len = g.iter().map(|e| e.len).sum();
        let r = self.put_blob(BlockKind::Pointer, &encode_pointer(height, g))?;
        Ok(Entry { r: Some(r), len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(b: u8, len: u64) -> Entry {
        Entry {
            r: Some(BlockRef {
                id: BlockId([b; 32]),
                key: [b; 32],
            }),
            len,
        }
    }

    #[test]
    fn pointer_round_trip_and_rejects_garbage() {
        let es = vec![data(1, 10), Entry::hole(5), data(2, 7)];
        let p = encode_pointer(1, &es);
        let id = BlockId([9; 32]);
        assert_eq!(decode_pointer(id, 1, &p).ok(), Some(es));
        assert!(decode_pointer(id, 2, &p).is_err(), "wrong height");
        assert!(
            decode_pointer(id, 1, &p[..p.len() - 1]).is_err(),
            "truncated"
        );
        assert!(decode_pointer(id, 1, &[]).is_err());
        let mut bad = p.clone();
        bad[0] = 7;
        assert!(decode_pointer(id, 1, &bad).is_err(), "version");
        let mut zero_len = p.clone();
        zero_len[PTR_HEADER + BLOCK_REF_LEN..PTR_HEADER + ENTRY_LEN].fill(0);
        assert!(decode_pointer(id, 1, &zero_len).is_err(), "zero length");
        let huge = encode_pointer(1, &[data(1, super::super::MAX_CHUNK as u64 + 1)]);
        assert!(decode_pointer(id, 1, &huge).is_err(), "chunk too long");
    }

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
        let mut v = vec![Entry::hole(1), Entry::hole(2), data(1, 3), Entry::hole(0)];
        merge_holes(&mut v);
        assert_eq!(v, vec![Entry::hole(3), data(1, 3)]);
    }
}
