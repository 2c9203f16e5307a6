//! Pacing of retries and of log lines about recurring failures between peers: an exponential
//! back-off, and a throttle that lets one log line through per period.
use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// A delay that starts at `min`, doubles with every failure up to `max`, and returns to `min`
/// after a success.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A back-off from `min` to `max`.
    pub(crate) const fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The delay to wait after this failure; the next one will be twice as long.
    pub(crate) fn fail(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// Back to the shortest delay.
    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}

/// At most one log line per `period` about one recurring failure.
#[derive(Debug)]
pub(crate) struct Throttle {
    period: Duration,
    /// When the last line was let through, and failures left out since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    /// A throttle letting one line through per `period`.
    pub(crate) const fn new(period: Duration) -> Self {
        Throttle {
            period,
            state: parking_lot::const_mutex((None, 0)),
        }
    }

    /// `Some(n)` if a line may be logged now (`n` failures were left out before it).
    pub(crate) fn allow(&self) -> Option<u64> {
        let mut st = self.state.lock();
        let due = st.0.is_none_or(|t| t.elapsed() >= self.period);
        if due {
            let skipped = st.1;
            *st = (Some(Instant::now()), 0);
            Some(skipped)
        } else {
            st.1 += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let got: Vec<u64> = (0..5).map(|_| b.fail().as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 5, 5]);
        b.reset();
        assert_eq!(b.fail(), Duration::from_secs(1));
    }

    #[test]
    fn throttle_lets_one_line_through_per_period() {
        let t = Throttle::new(Duration::from_secs(3600));
        assert_eq!(t.allow(), Some(0));
        assert_eq!(t.allow(), None);
        assert_eq!(t.allow(), None);
        let t = Throttle::new(Duration::ZERO);
        assert_eq!(t.allow(), Some(0));
        assert_eq!(t.allow(), Some(0));
    }
}
