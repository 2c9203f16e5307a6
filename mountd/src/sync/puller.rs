//! The pull thread: after every apply it invalidates the kernel's caches of what changed, then
//! fetches the blocks that live files need and the store lacks (`SyncHandle::missing`) and stores
//! each as it arrives, until none are missing. Missing blocks are found again from the metadata
//! after a restart, so an interrupted pull resumes without refetching what is stored.
use super::backoff::{Backoff, Throttle};
use super::source::{NetHandle, keep};
use blockstore::{BlockId, BlockStore, StoreError};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, select};
use fossa_fs::Fs;
use fossa_fs::sync::ApplyReport;
use fossa_net::{BlockSink, FetchError};
use fuser::{INodeNo, Notifier};
use std::collections::{HashSet, VecDeque};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::task::AbortHandle;

/// Most missing ids listed by one walk of the incomplete files. A walk reads every pointer
/// block of those files, so the pull lists many at once and walks again only when they are
/// used up (or when a fetch ends, since arrived pointer blocks reveal more).
const LIST: usize = 4096;
/// Ids handed to one fetch (two streams of 64).
const FETCH: usize = 128;
/// Fetches running at once: about 32 MiB in flight, eight streams.
const FETCHES: usize = 4;
/// Deadline of one fetch; blocks that arrived in time are kept either way.
const FETCH_DEADLINE: Duration = Duration::from_secs(60);
/// Longest time fetched blocks stay uncommitted while a pull is running.
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// First wait before retrying when no peer had the blocks; doubled per failed fetch.
const RETRY: Duration = Duration::from_secs(2);
/// Longest wait before retrying failed fetches.
const RETRY_MAX: Duration = Duration::from_secs(60);
/// While the store is full, free space is looked at this often (no network traffic).
const FULL_POLL: Duration = Duration::from_secs(1);
/// Free space that must return, over what was free once the pause began, to resume.
const RESUME_ROOM: u64 = 16 << 20;
/// After this long a pause also ends with [`RESUME_ROOM`] free in all, even if that was free
/// at its start (the store may have failed for a reason that went away); doubled per
/// consecutive pause, up to [`FULL_WAIT_MAX`].
const FULL_WAIT: Duration = Duration::from_secs(10);
/// Longest such pause.
const FULL_WAIT_MAX: Duration = Duration::from_secs(600);
/// Test knob: set to leave blocks remote until read (docs/cli.md).
pub(crate) const NO_PULL_ENV: &str = "FOSSA_SYNC_NO_PULL";

/// What the pull thread is told.
pub(crate) enum PullMsg {
    /// Peer updates were applied.
    Applied(ApplyReport),
    /// Finish.
    Stop,
}

/// What running fetches and the storing thread report to the pull thread.
enum Fetched {
    /// A fetch ended; `failed` were not fetched.
    Done {
        asked: Vec<BlockId>,
        failed: Vec<(BlockId, FetchError)>,
    },
    /// The storing thread stored a block, as asked ([`Storer::wake_on_store`]).
    Stored,
}

/// What the pull thread works with.
pub(crate) struct Puller {
    /// The filesystem core.
    pub(crate) fs: Arc<Fs>,
    /// The local store.
    pub(crate) store: Arc<BlockStore>,
    /// The node.
    pub(crate) net: NetHandle,
    /// The mount's notifier, set once mounted.
    pub(crate) notifier: Arc<OnceLock<Notifier>>,
    /// Only invalidate, never pull ([`NO_PULL_ENV`]).
    pub(crate) no_pull: bool,
}

/// The state of the pull.
struct Pull {
    /// Listed missing ids not yet asked for.
    queue: VecDeque<BlockId>,
    /// Ids asked for and not yet arrived or given up.
    in_flight: HashSet<BlockId>,
    /// Fetches running.
    fetches: usize,
    /// The files may have more missing blocks than the queue holds: walk them again.
    stale: bool,
    /// No fetch starts and no walk runs before this (a fetch failed or a walk did).
    retry_at: Option<Instant>,
    /// Fetches ended (so blocks may have been stored) since the storing thread was last told
    /// to commit.
    uncommitted: bool,
    /// Delay before retrying after failed fetches.
    retry: Backoff,
    /// The store is full: no fetch starts until room returns.
    paused: Option<Paused>,
    /// How long a pause lasts without room seen; doubled per consecutive pause.
    full_wait: Backoff,
    /// Fetches started (finished ones are pruned as new ones start).
    running: Vec<AbortHandle>,
}

/// A pull paused because the store is full (docs/protocol.md, "Block streams"): nothing is
/// fetched for the store until free space has grown by [`RESUME_ROOM`] or the pause's time
/// is up, so a full device does not ask peers for blocks it cannot keep.
struct Paused {
    /// Free bytes at the first look after the pause began (the store's rollback done).
    baseline: Option<u64>,
    /// Next look at free space.
    check_at: Instant,
    /// Resume at this time even without room seen.
    until: Instant,
}

