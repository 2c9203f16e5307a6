//! Updating a file's tree around a changed window, level by level, without flattening it.
//!
//! Why: an overwrite in the middle of a large file (a database page, a VM image block) is
//! flushed by every `fsync`; flattening and regrouping the whole tree made each such flush cost
//! time in proportion to the file's size. `update_right_edge` covers changes at the end; this
//! covers one changed window anywhere in a file whose size does not change.
//!
//! The argument, level by level: `build` groups a level left to right, and a group starts
//! afresh after each cut, with cuts that depend only on the entries since the last one. The
//! level below changed only within bytes `x..y` (aligned to its entries). Every old group
//! that ends at or before `x` is unchanged. The group holding `x` starts at an old cut, `g0`,
//! so grouping afresh from `g0` over the old entries up to `x`, the new entries, then the old
//! entries after `y`, gives `build`'s groups; as soon as one of these cuts falls at or after
//! `y` on an old group boundary, both groupings are fresh at the same place over the same
//! entries, so every later group is the old one. The new groups replace exactly the old
//! groups over `g0..` that boundary, which is the next level's changed window. Once the
//! window spans the file, the rest is a plain `build`.
//!
//! Holes (sparse files) make hole merging reach across the window's edges; any hole met here
//! sends the update to the general path, which is always correct.
use super::tree::{cuts_after, root_over};
use super::{ContentEngine, FileContent};
use crate::error::{Bug, FsError};
use crate::format::pointer::{Entry, MAX_DEPTH};
use rayon::prelude::*;

/// An old entry at some height: where it starts, and where its parent one level up ends.
#[derive(Clone, Copy)]
pub(super) struct At {
    pub(super) e: Entry,
    pub(super) start: u64,
    parent_end: u64,
}

/// The old tree being updated.
pub(super) struct OldRoot {
    pub(super) root: Entry,
    pub(super) height: u8,
}

/// Why the window path stopped: a hole on the way (`Bail`: the caller takes the general
/// path) or an error.
pub(super) enum Stop {
    Bail,
    Fail(FsError),
}

impl From<FsError> for Stop {
    fn from(e: FsError) -> Self {
        Stop::Fail(e)
    }
}

/// `Some` result of the window path, `None` where it bailed out, or its error.
pub(super) fn or_general<T>(r: Result<T, Stop>) -> Result<Option<T>, FsError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Stop::Bail) => Ok(None),
        Err(Stop::Fail(e)) => Err(e),
    }
}

/// A level's changed window (bytes) and its new entries there.
type Level = ((u64, u64), Vec<Entry>);

impl ContentEngine {
    /// Old entries at `height` that overlap bytes `from..to`, in order (`Bail` at a hole).
    pub(super) fn entries_at(
        &self,
        old: &OldRoot,
        height: u8,
        (from, to): (u64, u64),
    ) -> Result<Vec<At>, Stop> {
        if height > old.height {
            return Err(Stop::Bail);
        }
        let mut out = Vec::new();
        let top = At {
            e: old.root,
            start: 0,
            parent_end: old.root.len,
        };
        let mut stack = vec![(top, old.height)];
        // Depth-first, children pushed in reverse so they pop in file order.
        while let Some((at, h)) = stack.pop() {
            let Some(r) = at.e.r else {
                return Err(Stop::Bail);
            };
            if h == height {
                out.push(at);
                continue;
            }
            let kids = self.pointer(&r, h, at.e.len)?;
            let end = at.start + at.e.len;
            let mut s = at.start;
            let mut next = Vec::new();
            for k in kids.iter() {
                let ks = s;
                s += k.len;
                if s > from && ks < to {
                    next.push((
                        At {
                            e: *k,
                            start: ks,
                            parent_end: end,
                        },
                        h - 1,
                    ));
                }
            }
            stack.extend(next.into_iter().rev());
        }
        Ok(out)
    }

