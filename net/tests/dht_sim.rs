//! The DHT core in the deterministic simulator at 1,000 nodes, with every invariant checked
//! after every event (`SimConfig::check`): same seed, same run; targets met. The two tests
//! run in parallel (the checked run is the long one: the core's `check_invariants` after
//! each of its ~500,000 events).

use fossa_net::dht::sim::{Report, SimConfig, run};

const CI_SEED: u64 = 18;

/// The trace hash of the CI run. It changes whenever the core's or the simulator's behaviour
/// changes (any message, timer or order): update it deliberately in the commit that makes
/// such a change, after checking the other figures of the run still hold.
const CI_TRACE_HASH: &str = "c407876265b6fe09207f2323923a9fa1a79c265b0d033dc645a52c24502d0828";

fn ci_config(seed: u64, check: bool) -> SimConfig {
    let mut cfg = SimConfig::new(1000, seed);
    cfg.lookups = 200;
    cfg.check = check;
    cfg
}

fn ci_run(seed: u64, check: bool) -> Report {
    match run(&ci_config(seed, check)) {
        Ok(r) => r,
        Err(e) => panic!("simulation with seed {seed} (check {check}) failed: {e}"),
    }
}

fn assert_targets(r: &Report) {
    assert_eq!(r.lookups, 200, "every measured lookup ended: {r:?}");
    assert!(r.success >= 0.99, "success {} < 0.99: {r:?}", r.success);
    assert!((1..=4).contains(&r.hops_median), "hops median: {r:?}");
    assert!(r.hops_p90 <= 6, "hops p90: {r:?}");
    assert!(r.messages_per_lookup < 60.0, "messages per lookup: {r:?}");
}

/// Every core's and the simulator's invariants after every event (the run stops with an
/// error at the first broken one); the trace is the pinned one, so a checked run is the
/// same run as an unchecked one.
#[test]
fn checked_run_holds_every_invariant_and_meets_targets() {
    let checked = ci_run(CI_SEED, true);
    assert_targets(&checked);
    assert_eq!(
        checked.trace_hash, CI_TRACE_HASH,
        "the CI run's trace changed: {checked:?}"
    );
}

/// The same seed twice: the same report (JSON and trace hash); another seed: another trace.
#[test]
fn same_seed_same_run_other_seed_other_trace() {
    let first = ci_run(CI_SEED, false);
    let again = ci_run(CI_SEED, false);
    let json = |r: &Report| serde_json::to_string(r).expect("report serialises");
    assert_eq!(
        json(&first),
        json(&again),
        "two runs with the same seed differ"
    );
    assert_eq!(
        first.trace_hash, CI_TRACE_HASH,
        "the CI run's trace changed: {first:?}"
    );

    let other = ci_run(CI_SEED + 1, false);
    assert_ne!(
        first.trace_hash, other.trace_hash,
        "a different seed gave the same trace"
    );
    assert_targets(&other);
}
