//! Fuzz target `snapshot_dir`: see `fossa_fs::fuzz::snapshot_dir` for what it checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fossa_fs::fuzz::snapshot_dir(data));
