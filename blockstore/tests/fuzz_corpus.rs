//! Replays the committed fuzz corpora of this crate's targets (`fuzz/replay.rs`).
#[path = "../../fuzz/replay.rs"]
mod replay;

#[test]
fn committed_corpora_replay_cleanly() {
    replay::corpora(blockstore::fuzz::TARGETS);
}
