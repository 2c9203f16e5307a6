//! Hole punching: a byte range of a file becomes a hole, its size unchanged.
//!
//! The old tree is flattened to its leaves. Leaves wholly inside the range are dropped for one
//! hole (nothing stored for it); a data chunk cut by an edge of the range keeps its bytes
//! outside the range, stored again as a shorter chunk, and loses the rest to the hole. So a
//! punched range never holds stored zeros, and the tree is the one `build` makes from the new
//! leaves (old pointer blocks whose children are unchanged are taken over). The fast update
//! paths (`update_right_edge`, `update_window`) meet such holes later and fall back to the
//! general path, which handles holes anywhere.
use super::chunker::Pieces;
use super::tree::OldTree;
use super::update::Leaves;
use super::{ContentEngine, FileContent};
use crate::error::{Bug, FsError};
use crate::format::pointer::Entry;
use std::borrow::Cow;

impl ContentEngine {
    /// `c` with bytes `a..b` (clipped to its size) turned into a hole; the size is unchanged.
    pub fn punch(&self, c: &FileContent, a: u64, b: u64) -> Result<FileContent, FsError> {
        let b = b.min(c.size);
        if a >= b {
            return Ok(*c);
        }
        let (root, height) = Self::root_entry(c)?;
        let (mut v, mut tree) = (Vec::new(), OldTree::default());
        self.collect_leaves((&root, height, None), &mut v, &mut tree)?;
        let old = Leaves::new(v, 0);
        let (mut leaves, mut tags) = (Vec::new(), Vec::new());
        let (first, last) = (old.at(a), old.at(b - 1));
        // Left of the range: whole leaves, then the head of a chunk the range starts in.
        let head = cut_chunk(&old, first, a, true);
        old.keep(0, head.0, &mut leaves, &mut tags);
        self.push_stored(&old, head, &mut leaves, &mut tags)?;
        leaves.push(Entry::hole(b - a));
        tags.push(None);
        // Right of the range: the tail of a chunk the range ends in, then whole leaves.
        let tail = cut_chunk(&old, last, b, false);
        self.push_stored(&old, tail, &mut leaves, &mut tags)?;
        old.keep(tail.1, c.size, &mut leaves, &mut tags);
        let got = leaves.iter().map(|e| e.len).sum::<u64>();
        if got != c.size {
            let (op, want) = ("hole punch", c.size);
            return Err(FsError::bug(Bug::LengthsLost { op, got, want }));
        }
        Ok(FileContent {
            size: c.size,
            root: self.build(leaves, tags, &tree)?,
        })
    }

    /// Stores the old bytes `x..y` as new chunks after `leaves` (nothing when empty).
    fn push_stored(
        &self,
        old: &Leaves,
        (x, y): (u64, u64),
        leaves: &mut Vec<Entry>,
        tags: &mut Vec<Option<usize>>,
    ) -> Result<(), FsError> {
        if x >= y {
            return Ok(());
        }
        let mut run = Pieces::default();
        run.push(Cow::Owned(self.old_bytes(old, x, y)?));
        let new = self.store_chunks(&run)?;
        tags.resize(tags.len() + new.len(), None);
        leaves.extend(new);
        Ok(())
    }
}

/// The part of leaf `i` left (`left`) or right of offset `p` that must be stored again:
/// `x..y`, with `x == y == p` when `p` does not cut a data chunk (holes are clipped by `keep`).
fn cut_chunk(old: &Leaves, i: usize, p: u64, left: bool) -> (u64, u64) {
    let (s, t) = old.bounds(i);
    let cut = old.is_data(i) && s < p && p < t;
    match (cut, left) {
        (true, true) => (s, p),
        (true, false) => (p, t),
        (false, _) => (p, p),
    }
}
