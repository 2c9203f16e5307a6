//! Content-defined cutting of a byte run held as consecutive pieces.
//!
//! Why: a region to re-chunk is old chunk bytes around buffered writes; gathering it into one
//! buffer first would cost a copy (and fresh pages) for every byte written. FastCDC v2020
//! decides each cut from at most [`MAX_CHUNK`] bytes after the previous cut (its hash restarts
//! at every chunk), so cuts can be found piece by piece: only a window that straddles two
//! pieces is copied, and only a chunk that straddles two pieces is gathered. The cuts are those
//! of `FastCDC::new(whole, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)` on the concatenation (tested).
use super::{AVG_CHUNK, MAX_CHUNK, MIN_CHUNK};
use fastcdc::v2020::{MASKS, Normalization, get_gear_with_seed, logarithm2};
use std::borrow::Cow;
use std::ops::Range;

/// A byte run as consecutive pieces (borrowed writes, owned old bytes).
#[derive(Default)]
pub(crate) struct Pieces<'a> {
    parts: Vec<Cow<'a, [u8]>>,
    /// End offset of each piece within the run.
    ends: Vec<usize>,
}

impl<'a> Pieces<'a> {
    /// Appends a piece (empty ones are dropped).
    pub(crate) fn push(&mut self, p: Cow<'a, [u8]>) {
        if !p.is_empty() {
            self.ends.push(self.len() + p.len());
            self.parts.push(p);
        }
    }

    /// Total length.
    pub(crate) fn len(&self) -> usize {
        self.ends.last().copied().unwrap_or(0)
    }

    /// Bytes `r` of the run: borrowed when they lie in one piece, gathered otherwise.
    pub(crate) fn slice(&self, r: Range<usize>) -> Cow<'_, [u8]> {
        let i = self.ends.partition_point(|&e| e <= r.start);
        let start_of = |i: usize| if i == 0 { 0 } else { self.ends[i - 1] };
        if let Some(p) = self.parts.get(i)
            && r.end <= self.ends[i]
        {
            let s = start_of(i);
            return Cow::Borrowed(&p[r.start - s..r.end - s]);
        }
        let mut out = Vec::with_capacity(r.len());
        let mut j = i;
        while out.len() < r.len() && j < self.parts.len() {
            let s = start_of(j);
            let from = r.start.max(s) - s;
            let to = r.end.min(self.ends[j]) - s;
            out.extend_from_slice(&self.parts[j][from..to]);
            j += 1;
        }
        Cow::Owned(out)
    }

    /// The chunks of the run, in order.
    pub(crate) fn chunks(&self) -> Chunks<'_, 'a> {
        Chunks {
            pieces: self,
            pos: 0,
            gear: Gear::new(),
        }
    }
}

/// FastCDC's gear tables (unseeded) and masks for our sizes at its default normalization
/// (level 1); `*_ls` are the same shifted left by one.
struct Gear {
    g: Box<[u64; 256]>,
    g_ls: Box<[u64; 256]>,
    s: u64,
    l: u64,
}

impl Gear {
    fn new() -> Self {
        let bits = logarithm2(AVG_CHUNK) as usize;
        let n = Normalization::Level1.bits() as usize;
        let (g, g_ls) = get_gear_with_seed(0);
        Gear {
            g,
            g_ls,
            s: MASKS[bits + n],
            l: MASKS[bits - n],
        }
    }

    /// Length of the chunk at the start of `src`: exactly `fastcdc::v2020::cut_gear` with our
    /// sizes. That loop is bound by its hash's dependency chain (shift, add, add per two
    /// bytes); the gear hash is a sum of shifted table values, so eight bytes' worth can be
    /// added at once (wrapping arithmetic is associative) and the hashes in between are
    /// computed off the chain for the mask tests.
    fn cut(&self, src: &[u8]) -> usize {
        let (min, avg, max) = (MIN_CHUNK as usize, AVG_CHUNK as usize, MAX_CHUNK as usize);
        let mut remaining = src.len();
        if remaining <= min {
            return remaining;
        }
        let mut center = avg;
        if remaining > max {
            remaining = max;
        } else if remaining < center {
            center = remaining;
        }
        let mut at = Scan {
            hash: 0,
            pair: min / 2,
        };
        if let Some(cut) = self.scan(src, &mut at, center / 2, self.s) {
            return cut;
        }
        if let Some(cut) = self.scan(src, &mut at, remaining / 2, self.l) {
            return cut;
        }
        remaining
    }

