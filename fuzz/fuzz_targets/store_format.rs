//! Fuzz target `store_format`: see `blockstore::fuzz::store_format` for what it checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| blockstore::fuzz::store_format(data));
