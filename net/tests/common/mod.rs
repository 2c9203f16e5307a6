//! Test helpers: an in-memory fake `Replica`, member lists, nodes on 127.0.0.1, bounded waits.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use blockstore::BlockId;
use fossa_net::{
    DeviceId, DeviceKey, MemberRecord, Members, Node, NodeConfig, Replica, ReplicaError,
};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub const VOL: [u8; 16] = *b"test volume 0001";

/// One `apply` call as the fake saw it.
#[derive(Clone, Debug)]
pub struct Applied {
    pub peer: DeviceId,
    pub index_id: u64,
    pub upto: u64,
    pub updates: Vec<Vec<u8>>,
}

#[derive(Default)]
pub struct FakeReplica {
    pub index_id: u64,
    pub updates: Mutex<Vec<(u64, Vec<u8>)>>,
    pub blocks: Mutex<HashMap<BlockId, Vec<u8>>>,
    pub progress: Mutex<HashMap<DeviceId, (u64, u64)>>,
    pub applied: Mutex<Vec<Applied>>,
    /// Ids answered with wrong bytes.
    pub lie_about: Mutex<HashSet<BlockId>>,
    pub lies_told: AtomicUsize,
    /// Delay of every `block` call.
    pub block_delay: Mutex<Option<Duration>>,
    /// `block` calls answered with the block's bytes.
    pub served: AtomicUsize,
}

impl FakeReplica {
    pub fn new(index_id: u64) -> Arc<Self> {
        Arc::new(FakeReplica {
            index_id,
            ..Default::default()
        })
    }
    /// Appends a local update; returns its sequence.
    pub fn add_update(&self, blob: &[u8]) -> u64 {
        let mut u = self.updates.lock();
        let seq = u.len() as u64 + 1;
        u.push((seq, blob.to_vec()));
        seq
    }
    pub fn add_block(&self, data: &[u8]) -> BlockId {
        let id = BlockId::of(data);
        self.blocks.lock().insert(id, data.to_vec());
        id
    }
    /// Every update blob received from `peer`, in order.
    pub fn received_from(&self, peer: &DeviceId) -> Vec<Vec<u8>> {
        self.applied
            .lock()
            .iter()
            .filter(|a| a.peer == *peer)
            .flat_map(|a| a.updates.clone())
            .collect()
    }
}

impl Replica for FakeReplica {
    fn index_id(&self) -> u64 {
        self.index_id
    }
    fn local_seq(&self) -> u64 {
        self.updates.lock().len() as u64
    }
    fn updates_since(&self, after: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>, ReplicaError> {
        Ok(self
            .updates
            .lock()
            .iter()
            .filter(|(s, _)| *s > after)
            .take(max)
            .cloned()
            .collect())
    }
    fn progress(&self, peer: &DeviceId) -> (u64, u64) {
        self.progress.lock().get(peer).copied().unwrap_or((0, 0))
    }
    fn apply(
        &self,
        peer: &DeviceId,
        index_id: u64,
        upto: u64,
        updates: Vec<Vec<u8>>,
    ) -> Result<(), ReplicaError> {
        self.applied.lock().push(Applied {
            peer: *peer,
            index_id,
            upto,
            updates,
        });
        self.progress.lock().insert(*peer, (index_id, upto));
        Ok(())
    }
    fn block(&self, id: &BlockId) -> Result<Option<Vec<u8>>, ReplicaError> {
        let delay = *self.block_delay.lock();
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        if self.lie_about.lock().contains(id) {
            self.lies_told.fetch_add(1, Ordering::SeqCst);
            return Ok(Some(b"not the block you asked for".to_vec()));
        }
        let found = self.blocks.lock().get(id).cloned();
        if found.is_some() {
            self.served.fetch_add(1, Ordering::SeqCst);
        }
        Ok(found)
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "fossa_net=info".into()),
        )
        .with_test_writer()
        .try_init();
}

pub fn record(key: &DeviceKey, added_by: DeviceId, name: &str) -> MemberRecord {
    MemberRecord {
        device: key.id(),
        public_key: key.public_key(),
        name: name.into(),
        added_by,
        revoked: false,
        role: fossa_net::Role::Device,
        addrs: vec![],
    }
}

/// A member list with `keys[0]` as the first device, which adds all the others.
pub fn members_of(keys: &[&DeviceKey]) -> Members {
    let m = Members::new(VOL);
    let founder = keys[0];
    m.add_own(founder, record(founder, founder.id(), "d0"))
        .unwrap();
    for (i, k) in keys.iter().enumerate().skip(1) {
        m.add_own(founder, record(k, founder.id(), &format!("d{i}")))
            .unwrap();
    }
    m
}

/// An independent copy of a member list (what another device holds).
pub fn copy_of(m: &Members) -> Arc<Members> {
    let c = Members::new(VOL);
    c.merge(&m.signed());
    Arc::new(c)
}

pub fn config(name: &str, peers: Vec<SocketAddr>) -> NodeConfig {
    NodeConfig {
        volume: VOL,
        name: name.into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        peers,
        connect_timeout: Duration::from_secs(2),
    }
}

pub async fn start(
    name: &str,
    key: &Arc<DeviceKey>,
    members: Arc<Members>,
    replica: Arc<FakeReplica>,
    peers: Vec<SocketAddr>,
) -> Arc<Node> {
    Node::start(config(name, peers), key.clone(), members, replica)
        .await
        .unwrap()
}

pub fn key() -> Arc<DeviceKey> {
    Arc::new(DeviceKey::generate().unwrap())
}

/// Polls `cond` until it holds; panics after `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `f` under a bound.
pub async fn bounded<T>(limit: Duration, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .expect("test step exceeded its bound")
}

pub const LIMIT: Duration = Duration::from_secs(10);
