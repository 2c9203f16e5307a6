//! Harness for fossa's end-to-end tests (`tests/tests/*.rs`).
//!
//! Every test runs the real `fossa` binary on a real FUSE mount inside its own temporary
//! directory, so tests run in parallel. Invariants the harness keeps:
//! - every wait is a bounded poll on something observable (`/proc/self/mountinfo`, process exit),
//!   never a bare sleep used as synchronisation;
//! - every external command runs under a deadline and is killed when it passes it;
//! - a mounted [`Volume`] has a watchdog that kills the daemon and lazily unmounts once the test
//!   deadline passes, so a hung filesystem turns into failing syscalls instead of a hung test;
//! - `Drop` always kills a leftover daemon and runs `fusermount3 -uz`, also on panic.
//!
//! The binary is `$FOSSA_BIN`, or `target/<profile>/fossa` next to the test executable.

mod data;
mod device;
mod keeper;
mod mounts;
mod node;
mod process;
mod sample;
pub mod tree;
mod volume;

pub use data::{hash_hex, random_bytes, set_mtime, write_synced};
pub use device::{Device, SYNC_TIMEOUT};
pub use keeper::Keeper;
pub use mounts::{TmpfsMount, fuse_mounted, lazy_unmount, mount_fstype};
pub use node::SwarmNode;
pub use process::{
    Output, assert_exit, assert_success, fossa, fossa_bin, require_tool, run, run_timeout,
    wait_until,
};
pub use sample::make_sample_tree;
pub use volume::{Volume, mount_expecting_failure};
