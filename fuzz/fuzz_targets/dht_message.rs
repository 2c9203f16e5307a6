//! Fuzz target `dht_message`: see `fossa_net::fuzz::dht_message` for what it checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fossa_net::fuzz::dht_message(data));
