//! A deterministic discrete-event simulation of a swarm, driving one real
//! [`Dht`](crate::dht::Dht) core per node (the same code the daemon runs), for
//! `net/examples/dht_sim.rs` and its CI test.
//!
//! Pure code: no sockets, no clock, no OS randomness, no async. Everything random comes from
//! one seed (`rng.rs`), events are ordered by (time, sequence number) (`queue.rs`), and no
//! decision depends on a `HashMap`'s iteration order: the same [`SimConfig`] gives the same
//! [`Report`], `trace_hash` included (BLAKE3 over every delivered event: time, from, to,
//! message kind).
//!
//! The model:
//! - **Latency**: a seeded per-pair model with a median RTT about 70 ms and a long tail
//!   (positions, lognormal access delays, lognormal per-pair factors; `latency.rs`).
//! - **Loss** and **dead nodes**: each message is lost with probability `loss` (default 1 %);
//!   a dead node answers nothing, and a request to it fails fast (`handle_failure` after one
//!   RTT) with probability 1/2, else is silent until the core's timeout (`world.rs`).
//! - **Nodes**: ids and addresses from the seed; the addresses are random public-looking IPv4
//!   (data only, never used for a socket), so the table's prefix limits (on, as in the daemon)
//!   rarely bind.
//! - **Build-up**: nodes join one after another every 20 ms (`scenario::JOIN_INTERVAL_MS`),
//!   each through the addresses of 3 random joined nodes (`bootstrap`: ping, self lookup,
//!   refresh), then the swarm settles for 60 s (`scenario::SETTLE_MS`).
//! - **Measurement**: random nodes `provide` `lookups / 2` random keys; then `lookups`
//!   lookups from random live nodes, alternately `get_providers(key, 1)` of a provided key
//!   whose provider is alive and `find_node` of a random id. A provider lookup succeeds when
//!   it returns a live provider; a node lookup when its closest result is the true closest
//!   live node (that started joining 10 s before, `scenario::JOIN_GRACE_MS`). Hops and latency
//!   (`first_result_at - started`) come from the core's `LookupResult`, over the successful
//!   lookups; `messages_per_lookup` is its `requests`, over all.
//! - **Kill** (`kill`): after the measurement, that fraction of live nodes dies at once;
//!   `lookups` lookups run right away (`success_after_kill`), then again after one refresh
//!   period (`success_after_refresh`).
//! - **Churn** (`churn_half_life_h`): during the measurement, which then spans one refresh
//!   period, each node dies at rate ln 2 / half-life and a fresh node joins for each death.

mod latency;
mod metrics;
mod queue;
mod rng;
mod scenario;
mod world;

use serde::Serialize;

use crate::dht::Config;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Nodes in the swarm (constant under churn: each death brings a fresh node).
    pub nodes: usize,
    /// Everything random in the run derives from it.
    pub seed: u64,
    /// Measured lookups per phase.
    pub lookups: usize,
    /// Fraction of nodes killed at once after the measurement.
    pub kill: Option<f64>,
    /// Churn half-life in hours (nodes die and fresh ones join at that rate).
    pub churn_half_life_h: Option<f64>,
    /// S/Kademlia disjoint paths (the core's `Config::disjoint_paths`).
    pub disjoint: Option<u8>,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Check the core's and the simulator's invariants after every event.
    pub check: bool,
}

impl SimConfig {
    /// `nodes` nodes, 1,000 lookups, 1 % loss, no kill, no churn, no checks.
    pub fn new(nodes: usize, seed: u64) -> SimConfig {
        SimConfig {
            nodes,
            seed,
            lookups: 1000,
            kill: None,
            churn_half_life_h: None,
            disjoint: None,
            loss: 0.01,
            check: false,
        }
    }

    fn core_config(&self) -> Config {
        Config {
            disjoint_paths: self.disjoint,
            prefix_limits: true,
            ..Config::default()
        }
    }
}

