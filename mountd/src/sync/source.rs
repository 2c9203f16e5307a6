//! [`NetSource`]: the `BlockSource` of a synced volume. Local blocks answer at once; a block
//! the store lacks is fetched from connected peers under a deadline (docs/protocol.md, "Block
//! streams"), checked against its id and kept as an own block.
use super::backoff::Throttle;
use blockstore::{BlockId, BlockSource, BlockStore, Class, StoreError, Unavailable};
use fossa_net::Node;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// Default deadline of a read that needs blocks from peers.
const FETCH_DEADLINE: Duration = Duration::from_secs(10);
/// Environment variable overriding [`FETCH_DEADLINE`], in milliseconds (tests, slow links).
pub(crate) const FETCH_TIMEOUT_ENV: &str = "FOSSA_FETCH_TIMEOUT_MS";

/// The running node and its runtime, set once the node has started.
#[derive(Clone)]
pub(crate) struct NetHandle {
    /// The node.
    pub(crate) node: Arc<Node>,
    /// The daemon's runtime.
    pub(crate) rt: tokio::runtime::Handle,
}

impl NetHandle {
    /// Fetches `ids` from peers, waiting at most `deadline` (plus a second of grace for the
    /// runtime). Safe on any thread, the runtime's included: the wait is a channel receive,
    /// never a `block_on`. Empty if the runtime went away or overran the deadline.
    pub(crate) fn fetch(
        &self,
        ids: Vec<BlockId>,
        deadline: Duration,
    ) -> Vec<(BlockId, Result<Vec<u8>, fossa_net::FetchError>)> {
        let (tx, rx) = mpsc::sync_channel(1);
        let node = self.node.clone();
        self.rt.spawn(async move {
            let got = node.fetch_blocks(&ids, deadline).await;
            let _ = tx.send(got);
        });
        rx.recv_timeout(deadline + Duration::from_secs(1))
            .unwrap_or_default()
    }
}

/// Why blocks a read needs could not be had from peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FetchError {
    /// The sync node is not running.
    Offline(BlockId),
    /// No connected peer sent the block before the deadline.
    Timeout(BlockId),
    /// No peer is connected.
    NoPeers(BlockId),
    /// Every connected peer was asked and none had it.
    NotFound(BlockId),
    /// A peer sent bytes that are not the block asked for.
    BadBytes(BlockId),
    /// The block arrived but could not be stored.
    NotKept(BlockId),
}

impl FetchError {
    /// The one place a network error becomes a fetch failure (docs/ARCHITECTURE.md, "Errors
    /// and errno"): a passed deadline stays a timeout, everything else is "not available".
    fn from_net(id: BlockId, e: &fossa_net::FetchError) -> Self {
        match e {
            e if e.is_timeout() => FetchError::Timeout(id),
            e if e.is_no_peers() => FetchError::NoPeers(id),
            e if e.bad_peer().is_some() => FetchError::BadBytes(id),
            _ => FetchError::NotFound(id),
        }
    }

    /// The store error a [`BlockSource`] read reports for this failure: a timeout stays one
    /// (ETIMEDOUT to the reader), the other causes are carried for the EIO log line.
    fn into_store(self) -> StoreError {
        let (id, cause) = match self {
            FetchError::Offline(id) => (id, Unavailable::Offline),
            FetchError::Timeout(id) => (id, Unavailable::TimedOut),
            FetchError::NoPeers(id) => (id, Unavailable::NoPeers),
            FetchError::NotFound(id) => (id, Unavailable::NotHeld),
            FetchError::BadBytes(id) => (id, Unavailable::BadBytes),
            FetchError::NotKept(id) => (id, Unavailable::NotKept),
        };
        StoreError::Unavailable { id, cause }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Offline(id) => write!(f, "block {id}: not local and no sync node"),
            FetchError::Timeout(id) => write!(f, "block {id}: no peer sent it in time"),
            FetchError::NoPeers(id) => write!(f, "block {id}: not local and no peer connected"),
            FetchError::NotFound(id) => write!(f, "block {id}: no connected peer has it"),
            FetchError::BadBytes(id) => {
                write!(f, "block {id}: a peer sent bytes that do not match")
            }
            FetchError::NotKept(id) => write!(f, "block {id}: fetched but not stored"),
        }
    }
}

/// How long a block whose fetch failed is not asked for again. The kernel retries a failed
/// read-ahead page with a second read at once; without this it would wait a second deadline.
const FAILED_FOR: Duration = Duration::from_secs(1);
/// Most failed fetches remembered.
const FAILED_MAX: usize = 4096;