/// What the storing thread is given.
enum ToStore {
    /// A fetched block, checked against its id.
    Block(BlockId, bytes::Bytes),
    /// Commit now (the pull is idle).
    Commit,
}

/// No fetch starts while this many fetched blocks wait for the storing thread (64 MiB at the
/// average chunk size): arrivals queue while a commit's fsync runs, so the network does not
/// wait for the disk, but a disk slower than the network does hold the pull back.
const STORE_QUEUE: usize = 1024;

/// The storing thread: puts fetched blocks and commits about once a second. Fetches hand it
/// each block directly; it is separate from the pull thread because a commit holds the store
/// through an fsync, and fetching must go on meanwhile.
struct Storer {
    tx: Sender<ToStore>,
    shared: Arc<StoreShared>,
    thread: JoinHandle<()>,
}

/// What the pull thread and the storing thread share.
#[derive(Default)]
struct StoreShared {
    /// Ids handed over and not yet in the store (a walk must not list them again).
    pending: parking_lot::Mutex<HashSet<BlockId>>,
    /// Send [`Fetched::Stored`] after the next block is stored.
    wake: std::sync::atomic::AtomicBool,
    /// The store ran out of space: blocks handed over are dropped until the pull resumes.
    full: std::sync::atomic::AtomicBool,
}

impl Storer {
    fn spawn(store: Arc<BlockStore>, stored: Sender<Fetched>) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared: Arc<StoreShared> = Arc::default();
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fossa-pull-store".into())
            .spawn(move || store_blocks(&store, &rx, &theirs, &stored))?;
        Ok(Storer { tx, shared, thread })
    }

    /// Where fetches hand their blocks (checked against their ids by `fetch_blocks_each`).
    fn sink(&self) -> BlockSink {
        let (tx, shared) = (self.tx.clone(), self.shared.clone());
        Arc::new(move |id, data| {
            shared.pending.lock().insert(id);
            if tx.send(ToStore::Block(id, data)).is_err() {
                shared.pending.lock().remove(&id);
            }
        })
    }

    /// Blocks waiting to be stored.
    fn backlog(&self) -> usize {
        self.shared.pending.lock().len()
    }

    /// Asks for a [`Fetched::Stored`] after the next block is stored; false if none is waiting
    /// (no such message would come).
    fn wake_on_store(&self) -> bool {
        self.shared
            .wake
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.backlog() > 0
    }

    fn commit(&self) {
        let _ = self.tx.send(ToStore::Commit);
    }

    /// Whether the store ran out of space since the pull last resumed.
    fn is_full(&self) -> bool {
        self.shared.full.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Lets the storing thread store again.
    fn resume(&self) {
        self.shared
            .full
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stores what is queued, commits, and ends the thread.
    fn finish(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }
}

fn store_blocks(
    store: &BlockStore,
    rx: &Receiver<ToStore>,
    shared: &StoreShared,
    stored: &Sender<Fetched>,
) {
    let mut last_commit = Instant::now();
    let mut uncommitted = 0usize;
    let commit = |n: &mut usize, last: &mut Instant| {
        *last = Instant::now();
        match store.commit() {
            Ok(()) => *n = 0,
            Err(e) => store_failed(shared, &e, "committing fetched blocks failed"),
        }
    };
    loop {
        let msg = match uncommitted {
            0 => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            _ => rx.recv_timeout(COMMIT_EVERY.saturating_sub(last_commit.elapsed())),
        };
        let asked = matches!(msg, Ok(ToStore::Commit));
        match msg {
            // Fetched blocks are a copy of what peers hold: losing the uncommitted ones in a
            // crash only costs a refetch, so commit about once a second, not per block.
            Ok(ToStore::Block(id, data)) => {
                // While full, blocks already on their way are dropped: they would fail too.
                if !shared.full.load(std::sync::atomic::Ordering::SeqCst) {
                    match keep(store, id, &data) {
                        Ok(()) => uncommitted += 1,
                        Err(e) => store_failed(shared, &e, "could not store a fetched block"),
                    }
                }
                shared.pending.lock().remove(&id);
                if shared.wake.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    let _ = stored.send(Fetched::Stored);
                }
            }
            Ok(ToStore::Commit) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if uncommitted > 0 {
                    commit(&mut uncommitted, &mut last_commit);
                }
                return;
            }
        }
        if uncommitted > 0 && (asked || last_commit.elapsed() >= COMMIT_EVERY) {
            commit(&mut uncommitted, &mut last_commit);
        }
    }
}

