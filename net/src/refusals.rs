//! Rate limits for refusal log lines (docs/protocol.md, "Connections"): a refused device keeps
//! redialling, so each key (a device on the listener, an address on the dialer) is logged at
//! most once per [`INTERVAL`], with the count of refusals not logged since.
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Shortest time between two lines about one key.
pub(crate) const INTERVAL: Duration = Duration::from_secs(60);
/// Keys remembered at most; beyond it those not logged for an interval are forgotten.
const MAX_KEYS: usize = 1024;

struct Entry {
    logged: Instant,
    suppressed: u64,
}

/// Which refusals to log.
pub(crate) struct RefusalLog<K> {
    entries: Mutex<HashMap<K, Entry>>,
}

impl<K> Default for RefusalLog<K> {
    fn default() -> Self {
        RefusalLog {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq> RefusalLog<K> {
    /// `Some(n)` if a refusal about `key` at `now` is to be logged, `n` the refusals about it
    /// not logged since the last line; `None` to stay quiet.
    pub(crate) fn admit(&self, key: K, now: Instant) -> Option<u64> {
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_KEYS {
            entries.retain(|_, e| now.duration_since(e.logged) < INTERVAL);
        }
        match entries.get_mut(&key) {
            Some(e) if now.duration_since(e.logged) < INTERVAL => {
                e.suppressed += 1;
                None
            }
            Some(e) => {
                let n = e.suppressed;
                *e = Entry {
                    logged: now,
                    suppressed: 0,
                };
                Some(n)
            }
            None => {
                entries.insert(
                    key,
                    Entry {
                        logged: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_key_and_interval_with_the_count_of_quiet_ones() {
        let log = RefusalLog::default();
        let t = Instant::now();
        assert_eq!(log.admit("a", t), Some(0));
        assert_eq!(log.admit("a", t + Duration::from_secs(1)), None);
        assert_eq!(log.admit("a", t + Duration::from_secs(2)), None);
        assert_eq!(log.admit("b", t + Duration::from_secs(2)), Some(0));
        assert_eq!(log.admit("a", t + INTERVAL), Some(2));
        assert_eq!(log.admit("a", t + INTERVAL), None);
    }
}