/// The local store first, the network second.
pub(crate) struct NetSource {
    store: Arc<BlockStore>,
    net: OnceLock<NetHandle>,
    deadline: Duration,
    /// Recent failures: when, why, and the connected peers then ([`peers_key`]).
    failed: Mutex<HashMap<BlockId, (Instant, FetchError, u64)>>,
    /// Corrupt local copies a read could not heal (the repair loop retries them).
    corrupt: Mutex<HashSet<BlockId>>,
    /// Corrupt copies reads replaced (see [`NetSource::take_healed`]).
    healed: AtomicU64,
}

impl NetSource {
    /// A source over `store`; remote fetches start once [`NetSource::connect`] is called.
    pub(crate) fn new(store: Arc<BlockStore>) -> Self {
        NetSource {
            store,
            net: OnceLock::new(),
            deadline: fetch_deadline(),
            failed: Mutex::new(HashMap::new()),
            corrupt: Mutex::new(HashSet::new()),
            healed: AtomicU64::new(0),
        }
    }

    /// Starts answering misses from the network.
    pub(crate) fn connect(&self, net: NetHandle) {
        let _ = self.net.set(net);
    }

    /// Fetches a block the store lacks. Without a network (fsck, an unmounted volume) it is
    /// simply not here: [`StoreError::NotFound`]. Otherwise a failure is
    /// [`StoreError::Unavailable`] with its cause ([`FetchError::into_store`]).
    fn remote(&self, id: &BlockId) -> Result<Vec<u8>, StoreError> {
        let net = self.net.get().ok_or(StoreError::NotFound(*id))?;
        let peers = peers_key(&net.node);
        if let Some(e) = self.failed_recently(id, peers) {
            return Err(e.into_store());
        }
        let mut why = FetchError::Timeout(*id);
        for (got, r) in net.fetch(vec![*id], self.deadline) {
            match r {
                Ok(data) if got == *id => {
                    if let Err(e) = keep(&self.store, got, &data)
                        && let Some(left_out) = KEEP_FAILED.allow()
                    {
                        tracing::warn!(error = %e, left_out, "could not store a block fetched for a read");
                    }
                    return Ok(data);
                }
                Ok(_) => {
                    tracing::warn!(block = %id, "a peer sent bytes that do not match");
                    why = FetchError::BadBytes(*id);
                }
                Err(e) => {
                    tracing::warn!(block = %id, error = %e, "read: block not fetched");
                    why = FetchError::from_net(*id, &e);
                }
            }
        }
        self.remember_failure(id, why, peers);
        Err(why.into_store())
    }

    /// The runtime that fetches run on, once the node has started.
    pub(crate) fn runtime(&self) -> Option<tokio::runtime::Handle> {
        self.net.get().map(|n| n.rt.clone())
    }

    /// The deadline of a read that needs blocks from peers.
    pub(crate) fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Fetches `ids` from peers, waiting until `deadline` at most, and keeps each as an own
    /// block as it arrives. Never blocks a thread: the wait is this future's. A block that
    /// failed within the last [`FAILED_FOR`], with the same peers connected, fails again at
    /// once with the same cause.
    pub(crate) async fn fetch_missing(
        &self,
        ids: &[BlockId],
        deadline: Instant,
    ) -> Result<(), FetchError> {
        let Some(first) = ids.first() else {
            return Ok(());
        };
        let net = self.net.get().ok_or(FetchError::Offline(*first))?;
        let peers = peers_key(&net.node);
        if let Some(e) = ids.iter().find_map(|id| self.failed_recently(id, peers)) {
            return Err(e);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let kept: Arc<Mutex<Vec<BlockId>>> = Arc::default();
        let (store, into) = (self.store.clone(), kept.clone());
        let sink: fossa_net::BlockSink = Arc::new(move |id, data| match keep(&store, id, &data) {
            Ok(()) => into.lock().push(id),
            Err(e) => {
                if let Some(left_out) = KEEP_FAILED.allow() {
                    tracing::warn!(error = %e, left_out, "could not store a block fetched for a read");
                }
            }
        });
        let failed = net.node.fetch_blocks_each(ids, left, sink).await;
        if let Some((id, e)) = failed.first() {
            let e = FetchError::from_net(*id, e);
            for (id, _) in &failed {
                self.remember_failure(id, e, peers);
            }
            return Err(e);
        }
        let kept = kept.lock();
        match ids.iter().find(|id| !kept.contains(id)) {
            Some(id) => Err(FetchError::NotKept(*id)),
            None => Ok(()),
        }
    }

    fn failed_recently(&self, id: &BlockId, peers: u64) -> Option<FetchError> {
        let failed = self.failed.lock();
        let (t, e, then) = failed.get(id)?;
        (t.elapsed() < FAILED_FOR && *then == peers).then_some(*e)
    }

    fn remember_failure(&self, id: &BlockId, e: FetchError, peers: u64) {
        let mut failed = self.failed.lock();
        if failed.len() >= FAILED_MAX {
            failed.retain(|_, (t, _, _)| t.elapsed() < FAILED_FOR);
        }
        if failed.len() < FAILED_MAX {
            failed.insert(*id, (Instant::now(), e, peers));
        }
    }
}

/// The set of connected peers, hashed: a remembered failure holds only while it is the same
/// (a peer that left or came changes why a fetch would fail).
fn peers_key(node: &Node) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    node.connected().hash(&mut h);
    h.finish()
}

