//! Fuzz target `sync_records`: see `fossa_fs::fuzz::sync_records` for what it checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fossa_fs::fuzz::sync_records(data));
