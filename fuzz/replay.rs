//! The corpus replay shared by each crate's `tests/fuzz_corpus.rs` (included with `#[path]`):
//! every committed fuzz corpus file of the crate's targets (`fuzz/corpus/<target>/`) goes
//! through the same entry points the fuzz targets call, so that the normal (stable) test run
//! checks the corpora and the crash regressions in them without nightly or libFuzzer.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
use blockstore::fuzz::Target;
use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

/// Replays every committed corpus file of `targets`; a target's own assertion is the report.
pub(crate) fn corpora(targets: &[Target]) {
    for (name, f) in targets {
        let dir = corpus().join(name);
        // A target without a committed corpus yet (`fuzz/run.sh --seed` writes its seeds).
        let Ok(files) = std::fs::read_dir(&dir) else {
            eprintln!("no corpus committed for fuzz target {name}");
            continue;
        };
        let mut n = 0;
        for entry in files {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            eprintln!("replaying {}", path.display());
            f(&data);
            n += 1;
        }
        assert!(n > 0, "no corpus committed for fuzz target {name}");
    }
}

/// Writes `seeds` into `fuzz/corpus/<target>/seed-N` (run by `fuzz/run.sh --seed`).
pub(crate) fn write_seeds(seeds: Vec<(&'static str, Vec<u8>)>) {
    for (n, (name, data)) in seeds.into_iter().enumerate() {
        let dir = corpus().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{n}")), &data).unwrap();
    }
}

/// Every seed passes the target it is for.
pub(crate) fn seeds_pass(targets: &[Target], seeds: Vec<(&'static str, Vec<u8>)>) {
    for (name, data) in seeds {
        let (_, f) = targets
            .iter()
            .find(|(n, _)| *n == name)
            .expect("seed for an unknown target");
        f(&data);
    }
}
