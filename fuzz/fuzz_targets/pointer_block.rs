//! Fuzz target `pointer_block`: see `fossa_fs::fuzz::pointer_block` for what it checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fossa_fs::fuzz::pointer_block(data));
