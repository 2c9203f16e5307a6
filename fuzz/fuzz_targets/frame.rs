//! Fuzz target `frame`: see `fossa_net::fuzz::frame` for what it checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fossa_net::fuzz::frame(data));
