//! The core's parameters (docs/protocol.md, "Parameters").
use super::time::Millis;

/// Parameters of one core; `Default` is the protocol's values.
#[derive(Clone, Debug)]
pub struct Config {
    /// Bucket size, replication of provider records, contacts per answer.
    pub k: usize,
    /// Requests a lookup (or each disjoint path) keeps in flight.
    pub alpha: usize,
    /// A request without an answer by then failed.
    pub request_timeout: Millis,
    /// Lower clamp of STALL (STALL = 4 x the RTT estimate, clamped to `stall_min..=stall_max`).
    pub stall_min: Millis,
    /// Upper clamp of STALL.
    pub stall_max: Millis,
    /// A bucket no lookup touched for this long is refreshed.
    pub refresh: Millis,
    /// A provider record expires this long after its last AddProvider.
    pub provider_ttl: Millis,
    /// A provider re-announces its keys this often.
    pub republish: Millis,
    /// S/Kademlia disjoint lookup paths: `Some(d)` with d >= 1; None = off.
    pub disjoint_paths: Option<u8>,
    /// Address-prefix limits of the routing table (docs/protocol.md, "Routing table").
    pub prefix_limits: bool,
    /// A full bucket whose head (least recently seen) spoke to us within this is fresh: a
    /// newcomer waits as a replacement without an eviction ping.
    pub ping_fresh: Millis,
    /// Consecutive failed requests after which a contact is evicted.
    pub max_failures: u8,
    /// How long a banned id is refused.
    pub ban_duration: Millis,
    /// Providers stored per key.
    pub max_providers_per_key: usize,
    /// Provider records in all.
    pub max_provider_records: usize,
    /// Provider records from one provider.
    pub max_records_per_provider: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            k: 20,
            alpha: 3,
            request_timeout: Millis::secs(2),
            stall_min: Millis(200),
            stall_max: Millis(1000),
            refresh: Millis::secs(3600),
            provider_ttl: Millis::secs(24 * 3600),
            republish: Millis::secs(12 * 3600),
            disjoint_paths: None,
            prefix_limits: false,
            ping_fresh: Millis::secs(60),
            max_failures: 3,
            ban_duration: Millis::secs(600),
            max_providers_per_key: 64,
            max_provider_records: 100_000,
            max_records_per_provider: 10_000,
        }
    }
}