    /// Advances `at` over byte pairs up to `end_pair` (exclusive) testing `mask`; returns the
    /// cut if one is found.
    fn scan(&self, src: &[u8], at: &mut Scan, end_pair: usize, mask: u64) -> Option<usize> {
        let (g, gl) = (&*self.g, &*self.g_ls);
        let mask_ls = mask << 1;
        let mut h = at.hash;
        let mut i = at.pair;
        // Eight bytes (four pairs) a round. Each position is tested on its own branch: the
        // branches are almost never taken, and one test-and-jump per position costs less than
        // folding the tests into one (`stage/fossa_cut` 2.46 -> 2.66 GiB/s on Zen 3).
        while i + 4 <= end_pair {
            let a = 2 * i;
            let [b0, b1, b2, b3, b4, b5, b6, b7] = *src.get(a..a + 8)?.first_chunk::<8>()?;
            let (l0, l2, l4, l6) = (
                gl[b0 as usize],
                gl[b2 as usize],
                gl[b4 as usize],
                gl[b6 as usize],
            );
            // Pair sums, then the two halves of the round.
            let s01 = l0.wrapping_add(g[b1 as usize]);
            let s23 = l2.wrapping_add(g[b3 as usize]);
            let s45 = l4.wrapping_add(g[b5 as usize]);
            let s67 = l6.wrapping_add(g[b7 as usize]);
            let q03 = (s01 << 2).wrapping_add(s23);
            let q47 = (s45 << 2).wrapping_add(s67);
            let h2s = h << 2;
            let h0 = h2s.wrapping_add(l0);
            let h1 = h2s.wrapping_add(s01);
            let h2 = (h1 << 2).wrapping_add(l2);
            let h3 = (h << 4).wrapping_add(q03);
            let h4 = (h3 << 2).wrapping_add(l4);
            let h5 = (h3 << 2).wrapping_add(s45);
            let h6 = (h5 << 2).wrapping_add(l6);
            let h7 = (h << 8).wrapping_add((q03 << 4).wrapping_add(q47));
            if h0 & mask_ls == 0 {
                return Some(a);
            }
            if h1 & mask == 0 {
                return Some(a + 1);
            }
            if h2 & mask_ls == 0 {
                return Some(a + 2);
            }
            if h3 & mask == 0 {
                return Some(a + 3);
            }
            if h4 & mask_ls == 0 {
                return Some(a + 4);
            }
            if h5 & mask == 0 {
                return Some(a + 5);
            }
            if h6 & mask_ls == 0 {
                return Some(a + 6);
            }
            if h7 & mask == 0 {
                return Some(a + 7);
            }
            h = h7;
            i += 4;
        }
        while i < end_pair {
            let a = 2 * i;
            let [b0, b1] = *src.get(a..a + 2)?.first_chunk::<2>()?;
            h = (h << 2).wrapping_add(gl[b0 as usize]);
            if h & mask_ls == 0 {
                return Some(a);
            }
            h = h.wrapping_add(g[b1 as usize]);
            if h & mask == 0 {
                return Some(a + 1);
            }
            i += 1;
        }
        at.hash = h;
        at.pair = i;
        None
    }
}

/// Where a cut search has got to: the hash so far and the next byte pair.
struct Scan {
    hash: u64,
    pair: usize,
}

/// Iterator over chunk ranges of a [`Pieces`].
pub(crate) struct Chunks<'p, 'a> {
    pieces: &'p Pieces<'a>,
    pos: usize,
    gear: Gear,
}

