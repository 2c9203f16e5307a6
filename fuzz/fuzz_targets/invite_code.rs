//! Fuzz target `invite_code`: see `fossa_net::fuzz::invite_code` for what it checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fossa_net::fuzz::invite_code(data));
