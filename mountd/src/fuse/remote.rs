//! Reads that need blocks from peers, answered off the FUSE session threads.
//!
//! A session thread tries every read with [`Fs::read_local`], which never waits on the
//! network. When blocks are missing it hands the reply here and goes back to the kernel at
//! once: a task on the daemon's runtime fetches the blocks under the read's deadline
//! ([`NetSource::fetch_missing`]), reads again on the blocking pool (local disk and
//! decryption only) and replies; each level of the file's tree that was missing costs one
//! more round. So a frozen peer holds tasks, never a session thread, and `ls` or a read of
//! local data keeps answering.
//!
//! A waiting read ends early when its reader is gone (fuser 0.18 answers the kernel's
//! `FUSE_INTERRUPT` with ENOSYS itself, so the task watches the reader's process instead:
//! gone, a zombie, or SIGKILL pending) and when the daemon stops ([`RemoteReads::stop`]).
use super::errno;
use crate::sync::{FetchError, NetSource};
use blockstore::BlockId;
use fossa_fs::{Fs, FsError, LocalRead};
use fuser::{Errno, ReplyData};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};

/// How often a waiting read checks that its reader is still there.
const READER_POLL: Duration = Duration::from_millis(100);
/// Re-reads running at once on the blocking pool (each reads at most 1 MiB locally).
const REREADS: usize = 8;

/// The arguments of a handed-off `read`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadArgs {
    pub(crate) ino: u64,
    pub(crate) fh: u64,
    pub(crate) offset: u64,
    pub(crate) size: u32,
    /// The reader's thread id (0: the kernel's own request).
    pub(crate) pid: u32,
}

/// Why a handed-off read got no data.
#[derive(Debug)]
enum Failed {
    Fetch(FetchError),
    Fs(FsError),
    /// The reader was killed or exited.
    ReaderGone,
    /// The daemon is stopping.
    Stopping,
    /// The re-read task panicked.
    Lost,
}

/// Hands reads whose blocks are not local to tasks on the daemon's runtime.
pub(crate) struct RemoteReads {
    fs: Arc<Fs>,
    source: Arc<NetSource>,
    stopping: watch::Sender<bool>,
    rereads: Arc<Semaphore>,
}

impl RemoteReads {
    /// Reads of `fs` whose missing blocks come through `source`.
    pub(crate) fn new(fs: Arc<Fs>, source: Arc<NetSource>) -> Self {
        RemoteReads {
            fs,
            source,
            stopping: watch::Sender::new(false),
            rereads: Arc::new(Semaphore::new(REREADS)),
        }
    }

    /// Fails every waiting read with EIO, and from now on every read that needs the network
    /// at once (EIO, not EINTR: readers such as `cat` retry EINTR, and would never close).
    pub(crate) fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Answers `reply` once `missing` (and whatever else the read turns out to need) has
    /// arrived, or with an error at the deadline. Returns at once.
    pub(crate) fn hand_off(
        self: &Arc<Self>,
        args: ReadArgs,
        missing: Vec<BlockId>,
        reply: ReplyData,
    ) {
        let (Some(rt), Some(_)) = (self.source.runtime(), missing.first()) else {
            let e = missing.first().map(|id| FetchError::Offline(*id));
            return reply.error(e.map_or(Errno::EIO, |e| fetch_errno(args.ino, e)));
        };
        if *self.stopping.borrow() {
            return reply.error(Errno::EIO);
        }
        let this = self.clone();
        rt.spawn(async move {
            let cancel = cancelled(this.stopping.subscribe(), args.pid);
            let r = tokio::select! {
                r = this.fetch_and_read(args, missing) => r,
                why = cancel => Err(why),
            };
            match r {
                Ok(data) => reply.data(&data),
                Err(e) => reply.error(failed_errno(args.ino, e)),
            }
        });
    }