/// Failures to store other than a full disk: one log line a minute.
static STORE_FAILED: Throttle = Throttle::new(Duration::from_secs(60));

/// A failed put or commit: a full disk pauses the pull (logged once, by the pull thread);
/// other failures are logged at most once a minute.
fn store_failed(shared: &StoreShared, e: &StoreError, what: &str) {
    if matches!(e, StoreError::NoSpace(_)) {
        shared.full.store(true, std::sync::atomic::Ordering::SeqCst);
    } else if let Some(left_out) = STORE_FAILED.allow() {
        tracing::warn!(error = %e, left_out, "{what}");
    }
}

impl Puller {
    /// Starts the thread.
    pub(crate) fn spawn(self, rx: Receiver<PullMsg>) -> std::io::Result<JoinHandle<()>> {
        let (tx, fetched) = crossbeam_channel::unbounded();
        let storer = Storer::spawn(self.store.clone(), tx.clone())?;
        std::thread::Builder::new()
            .name("fossa-pull".into())
            .spawn(move || {
                self.run(&rx, &storer, (&tx, &fetched));
                storer.finish();
            })
    }

    fn run(
        &self,
        rx: &Receiver<PullMsg>,
        storer: &Storer,
        (tx, fetched): (&Sender<Fetched>, &Receiver<Fetched>),
    ) {
        let mut p = Pull {
            queue: VecDeque::new(),
            in_flight: HashSet::new(),
            fetches: 0,
            stale: true,
            retry_at: None,
            uncommitted: false,
            retry: Backoff::new(RETRY, RETRY_MAX),
            paused: None,
            full_wait: Backoff::new(FULL_WAIT, FULL_WAIT_MAX),
            running: Vec::new(),
        };
        loop {
            if !self.no_pull {
                self.top_up(&mut p, tx, storer);
            }
            // While fetches run, every arrival wakes the thread; else sleep until told, or
            // until a retry is due.
            let wait = match p.fetches {
                0 => p
                    .retry_at
                    .map(|t| t.saturating_duration_since(Instant::now())),
                _ => None,
            };
            let timer = wait.map_or(crossbeam_channel::never(), crossbeam_channel::after);
            select! {
                recv(rx) -> m => match m {
                    Ok(PullMsg::Applied(r)) => {
                        self.invalidate(&r);
                        // What the queue holds may be stale now: list afresh.
                        p.queue.clear();
                        p.stale = true;
                        p.retry_at = None;
                    }
                    Ok(PullMsg::Stop) | Err(_) => return,
                },
                recv(fetched) -> f => {
                    if let Ok(f) = f {
                        take(&mut p, f);
                    }
                }
                recv(timer) -> _ => {}
            }
            while let Ok(f) = fetched.try_recv() {
                take(&mut p, f);
            }
            // Idle: make what arrived durable now rather than at the next tick.
            if p.uncommitted && p.fetches == 0 {
                storer.commit();
                p.uncommitted = false;
            }
        }
    }

    /// Starts fetches from the queue, walking the files for more when it runs dry.
    fn top_up(&self, p: &mut Pull, tx: &Sender<Fetched>, storer: &Storer) {
        if storer.is_full() && p.paused.is_none() {
            self.pause(p);
        }
        if p.paused.is_some() && !self.may_resume(p, storer) {
            return;
        }
        if p.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        p.retry_at = None;
        while p.fetches < FETCHES {
            if storer.backlog() >= STORE_QUEUE {
                if storer.wake_on_store() {
                    return;
                }
                continue;
            }
            if p.queue.is_empty() && p.stale {
                p.stale = false;
                let busy = p.in_flight.len() + storer.backlog();
                match self.fs.sync_handle().missing(LIST + busy) {
                    Ok(ids) => {
                        let storing = storer.shared.pending.lock();
                        let mut waiting = false;
                        p.queue.extend(
                            ids.into_iter()
                                .filter(|id| {
                                    let stored_soon = storing.contains(id);
                                    waiting |= stored_soon;
                                    !p.in_flight.contains(id) && !stored_soon
                                })
                                .take(LIST),
                        );
                        drop(storing);
                        // Only blocks on their way into the store are missing: walk again once
                        // one is in (it may be a pointer block naming more).
                        if p.queue.is_empty() && waiting && !storer.wake_on_store() {
                            p.stale = true;
                            continue;
                        }
                        if p.queue.is_empty() && p.in_flight.is_empty() && !waiting {
                            // The pull is complete: the next full disk starts a short pause.
                            p.full_wait.reset();
                        }
                    }
                    Err(e) => {
                        if let Some(left_out) = STORE_FAILED.allow() {
                            tracing::warn!(error = %e, left_out, "listing missing blocks failed");
                        }
                        p.stale = true;
                        p.retry_at = Some(Instant::now() + p.retry.fail());
                        return;
                    }
                }
            }
            if p.queue.is_empty() {
                return;
            }
            let n = p.queue.len().min(FETCH);
            let ids: Vec<BlockId> = p.queue.drain(..n).collect();
            p.in_flight.extend(ids.iter().copied());
            p.fetches += 1;
            p.running.retain(|f| !f.is_finished());
            p.running.push(self.start(ids, tx.clone(), storer.sink()));
        }
    }

