//! Fuzz target `sealed`: see `fossa_fs::fuzz::sealed` for what it checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fossa_fs::fuzz::sealed(data));
