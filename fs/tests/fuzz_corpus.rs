//! Replays every committed fuzz corpus file of this crate's targets (`fuzz/corpus/<target>/`)
//! through the same entry points the fuzz targets call, so that the normal (stable) test run
//! checks the corpora and the crash regressions in them without nightly or libFuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

#[test]
fn committed_corpora_replay_cleanly() {
    for (name, f) in fossa_fs::fuzz::TARGETS {
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
            // A panic names the file: the target's own assertion is the failure report.
            eprintln!("replaying {}", path.display());
            f(&data);
            n += 1;
        }
        assert!(n > 0, "no corpus committed for fuzz target {name}");
    }
}

/// Writes the seed inputs into `fuzz/corpus/<target>/seed-N` (run by `fuzz/run.sh --seed`).
#[test]
#[ignore = "writes seed files into fuzz/corpus; run by fuzz/run.sh --seed"]
fn write_seeds() {
    let mut n = 0;
    for (name, data) in fossa_fs::fuzz::seeds() {
        let dir = corpus().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{n}")), &data).unwrap();
        n += 1;
    }
}

#[test]
fn seeds_pass_their_targets() {
    for (name, data) in fossa_fs::fuzz::seeds() {
        let (_, f) = fossa_fs::fuzz::TARGETS
            .iter()
            .find(|(n, _)| *n == name)
            .expect("seed for an unknown target");
        f(&data);
    }
}