    /// The store is full: stop fetching until room returns (logged once per pause).
    fn pause(&self, p: &mut Pull) {
        let now = Instant::now();
        let wait = p.full_wait.fail();
        p.paused = Some(Paused {
            baseline: None,
            check_at: now + FULL_POLL,
            until: now + wait,
        });
        p.queue.clear();
        p.stale = true;
        p.retry_at = Some(now + FULL_POLL);
        // Blocks still on the wire could not be kept either: stop them.
        for f in p.running.drain(..) {
            f.abort();
        }
        tracing::warn!(
            free = self.free_bytes(),
            retry_in = ?wait,
            "the block store is full: fetching paused until there is room"
        );
    }

    /// Whether a paused pull may fetch again: free space grew by [`RESUME_ROOM`] since the
    /// pause began, or the pause's time is up. Otherwise sets the next look.
    fn may_resume(&self, p: &mut Pull, storer: &Storer) -> bool {
        let now = Instant::now();
        let Some(paused) = p.paused.as_mut() else {
            return true;
        };
        if now < paused.check_at {
            p.retry_at = Some(paused.check_at);
            return false;
        }
        let free = self.free_bytes();
        let baseline = *paused.baseline.get_or_insert(free);
        let room = free >= baseline.saturating_add(RESUME_ROOM);
        // Once the pause's time is up, any room at all will do.
        let time_up = now >= paused.until && free >= RESUME_ROOM;
        if !room && !time_up {
            paused.check_at = now + FULL_POLL;
            p.retry_at = Some(paused.check_at);
            return false;
        }
        tracing::info!(free, "room in the block store again: fetching resumed");
        p.paused = None;
        p.retry_at = None;
        p.stale = true;
        storer.resume();
        true
    }

    /// Free bytes on the store's filesystem (0 if unknown).
    fn free_bytes(&self) -> u64 {
        self.fs
            .statfs()
            .map_or(0, |s| s.bavail.saturating_mul(u64::from(s.bsize)))
    }

    /// Fetches `ids` on the runtime, each block handed to the storing thread as it arrives.
    /// The handle aborts the fetch (its streams close, so the peer stops sending).
    fn start(&self, ids: Vec<BlockId>, tx: Sender<Fetched>, sink: BlockSink) -> AbortHandle {
        let node = self.net.node.clone();
        let asked = ids.clone();
        let fetch = self
            .net
            .rt
            .spawn(async move { node.fetch_blocks_each(&asked, FETCH_DEADLINE, sink).await });
        let abort = fetch.abort_handle();
        self.net.rt.spawn(async move {
            // An aborted fetch failed nothing: its ids are listed again when the pull resumes.
            let failed = fetch.await.unwrap_or_default();
            let _ = tx.send(Fetched::Done { asked: ids, failed });
        });
        abort
    }

    /// Drops the kernel's cached attributes, pages and names of what the apply changed.
    fn invalidate(&self, r: &ApplyReport) {
        let Some(n) = self.notifier.get() else {
            return;
        };
        for &ino in &r.changed_inodes {
            quiet(n.inval_inode(INodeNo(ino), 0, 0));
        }
        for (parent, name) in &r.changed_entries {
            quiet(n.inval_entry(INodeNo(*parent), OsStr::from_bytes(name)));
        }
    }
}

fn take(p: &mut Pull, f: Fetched) {
    match f {
        Fetched::Stored => p.stale = true,
        Fetched::Done { asked, failed } => {
            p.fetches -= 1;
            p.uncommitted = true;
            for id in &asked {
                p.in_flight.remove(id);
            }
            // Arrived pointer blocks name blocks no walk has listed yet.
            p.stale = true;
            match failed.first() {
                Some((id, e)) => {
                    let wait = p.retry.fail();
                    tracing::debug!(failed = failed.len(), block = %id, error = %e, retry_in = ?wait, "blocks not fetched");
                    p.retry_at = Some(Instant::now() + wait);
                }
                None => p.retry.reset(),
            }
        }
    }
}

/// ENOENT means the kernel had nothing cached: not an error.
fn quiet(r: std::io::Result<()>) {
    if let Err(e) = r
        && e.raw_os_error() != Some(libc::ENOENT)
    {
        tracing::debug!(error = %e, "cache invalidation failed");
    }
}
