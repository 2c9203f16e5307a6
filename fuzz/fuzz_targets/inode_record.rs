//! Fuzz target `inode_record`: see `fossa_fs::fuzz::inode_record` for what it checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fossa_fs::fuzz::inode_record(data));
