//! Content-defined cutting of a byte run held as consecutive pieces.
//!
//! Why: a region to re-chunk is old chunk bytes around buffered writes; gathering it into one
//! buffer first would cost a copy (and fresh pages) for every byte written. FastCDC v2020
//! decides each cut from at most [`MAX_CHUNK`] bytes after the previous cut (its hash restarts
//! at every chunk), so cuts can be found piece by piece: only a window that straddles two
//! pieces is copied, and only a chunk that straddles two pieces is gathered. The cuts are those
//! of `FastCDC::new(whole, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)` on the concatenation (tested).
use super::{AVG_CHUNK, MAX_CHUNK, MIN_CHUNK};
use fastcdc::v2020::{MASKS, Normalization, cut, logarithm2};
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
            masks: Masks::new(),
        }
    }
}

/// FastCDC's masks for our sizes at its default normalization (level 1).
struct Masks {
    s: u64,
    l: u64,
}

impl Masks {
    fn new() -> Self {
        let bits = logarithm2(AVG_CHUNK) as usize;
        let n = Normalization::Level1.bits() as usize;
        Masks {
            s: MASKS[bits + n],
            l: MASKS[bits - n],
        }
    }
}

/// Iterator over chunk ranges of a [`Pieces`].
pub(crate) struct Chunks<'p, 'a> {
    pieces: &'p Pieces<'a>,
    pos: usize,
    masks: Masks,
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
        let m = &self.masks;
        let (_, n) = cut(
            &window,
            MIN_CHUNK as usize,
            AVG_CHUNK as usize,
            MAX_CHUNK as usize,
            m.s,
            m.l,
            m.s << 1,
            m.l << 1,
        );
        let n = n.max(1).min(window.len());
        let r = self.pos..self.pos + n;
        self.pos += n;
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use fastcdc::v2020::FastCDC;

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn reference(data: &[u8]) -> Vec<Range<usize>> {
        FastCDC::new(data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
            .map(|c| c.offset..c.offset + c.length)
            .collect()
    }

    #[test]
    fn cuts_match_fastcdc_on_the_concatenation() {
        let data = noise(3 << 20, 42);
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