    /// The tree of `old` with the leaves over bytes `x..y` replaced by `leaves` (which cover
    /// exactly those bytes; the file's size is unchanged).
    pub(super) fn update_window(
        &self,
        old: &OldRoot,
        (x, y): (u64, u64),
        leaves: Vec<Entry>,
    ) -> Result<FileContent, Stop> {
        let size = old.root.len;
        let (mut win, mut level, mut height) = ((x, y), leaves, 0u8);
        if level.iter().any(|e| e.r.is_none()) {
            return Err(Stop::Bail);
        }
        loop {
            let whole = win == (0, size);
            if whole && level.len() <= 1 {
                break;
            }
            height += 1;
            if height > MAX_DEPTH {
                return Err(FsError::bug(Bug::TreeTooDeep { max: MAX_DEPTH }).into());
            }
            if whole {
                let gs = super::tree::groups(&level, self.opts.max_fanout);
                level = self.seal_groups(&level, gs, height)?;
                continue;
            }
            (win, level) = self.widen_level(old, height, win, &level)?;
        }
        Ok(FileContent {
            size,
            root: root_over(&level, height),
        })
    }

    /// Seals the groups `gs` of `level` as pointer blocks at `height`.
    pub(super) fn seal_groups(
        &self,
        level: &[Entry],
        gs: Vec<std::ops::Range<usize>>,
        height: u8,
    ) -> Result<Vec<Entry>, FsError> {
        gs.into_par_iter()
            .map(|g| self.put_group(&level[g], height))
            .collect()
    }

    /// One level up: the level below changed only within `win` (its new entries there are
    /// `new`); returns the changed window at `height` and its new entries (see module doc).
    fn widen_level(
        &self,
        old: &OldRoot,
        height: u8,
        (x, y): (u64, u64),
        new: &[Entry],
    ) -> Result<Level, Stop> {
        let size = old.root.len;
        let below = height - 1;
        // The old group (pointer block at `height`) holding byte x, and its entries before x.
        let lost = || Stop::Fail(FsError::bug(Bug::TreeLost { at: x, height }));
        let holder = self.entries_at(old, height, (x, x + 1))?;
        let g0 = holder.first().ok_or_else(lost)?.start;
        let before = self.entries_at(old, below, (g0, x))?;
        // Whether an old group ends at y: the parent of the old entry ending there ends there.
        let y_cut = y == size
            || self
                .entries_at(old, below, (y - 1, y))?
                .last()
                .is_some_and(|a| a.parent_end == y);
        let mask = super::tree::natural_mask(self.opts.max_fanout);
        let max = self.opts.max_fanout;
        let mut seq: Vec<Entry> = before.iter().map(|a| a.e).collect();
        seq.extend_from_slice(new);
        let (mut gs, mut start, mut pos) = (Vec::new(), 0usize, g0);
        for (i, e) in seq.iter().enumerate() {
            pos += e.len;
            if cuts_after(i + 1 - start, e, max, mask) {
                gs.push(start..i + 1);
                start = i + 1;
                if pos == y && y_cut {
                    return Ok(((g0, y), self.seal_groups(&seq, gs, height)?));
                }
            }
        }
        // Then the old entries after y, one old group at a time, until a cut meets an old
        // group boundary (or the file ends).
        let mut p = y;
        while p < size {
            let blk = *self
                .entries_at(old, height, (p, p + 1))?
                .first()
                .ok_or_else(lost)?;
            let end = blk.start + blk.e.len;
            let after = self.entries_at(old, below, (p, end))?;
            for a in after {
                seq.push(a.e);
                pos += a.e.len;
                let i = seq.len() - 1;
                if cuts_after(i + 1 - start, &a.e, max, mask) {
                    gs.push(start..i + 1);
                    start = i + 1;
                    if a.parent_end == pos {
                        return Ok(((g0, pos), self.seal_groups(&seq, gs, height)?));
                    }
                }
            }
            p = end;
        }
        if start < seq.len() {
            gs.push(start..seq.len());
        }
        Ok(((g0, size), self.seal_groups(&seq, gs, height)?))
    }
}