/// Stores a fetched block as our own; a failure only costs a later refetch.
/// `fetch_blocks` checked the bytes against `id` already, so the store need not hash them again.
pub(crate) fn keep(store: &BlockStore, id: BlockId, data: &[u8]) -> Result<(), StoreError> {
    store.put_verified(id, data, Class::Own)
}

/// Failures to keep a block a read fetched: one log line a minute (a full disk fails them all).
static KEEP_FAILED: Throttle = Throttle::new(Duration::from_secs(60));

impl BlockSource for NetSource {
    fn get_block(&self, id: &BlockId) -> Result<Vec<u8>, StoreError> {
        match self.store.get(id) {
            Err(StoreError::NotFound(_)) => self.remote(id),
            Err(e @ StoreError::Corrupt { .. }) => self.heal(id, e),
            r => r,
        }
    }
}

impl NetSource {
    /// A local copy failed verification: fetch the block from a peer within the read's
    /// deadline and make it the indexed copy. Otherwise the read fails with `bad`, and the
    /// repair loop heals the block later ([`NetSource::take_corrupt`]).
    fn heal(&self, id: &BlockId, bad: StoreError) -> Result<Vec<u8>, StoreError> {
        let fetched = self.net.get().and_then(|net| {
            let peers = peers_key(&net.node);
            if self.failed_recently(id, peers).is_some() {
                return None;
            }
            let got = net
                .fetch(vec![*id], self.deadline)
                .into_iter()
                .find_map(|(got, r)| r.ok().filter(|_| got == *id));
            if got.is_none() {
                self.remember_failure(id, FetchError::NotFound(*id), peers);
            }
            got
        });
        match fetched {
            Some(data) => {
                if super::heal::replace(&self.store, *id, &data, "read") {
                    self.healed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(data)
            }
            None => {
                self.corrupt.lock().insert(*id);
                Err(bad)
            }
        }
    }

    /// Blocks whose local copy failed verification on a read and could not be fetched then.
    pub(crate) fn take_corrupt(&self) -> Vec<BlockId> {
        self.corrupt.lock().drain().collect()
    }

    /// Corrupt copies reads replaced since the last call.
    pub(crate) fn take_healed(&self) -> u64 {
        self.healed.swap(0, Ordering::Relaxed)
    }
}

/// [`FETCH_DEADLINE`], or `$FOSSA_FETCH_TIMEOUT_MS`.
fn fetch_deadline() -> Duration {
    std::env::var(FETCH_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(FETCH_DEADLINE, Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_stays_a_timeout_and_other_causes_are_kept() {
        let id = BlockId::of(b"x");
        let cause = |e: FetchError| match e.into_store() {
            StoreError::Unavailable { id: got, cause } if got == id => cause,
            other => panic!("want Unavailable for {id}, got {other}"),
        };
        let from_net = |e: fossa_net::FetchError| cause(FetchError::from_net(id, &e));
        assert_eq!(
            from_net(fossa_net::FetchError::Timeout),
            Unavailable::TimedOut
        );
        assert_eq!(
            from_net(fossa_net::FetchError::NoPeers),
            Unavailable::NoPeers
        );
        assert_eq!(
            from_net(fossa_net::FetchError::NotFound),
            Unavailable::NotHeld
        );
        let peer = fossa_net::DeviceKey::generate().expect("key").id();
        let bad = fossa_net::FetchError::BadBytes { peer };
        assert_eq!(from_net(bad), Unavailable::BadBytes);
        assert_eq!(cause(FetchError::NotFound(id)), Unavailable::NotHeld);
        assert_eq!(cause(FetchError::BadBytes(id)), Unavailable::BadBytes);
        assert_eq!(cause(FetchError::Offline(id)), Unavailable::Offline);
        assert_eq!(cause(FetchError::NotKept(id)), Unavailable::NotKept);
        assert!(FetchError::Timeout(id).into_store().is_transient());
        assert!(!FetchError::BadBytes(id).into_store().is_transient());
    }
}