    /// Rounds of fetch, then read again, until the read finds everything local.
    async fn fetch_and_read(
        &self,
        a: ReadArgs,
        mut missing: Vec<BlockId>,
    ) -> Result<Vec<u8>, Failed> {
        let deadline = Instant::now() + self.source.deadline();
        loop {
            self.source
                .fetch_missing(&missing, deadline)
                .await
                .map_err(Failed::Fetch)?;
            let _slot = self.rereads.acquire().await.map_err(|_| Failed::Stopping)?;
            let fs = self.fs.clone();
            let read = move || fs.read_local(a.ino, a.fh, a.offset, a.size);
            match tokio::task::spawn_blocking(read).await {
                Ok(Ok(LocalRead::Data(d))) => return Ok(d),
                Ok(Ok(LocalRead::Missing(m))) => missing = m,
                Ok(Err(e)) => return Err(Failed::Fs(e)),
                Err(_) => return Err(Failed::Lost),
            }
        }
    }
}

/// Resolves when the daemon stops or the reader `pid` is gone.
async fn cancelled(mut stopping: watch::Receiver<bool>, pid: u32) -> Failed {
    let mut tick = tokio::time::interval(READER_POLL);
    loop {
        tokio::select! {
            _ = stopping.wait_for(|s| *s) => return Failed::Stopping,
            _ = tick.tick() => {
                if reader_gone(pid) {
                    return Failed::ReaderGone;
                }
            }
        }
    }
}

/// Whether thread `pid` has exited, is a zombie, or has SIGKILL pending (then the kernel
/// waits for our reply only to let it die).
fn reader_gone(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => status_says_gone(&status),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// [`reader_gone`] on the text of `/proc/PID/status`.
fn status_says_gone(status: &str) -> bool {
    let kill_bit = 1u64 << (libc::SIGKILL - 1);
    status.lines().any(|l| match l.split_once(':') {
        Some(("State", v)) => matches!(v.trim_start().chars().next(), Some('Z' | 'X')),
        Some(("SigPnd" | "ShdPnd", v)) => {
            u64::from_str_radix(v.trim(), 16).is_ok_and(|m| m & kill_bit != 0)
        }
        _ => false,
    })
}

/// The errno for a handed-off read that failed; the cause is logged here.
fn failed_errno(ino: u64, e: Failed) -> Errno {
    match e {
        Failed::Fetch(f) => fetch_errno(ino, f),
        Failed::Fs(e) => errno::errno("read", ino, e),
        Failed::ReaderGone => Errno::EINTR,
        Failed::Stopping => {
            tracing::info!(ino, "read: daemon stopping, remote blocks not awaited");
            Errno::EIO
        }
        Failed::Lost => {
            tracing::error!(ino, "read: the re-read task panicked");
            Errno::EIO
        }
    }
}

/// ETIMEDOUT when the deadline passed (a retry may succeed once a peer answers); EIO, with
/// the cause logged, when no peer is there to ask, none has the block, or it was not stored.
fn fetch_errno(ino: u64, e: FetchError) -> Errno {
    match e {
        FetchError::Timeout(_) => {
            tracing::warn!(ino, error = %e, "read timed out");
            Errno::from_i32(libc::ETIMEDOUT)
        }
        _ => {
            tracing::error!(ino, error = %e, "read: remote block not available");
            Errno::EIO
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: &str, sigpnd: &str, shdpnd: &str) -> String {
        format!("Name:\tcat\nState:\t{state}\nSigPnd:\t{sigpnd}\nShdPnd:\t{shdpnd}\n")
    }

    #[test]
    fn a_reader_is_gone_when_dead_dying_or_killed() {
        let none = "0000000000000000";
        let kill = "0000000000000100";
        let term = "0000000000004000";
        assert!(!status_says_gone(&status("S (sleeping)", none, none)));
        assert!(!status_says_gone(&status("D (disk sleep)", term, term)));
        assert!(status_says_gone(&status("D (disk sleep)", kill, none)));
        assert!(status_says_gone(&status("D (disk sleep)", none, kill)));
        assert!(status_says_gone(&status("Z (zombie)", none, none)));
        assert!(!reader_gone(std::process::id()));
        assert!(!reader_gone(0));
    }
}
