//! Bandwidth limits (`--max-send`, `--max-recv`): a token bucket per direction, shared by all
//! block streams of a node. Only block data is limited; index updates are small and keep flowing.
//!
//! A stream that takes more than the bucket holds goes into debt and sleeps it off, so large
//! blocks never starve and the long-run rate is the configured one. Receiving is limited by not
//! reading: QUIC flow control then slows the sender.
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How much unused allowance may accumulate: a quarter second at the configured rate.
const BURST: Duration = Duration::from_millis(250);

/// A token bucket; rate 0 means unlimited.
#[derive(Debug)]
pub(crate) struct Limiter {
    rate: AtomicU64,
    bucket: Mutex<Bucket>,
}

/// A node's two limits, shared by every part that moves block data.
#[derive(Debug)]
pub(crate) struct Rates {
    /// `--max-send`: block data served or pushed to peers.
    pub(crate) send: Limiter,
    /// `--max-recv`: block data fetched from peers or pushed to us.
    pub(crate) recv: Limiter,
}

impl Rates {
    /// Both directions unlimited.
    pub(crate) fn new() -> Self {
        Rates {
            send: Limiter::new(),
            recv: Limiter::new(),
        }
    }
}

#[derive(Debug)]
struct Bucket {
    /// Bytes that may pass now (negative: debt to sleep off).
    tokens: f64,
    last: Instant,
}

impl Limiter {
    /// An unlimited limiter.
    pub(crate) fn new() -> Self {
        Limiter {
            rate: AtomicU64::new(0),
            bucket: Mutex::new(Bucket {
                tokens: 0.0,
                last: Instant::now(),
            }),
        }
    }

    /// Sets the rate in bytes per second (0: unlimited).
    pub(crate) fn set_rate(&self, bytes_per_sec: u64) {
        self.rate.store(bytes_per_sec, Ordering::Relaxed);
        let mut b = self.bucket.lock();
        b.tokens = 0.0;
        b.last = Instant::now();
    }

    /// Waits until `n` bytes may pass.
    pub(crate) async fn take(&self, n: usize) {
        let wait = self.reserve(n);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes `n` bytes from the bucket; returns how long the caller must wait for them.
    fn reserve(&self, n: usize) -> Duration {
        let rate = self.rate.load(Ordering::Relaxed);
        if rate == 0 {
            return Duration::ZERO;
        }
        let rate = rate as f64;
        let mut b = self.bucket.lock();
        let now = Instant::now();
        let refill = now.saturating_duration_since(b.last).as_secs_f64() * rate;
        b.tokens = (b.tokens + refill).min(rate * BURST.as_secs_f64());
        b.last = now;
        b.tokens -= n as f64;
        match b.tokens < 0.0 {
            true => Duration::from_secs_f64(-b.tokens / rate),
            false => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn long_run_rate_is_the_configured_one() {
        let l = Limiter::new();
        let t = Instant::now();
        for _ in 0..10 {
            l.take(1 << 20).await;
        }
        assert_eq!(t.elapsed(), Duration::ZERO, "unlimited by default");
        l.set_rate(1 << 20);
        let t = Instant::now();
        for _ in 0..8 {
            l.take(256 << 10).await; // 2 MiB at 1 MiB/s
        }
        let secs = t.elapsed().as_secs_f64();
        assert!(
            (1.9..=2.1).contains(&secs),
            "2 MiB at 1 MiB/s took {secs} s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_buys_at_most_the_burst() {
        let l = Limiter::new();
        l.set_rate(1 << 20);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let t = Instant::now();
        l.take(256 << 10).await; // the burst: free
        assert_eq!(t.elapsed(), Duration::ZERO);
        l.take(1 << 20).await; // then the rate again
        let secs = t.elapsed().as_secs_f64();
        assert!((0.95..=1.05).contains(&secs), "took {secs} s");
    }
}