/// The result of a run (field names are the JSON of `dht_sim --json`). Wall-clock figures
/// are not here: the run is a pure function of its config, the caller times it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Nodes simulated.
    pub nodes: usize,
    /// The run's seed.
    pub seed: u64,
    /// Measured lookups of the main phase that ended.
    pub lookups: usize,
    /// Hops (docs/protocol.md "Hops") of the successful lookups: median, p90, p99.
    pub hops_median: u32,
    /// See `hops_median`.
    pub hops_p90: u32,
    /// See `hops_median`.
    pub hops_p99: u32,
    /// `first_result_at - started` of the successful lookups: median, p90.
    pub latency_ms_median: u64,
    /// See `latency_ms_median`.
    pub latency_ms_p90: u64,
    /// Median RTT of random node pairs in the latency model.
    pub rtt_ms_median: u64,
    /// Fraction of main-phase lookups that succeeded (see the module doc).
    pub success: f64,
    /// The same, provider lookups only.
    pub success_providers: f64,
    /// The same, node lookups only.
    pub success_nodes: f64,
    /// Mean requests a main-phase lookup sent.
    pub messages_per_lookup: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Success of the lookups started right after the kill.
    pub success_after_kill: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Success of the lookups started one refresh period after the kill.
    pub success_after_refresh: Option<f64>,
    /// Hops median and p90 of the successful lookups started right after the kill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hops_median_after_kill: Option<u32>,
    /// See `hops_median_after_kill`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hops_p90_after_kill: Option<u32>,
    /// Latency median and p90 of the successful lookups started right after the kill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms_median_after_kill: Option<u64>,
    /// See `latency_ms_median_after_kill`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms_p90_after_kill: Option<u64>,
    /// Mean requests of a lookup started right after the kill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages_per_lookup_after_kill: Option<f64>,
    /// Message loss probability.
    pub loss: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Fraction killed, as configured.
    pub kill: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Churn half-life in hours, as configured.
    pub churn_half_life_h: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Disjoint paths, as configured.
    pub disjoint: Option<u8>,
    /// Measured lookups whose origin died before they ended (churn), not counted.
    pub lookups_orphaned: u64,
    /// Live nodes at the end.
    pub nodes_alive_end: usize,
    /// Nodes created over the run (joins under churn included).
    pub nodes_created: usize,
    /// Requests sent by all cores over the whole run.
    pub messages: u64,
    /// Events the simulator delivered (messages, failures, timers).
    pub events: u64,
    /// Simulated time at the end, in seconds.
    pub sim_time_s: f64,
    /// BLAKE3 (hex) over every delivered event: time, from, to, message kind.
    pub trace_hash: String,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// `check_invariants` failed.
    #[error("at {at} ms: node {node}'s core broke an invariant: {what}")]
    Core {
        /// Simulated time, ms.
        at: u64,
        /// Node index.
        node: u32,
        /// The core's description.
        what: String,
    },
    /// The simulator found a broken invariant of its own.
    #[error("at {at} ms: simulator invariant broken: {what}")]
    Sim {
        /// Simulated time, ms.
        at: u64,
        /// Which one.
        what: String,
    },
    /// The config is out of range.
    #[error("bad simulation config: {0}")]
    Config(&'static str),
}

/// Runs one simulation.
pub fn run(cfg: &SimConfig) -> Result<Report, SimError> {
    validate(cfg)?;
    let world = world::World::new(cfg.seed, cfg.core_config(), cfg.loss, cfg.check);
    let mut sc = scenario::Scenario::new(cfg, world);
    sc.build()?;
    sc.provide()?;
    let span = match cfg.churn_half_life_h {
        Some(h) => {
            sc.start_churn(h);
            cfg.core_config().refresh.0
        }
        None => cfg.lookups as u64 * scenario::LOOKUP_GAP_MS,
    };
    sc.measure(scenario::MAIN, span)?;
    if let Some(fraction) = cfg.kill {
        kill_and_measure(&mut sc, fraction, cfg)?;
    }
    Ok(report(cfg, &sc))
}

