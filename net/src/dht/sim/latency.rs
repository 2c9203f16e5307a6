//! The simulated network's delays: a seeded per-pair latency model.
//!
//! Model (one-way delay from node `a` to node `b`, symmetric, fixed for the run):
//! `(PROPAGATION_MS * |pos_a - pos_b| + access_a + access_b) * pair_factor(a, b)`, where
//! - each node has a position drawn uniformly in the unit square (a flattened world map:
//!   crossing it takes `PROPAGATION_MS`, about an intercontinental one-way delay),
//! - each node has an access delay (its last mile and queueing), lognormal with median
//!   `ACCESS_MEDIAN_MS` and shape `ACCESS_SIGMA`: a few nodes sit behind slow links,
//! - each pair has a routing factor, lognormal with median 1 and shape `PAIR_SIGMA`
//!   (indirect routes), computed from a hash of (seed, pair) so nothing is stored per pair.
//!
//! Calibrated so that the median RTT of random pairs is about 70 ms with a long tail
//! (p99 several times the median); see the test below. Delays are whole milliseconds, >= 1.

use super::rng::{Rng, mix};

const PROPAGATION_MS: f64 = 46.0;
const ACCESS_MEDIAN_MS: f64 = 4.0;
const ACCESS_SIGMA: f64 = 1.0;
const PAIR_SIGMA: f64 = 0.3;

#[derive(Clone, Copy, Debug)]
struct Place {
    x: f32,
    y: f32,
    access_ms: f32,
}

/// Where every node sits, and the delays between them.
#[derive(Clone, Debug)]
pub(crate) struct Latency {
    seed: u64,
    places: Vec<Place>,
}

impl Latency {
    pub(crate) fn new(seed: u64) -> Latency {
        Latency {
            seed,
            places: Vec::new(),
        }
    }

    /// Places node `places.len()` (node indices are dense and never reused).
    pub(crate) fn add_node(&mut self, rng: &mut Rng) {
        let x = rng.unit() as f32;
        let y = rng.unit() as f32;
        let access_ms = (ACCESS_MEDIAN_MS * (ACCESS_SIGMA * rng.normal()).exp()) as f32;
        self.places.push(Place { x, y, access_ms });
    }

    /// One-way delay between nodes `a` and `b` in milliseconds (symmetric).
    pub(crate) fn one_way_ms(&self, a: u32, b: u32) -> u64 {
        let (pa, pb) = (self.places[a as usize], self.places[b as usize]);
        let dist = f64::from((pa.x - pb.x).hypot(pa.y - pb.y));
        let base = PROPAGATION_MS * dist + f64::from(pa.access_ms) + f64::from(pb.access_ms);
        let ms = base * self.pair_factor(a, b);
        (ms.round() as u64).max(1)
    }

    pub(crate) fn rtt_ms(&self, a: u32, b: u32) -> u64 {
        2 * self.one_way_ms(a, b)
    }

    fn pair_factor(&self, a: u32, b: u32) -> f64 {
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        let pair = (u64::from(lo) << 32) | u64::from(hi);
        let mut rng = Rng::new(mix(self.seed ^ mix(pair)));
        (PAIR_SIGMA * rng.normal()).exp()
    }

    /// The median RTT over `samples` random pairs of distinct nodes (needs >= 2 nodes).
    pub(crate) fn median_rtt_ms(&self, rng: &mut Rng, samples: usize) -> u64 {
        let n = self.places.len();
        let mut rtts: Vec<u64> = (0..samples)
            .map(|_| {
                let a = rng.below(n);
                let b = (a + 1 + rng.below(n - 1)) % n;
                self.rtt_ms(a as u32, b as u32)
            })
            .collect();
        rtts.sort_unstable();
        rtts.get(rtts.len() / 2).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_rtt_is_about_70ms_with_a_long_tail() {
        let mut rng = Rng::new(1);
        let mut lat = Latency::new(1);
        for _ in 0..2000 {
            lat.add_node(&mut rng);
        }
        let mut rtts: Vec<u64> = (0..20_000u32)
            .map(|i| lat.rtt_ms(i % 2000, (i * 7 + 1) % 2000))
            .collect();
        rtts.sort_unstable();
        let (median, p99) = (rtts[rtts.len() / 2], rtts[rtts.len() * 99 / 100]);
        eprintln!("RTT median {median} ms, p99 {p99} ms");
        assert!((60..=80).contains(&median), "median RTT {median} ms");
        assert!(p99 >= 2 * median, "p99 {p99} ms vs median {median} ms");
        assert_eq!(lat.one_way_ms(3, 9), lat.one_way_ms(9, 3));
    }
}
