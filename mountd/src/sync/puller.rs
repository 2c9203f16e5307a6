//! The pull thread: after every apply it invalidates the kernel's caches of what changed, then
//! fetches the blocks that live files need and the store lacks (`Fs::sync_missing`) and stores
//! each as it arrives, until none are missing. Missing blocks are found again from the metadata
//! after a restart, so an interrupted pull resumes without refetching what is stored.
use super::source::{NetHandle, keep};
use blockstore::{BlockId, BlockStore};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, select};
use fossa_fs::Fs;
use fossa_fs::sync::ApplyReport;
use fossa_net::{BlockSink, NetError};
use fuser::{INodeNo, Notifier};
use std::collections::{HashSet, VecDeque};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
/// Wait before retrying when no peer had the blocks.
const RETRY: Duration = Duration::from_secs(2);
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
        failed: Vec<(BlockId, NetError)>,
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
            Err(e) => tracing::warn!(error = %e, "committing fetched blocks failed"),
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
                keep(store, id, &data);
                shared.pending.lock().remove(&id);
                if shared.wake.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    let _ = stored.send(Fetched::Stored);
                }
                uncommitted += 1;
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
                match self.fs.sync_missing(LIST + busy) {
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
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "listing missing blocks failed");
                        p.stale = true;
                        p.retry_at = Some(Instant::now() + RETRY);
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
            self.start(ids, tx.clone(), storer.sink());
        }
    }

    /// Fetches `ids` on the runtime, each block handed to the storing thread as it arrives.
    fn start(&self, ids: Vec<BlockId>, tx: Sender<Fetched>, sink: BlockSink) {
        let node = self.net.node.clone();
        self.net.rt.spawn(async move {
            let failed = node.fetch_blocks_each(&ids, FETCH_DEADLINE, sink).await;
            let _ = tx.send(Fetched::Done { asked: ids, failed });
        });
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
            if let Some((id, e)) = failed.first() {
                tracing::debug!(failed = failed.len(), block = %id, error = %e, "blocks not fetched");
                p.retry_at = Some(Instant::now() + RETRY);
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
