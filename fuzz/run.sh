#!/usr/bin/env bash
# Runs every fuzz target for N seconds each (default 60), one after the other, then
# minimizes each corpus (`cargo fuzz cmin`). A crash stops the script with libFuzzer's report;
# the input is in fuzz/artifacts/<target>/. Needs nightly and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Usage: fuzz/run.sh [seconds] [target...]    (targets default to all of fuzz_targets/)
#        fuzz/run.sh --seed                   (writes seed inputs into the corpora first)
set -euo pipefail
cd "$(dirname "$0")"
if [[ "${1:-}" == "--seed" ]]; then
    for p in fossa-fs fossa-net; do
        (cd .. && cargo test -p "$p" --test fuzz_corpus -- --ignored write_seeds)
    done
    exit 0
fi
secs="${1:-60}"
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=($(cargo +nightly fuzz list))
fi
# One input may allocate at most 256 MiB at once: every decoder bounds what it allocates.
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== $t: ${secs}s"
    cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -malloc_limit_mb=256 \
        -rss_limit_mb=2048 -print_final_stats=1 2>&1 | grep -E '^(stat::|#[0-9]+ +DONE|==|SUMMARY|Done)' || true
    if ls "artifacts/$t"/crash-* "artifacts/$t"/oom-* "artifacts/$t"/timeout-* >/dev/null 2>&1; then
        echo "!! $t: crash inputs in fuzz/artifacts/$t/" >&2
        exit 1
    fi
    cargo +nightly fuzz cmin "$t" >/dev/null 2>&1
    echo "   corpus: $(ls "corpus/$t" | wc -l) files"
done
