//! Fuzz target `volume_key`: see `fossa_fs::fuzz::volume_key` for what it checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fossa_fs::fuzz::volume_key(data));