fn validate(cfg: &SimConfig) -> Result<(), SimError> {
    if cfg.nodes < 2 {
        return Err(SimError::Config("at least 2 nodes"));
    }
    if cfg.lookups < 2 {
        return Err(SimError::Config("at least 2 lookups"));
    }
    if !(0.0..1.0).contains(&cfg.loss) {
        return Err(SimError::Config("loss must be in [0, 1)"));
    }
    if cfg.kill.is_some_and(|f| !(0.0..1.0).contains(&f)) {
        return Err(SimError::Config("kill must be in [0, 1)"));
    }
    if cfg
        .churn_half_life_h
        .is_some_and(|h| h.is_nan() || h <= 0.0)
    {
        return Err(SimError::Config("churn half-life must be > 0"));
    }
    Ok(())
}

fn kill_and_measure(
    sc: &mut scenario::Scenario<'_>,
    fraction: f64,
    cfg: &SimConfig,
) -> Result<(), SimError> {
    let span = cfg.lookups as u64 * scenario::LOOKUP_GAP_MS;
    sc.kill(fraction);
    sc.measure(scenario::AFTER_KILL, span)?;
    let after = sc.world.now() + cfg.core_config().refresh.0;
    sc.advance(after)?;
    sc.measure(scenario::AFTER_REFRESH, span)
}

fn report(cfg: &SimConfig, sc: &scenario::Scenario<'_>) -> Report {
    let main = sc.phases[scenario::MAIN].summary();
    let killed = cfg.kill.is_some();
    let success_of = |phase: usize| killed.then(|| sc.phases[phase].summary().success);
    let after_kill = killed.then(|| sc.phases[scenario::AFTER_KILL].summary());
    let kill_u32 = |f: fn(&metrics::Summary) -> u32| after_kill.as_ref().map(f);
    let kill_u64 = |f: fn(&metrics::Summary) -> u64| after_kill.as_ref().map(f);
    let mut rng = rng::Rng::new(cfg.seed ^ 0x5254_545f);
    Report {
        nodes: cfg.nodes,
        seed: cfg.seed,
        lookups: main.lookups,
        hops_median: main.hops_median,
        hops_p90: main.hops_p90,
        hops_p99: main.hops_p99,
        latency_ms_median: main.latency_ms_median,
        latency_ms_p90: main.latency_ms_p90,
        rtt_ms_median: sc.world.latency.median_rtt_ms(&mut rng, 10_000),
        success: main.success,
        success_providers: main.success_providers,
        success_nodes: main.success_nodes,
        messages_per_lookup: main.messages_per_lookup,
        success_after_kill: success_of(scenario::AFTER_KILL),
        success_after_refresh: success_of(scenario::AFTER_REFRESH),
        hops_median_after_kill: kill_u32(|s| s.hops_median),
        hops_p90_after_kill: kill_u32(|s| s.hops_p90),
        latency_ms_median_after_kill: kill_u64(|s| s.latency_ms_median),
        latency_ms_p90_after_kill: kill_u64(|s| s.latency_ms_p90),
        messages_per_lookup_after_kill: after_kill.as_ref().map(|s| s.messages_per_lookup),
        loss: cfg.loss,
        kill: cfg.kill,
        churn_half_life_h: cfg.churn_half_life_h,
        disjoint: cfg.disjoint,
        lookups_orphaned: sc.phases.iter().map(|p| p.orphaned).sum(),
        nodes_alive_end: sc.live_count(),
        nodes_created: sc.world.len(),
        messages: sc.world.messages,
        events: sc.world.events,
        sim_time_s: sc.world.now() as f64 / 1000.0,
        trace_hash: sc.world.trace_hash(),
    }
}
