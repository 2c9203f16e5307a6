//! Fuzz target `members_file`: see `fossa_net::fuzz::members_file` for what it checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fossa_net::fuzz::members_file(data));
