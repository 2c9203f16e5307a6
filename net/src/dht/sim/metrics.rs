//! What the simulator measures about lookups, and how it sums it up.

/// One measured lookup.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Outcome {
    pub(crate) providers: bool,
    pub(crate) success: bool,
    pub(crate) hops: Option<u32>,
    /// `first_result_at - started`.
    pub(crate) latency_ms: Option<u64>,
    pub(crate) requests: u32,
}

/// The lookups of one phase of a run.
#[derive(Clone, Debug, Default)]
pub(crate) struct Phase {
    pub(crate) outcomes: Vec<Outcome>,
    /// Lookups whose originating node died before they ended (not counted).
    pub(crate) orphaned: u64,
}

/// Summary of one phase.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Summary {
    pub(crate) lookups: usize,
    pub(crate) success: f64,
    pub(crate) success_providers: f64,
    pub(crate) success_nodes: f64,
    pub(crate) hops_median: u32,
    pub(crate) hops_p90: u32,
    pub(crate) hops_p99: u32,
    pub(crate) latency_ms_median: u64,
    pub(crate) latency_ms_p90: u64,
    pub(crate) messages_per_lookup: f64,
}

impl Phase {
    /// Hops and latency over the successful lookups; success over all.
    pub(crate) fn summary(&self) -> Summary {
        let ok = || self.outcomes.iter().filter(|o| o.success);
        let mut hops: Vec<u32> = ok().filter_map(|o| o.hops).collect();
        let mut lat: Vec<u64> = ok().filter_map(|o| o.latency_ms).collect();
        hops.sort_unstable();
        lat.sort_unstable();
        let requests: u64 = self.outcomes.iter().map(|o| u64::from(o.requests)).sum();
        Summary {
            lookups: self.outcomes.len(),
            success: self.success(|_| true),
            success_providers: self.success(|o| o.providers),
            success_nodes: self.success(|o| !o.providers),
            hops_median: percentile(&hops, 50),
            hops_p90: percentile(&hops, 90),
            hops_p99: percentile(&hops, 99),
            latency_ms_median: percentile(&lat, 50),
            latency_ms_p90: percentile(&lat, 90),
            messages_per_lookup: requests as f64 / self.outcomes.len().max(1) as f64,
        }
    }

    fn success(&self, of: impl Fn(&Outcome) -> bool) -> f64 {
        let (mut n, mut ok) = (0usize, 0usize);
        for o in self.outcomes.iter().filter(|o| of(o)) {
            n += 1;
            ok += usize::from(o.success);
        }
        if n == 0 { 1.0 } else { ok as f64 / n as f64 }
    }
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub(crate) fn percentile<T: Copy + Default>(sorted: &[T], pct: usize) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u32> = (1..=10).collect();
        assert_eq!(percentile(&v, 50), 5);
        assert_eq!(percentile(&v, 90), 9);
        assert_eq!(percentile(&v, 99), 10);
        assert_eq!(percentile::<u32>(&[], 50), 0);
    }
}
