//! Replays the committed fuzz corpora of this crate's targets (`fuzz/replay.rs`).
#[path = "../../fuzz/replay.rs"]
mod replay;

#[test]
fn committed_corpora_replay_cleanly() {
    replay::corpora(fossa_net::fuzz::TARGETS);
}

/// Writes the seed inputs into `fuzz/corpus/<target>/seed-N` (run by `fuzz/run.sh --seed`).
#[test]
#[ignore = "writes seed files into fuzz/corpus; run by fuzz/run.sh --seed"]
fn write_seeds() {
    replay::write_seeds(fossa_net::fuzz::seeds());
}

#[test]
fn seeds_pass_their_targets() {
    replay::seeds_pass(fossa_net::fuzz::TARGETS, fossa_net::fuzz::seeds());
}