impl Iterator for Chunks<'_, '_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        let end = self.pieces.len();
        if self.pos >= end {
            return None;
        }
        // The cut depends only on the bytes up to MAX_CHUNK ahead.
        let window_end = end.min(self.pos + MAX_CHUNK as usize);
        let window = self.pieces.slice(self.pos..window_end);
        let n = self.gear.cut(&window).clamp(1, window.len());
        let r = self.pos..self.pos + n;
        self.pos += n;
        Some(r)
    }
}

/// Lengths of the chunks of `data` cut as one region, as the write path cuts it. Public
/// (hidden) for the chunking benchmark, which compares it with the `fastcdc` crate.
#[doc(hidden)]
pub fn chunk_lengths(data: &[u8]) -> Vec<usize> {
    let mut p = Pieces::default();
    p.push(Cow::Borrowed(data));
    p.chunks().map(|r| r.len()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::file::tests::rand_bytes;
    use fastcdc::v2020::FastCDC;

    fn reference(data: &[u8]) -> Vec<Range<usize>> {
        FastCDC::new(data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
            .map(|c| c.offset..c.offset + c.length)
            .collect()
    }

    #[test]
    fn cuts_match_fastcdc_on_the_concatenation() {
        let data = rand_bytes(3 << 20, 42);
        // Splits at awkward places: 1 byte pieces, splits inside the min-size skip, a run of
        // zeros (max-size cuts), and one piece.
        let mut zeros = data.clone();
        zeros[1 << 20..(1 << 20) + (600 << 10)].fill(0);
        for d in [&data, &zeros] {
            let want = reference(d);
            for splits in [
                vec![],
                vec![1, 2, 3],
                vec![100_000, 100_001, 300_000, 2_000_000],
                vec![
                    MIN_CHUNK as usize,
                    MAX_CHUNK as usize,
                    3 * MAX_CHUNK as usize,
                ],
                (1..40).map(|i| i * 77_777).collect(),
            ] {
                let mut p = Pieces::default();
                let mut at = 0;
                for s in splits.iter().chain([&d.len()]) {
                    p.push(Cow::Borrowed(&d[at..*s]));
                    at = *s;
                }
                let got: Vec<_> = p.chunks().collect();
                assert_eq!(got, want, "splits {splits:?}");
                for r in &got {
                    assert_eq!(&*p.slice(r.clone()), &d[r.clone()]);
                }
            }
        }
    }

    #[test]
    fn cut_matches_fastcdc_at_every_window_length() {
        let gear = Gear::new();
        let data = rand_bytes(MAX_CHUNK as usize + 9, 7);
        let mut zeros = data.clone();
        zeros[..MAX_CHUNK as usize].fill(0);
        for d in [&data, &zeros] {
            for n in (0..=d.len())
                .step_by(997)
                .chain([1, 2, 3, 16383, 16384, 16385, 65535])
            {
                let src = &d[..n];
                let want = FastCDC::new(src, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
                    .next()
                    .map_or(0, |c| c.length);
                assert_eq!(gear.cut(src), want, "length {n}");
            }
        }
    }

    #[test]
    fn cut_matches_fastcdc_at_every_residue() {
        let gear = Gear::new();
        let mut seen = [false; 8];
        for seed in 1..300 {
            let d = rand_bytes(MAX_CHUNK as usize, seed);
            let want = FastCDC::new(&d, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
                .next()
                .map_or(0, |c| c.length);
            assert_eq!(gear.cut(&d), want, "seed {seed}");
            seen[want % 8] = true;
        }
        assert_eq!(
            seen, [true; 8],
            "cuts at every position within an 8-byte round"
        );
    }

    #[test]
    fn short_and_empty_runs() {
        let p = Pieces::default();
        assert_eq!(p.chunks().count(), 0);
        let mut p = Pieces::default();
        p.push(Cow::Borrowed(&[1u8, 2][..]));
        p.push(Cow::Owned(vec![3]));
        assert_eq!(p.chunks().collect::<Vec<_>>(), vec![0..3]);
        assert_eq!(&*p.slice(1..3), &[2, 3]);
    }
}
