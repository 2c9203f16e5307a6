//! Fuzz target `file_content`: see `fossa_fs::fuzz::file_content` for what it checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fossa_fs::fuzz::file_content(data));
