//! Multi-device sync in the daemon: the device identity, the [`Replica`](fossa_net::Replica)
//! over the filesystem, the network-backed block source, the scan and pull threads, and the
//! node on its own tokio runtime (docs/protocol.md, docs/ARCHITECTURE.md "Sync").
//!
//! Threads: the runtime (2 workers) runs the node; `fossa-scan` turns local changes into
//! signed updates; `fossa-pull` invalidates kernel caches after applies and fetches missing
//! blocks; `fossa-members` saves the member list when it changes; `fossa-repair` runs the
//! redundancy rounds (`repair.rs`). FUSE threads reach the
//! network only through [`NetSource`], under a deadline.
mod backoff;
mod discover;
mod heal;
mod identity;
mod invite;
mod puller;
mod repair;
mod replica;
mod scanner;
mod source;

pub(crate) use identity::{
    Identity, default_name, find_member, hostname, load_key, load_members, save_members, short_id,
};
pub(crate) use invite::{advertised, parse_addr_list, parse_duration, parse_rate, wrap_code};
pub(crate) use repair::{RepairState, SharedState};
pub(crate) use replica::{DeviceSigner, MemberVerifier};
pub(crate) use scanner::Wake;
pub(crate) use source::{FetchError, NetSource};

use crate::config::Paths;
use anyhow::{Context, Result, anyhow};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use fossa_fs::Fs;
use fossa_fs::crypto::VolumeSecret;
use fossa_fs::sync::SyncConfig;
use fossa_net::{Backend, BlockHolder, Node, NodeConfig, PendingInvite, StoreHolder};
use fuser::Notifier;
use parking_lot::Mutex;
use puller::{PullMsg, Puller};
use replica::FsReplica;
use source::NetHandle;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// Default listening address (docs/cli.md).
pub(crate) const DEFAULT_LISTEN: &str = "0.0.0.0:22000";
/// Deadline of every connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the member list is compared with what was saved.
const MEMBERS_POLL: Duration = Duration::from_millis(500);

/// The sync half of an open volume: identity, block source, the scan channel, the secret
/// (for invitations).
pub(crate) struct SyncParts {
    /// Device key and members.
    pub(crate) identity: Identity,
    /// The block source the `Fs` reads through.
    pub(crate) source: Arc<NetSource>,
    /// The volume id.
    pub(crate) volume: [u8; 16],
    /// The volume secret, wrapped into invitations.
    pub(crate) vs: VolumeSecret,
    scan_tx: Sender<Wake>,
    scan_rx: Receiver<Wake>,
}

impl SyncParts {
    /// Loads (or creates) the identity and a block source over `store`.
    pub(crate) fn new(
        paths: &Paths,
        volume: [u8; 16],
        vs: VolumeSecret,
        source: Arc<NetSource>,
    ) -> Result<Self> {
        let identity = Identity::load_or_create(paths, volume, None)?;
        let (scan_tx, scan_rx) = scanner::channel();
        Ok(SyncParts {
            identity,
            source,
            volume,
            vs,
            scan_tx,
            scan_rx,
        })
    }

    /// Turns sync on in `fs`: updates signed by this device, checked against the members,
    /// local changes reported to the scan thread.
    pub(crate) fn enable(&self, fs: &Fs) -> Result<()> {
        let tx = self.scan_tx.clone();
        let hook: fossa_fs::sync::ChangeHook = Arc::new(move || {
            let _ = tx.try_send(Wake::Change);
        });
        fs.sync_handle()
            .enable(SyncConfig {
                volume: self.volume,
                signer: Arc::new(DeviceSigner(self.identity.key.clone())),
                verifier: Arc::new(MemberVerifier(self.identity.members.clone())),
                on_change: hook,
            })
            .context("enabling sync")
    }
}

/// Where the node listens and whom it calls.
#[derive(Clone, Debug, Default)]
pub(crate) struct NetOpts {
    /// `--listen` (None: [`DEFAULT_LISTEN`], falling back to a free port).
    pub(crate) listen: Option<SocketAddr>,
    /// `--peer`s.
    pub(crate) peers: Vec<SocketAddr>,
    /// `--max-send`, `--max-recv`: block data bytes per second (0: unlimited).
    pub(crate) limits: (u64, u64),
    /// `--discovery`: the LAN broadcast address to announce on (None: off).
    pub(crate) discovery: Option<std::net::Ipv4Addr>,
}

/// The running sync machinery of a mounted volume.
pub(crate) struct SyncDaemon {
    rt: Mutex<Option<tokio::runtime::Runtime>>,
    net: NetHandle,
    paths: Paths,
    identity_members: Arc<fossa_net::Members>,
    notifier: Arc<OnceLock<Notifier>>,
    scan_tx: Sender<Wake>,
    pull_tx: Sender<PullMsg>,
    stop_tx: Sender<()>,
    repair_stop: Sender<()>,
    repair: SharedState,
    threads: Mutex<Vec<JoinHandle<()>>>,
    discovery: Mutex<Option<fossa_net::Discovery>>,
}

/// What [`SyncDaemon::start`] needs from the volume.
pub(crate) struct StartArgs<'a> {
    /// The volume's directories.
    pub(crate) paths: &'a Paths,
    /// The filesystem core (sync enabled).
    pub(crate) fs: &'a Arc<Fs>,
    /// The local store.
    pub(crate) store: &'a Arc<blockstore::BlockStore>,
    /// Identity, source, scan channel.
    pub(crate) parts: &'a SyncParts,
    /// Listening address and peers.
    pub(crate) opts: &'a NetOpts,
}

/// The network runtime of a daemon (device or keeper): two workers, named `fossa-net`.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fossa-net")
        .enable_all()
        .build()
        .context("starting the network runtime")
}

impl SyncDaemon {
    /// Starts the runtime, the node and the threads.
    pub(crate) fn start(a: StartArgs<'_>) -> Result<Self> {
        let rt = runtime()?;
        let (pull_tx, pull_rx) = crossbeam_channel::unbounded();
        let replica = Arc::new(FsReplica {
            fs: a.fs.clone(),
            store: a.store.clone(),
            applied: pull_tx.clone(),
        });
        let holder: Arc<dyn BlockHolder> = Arc::new(StoreHolder::shared(a.store.clone(), u64::MAX));
        let backend = Backend {
            replica,
            holder: Some(holder.clone()),
        };
        let node = rt.block_on(start_node(a.parts, a.opts, backend))?;
        node.set_rate_limits(a.opts.limits.0, a.opts.limits.1);
        let net = NetHandle {
            node: node.clone(),
            rt: rt.handle().clone(),
        };
        a.parts.source.connect(net.clone());
        let notifier = Arc::new(OnceLock::new());
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let mut threads = spawn_threads(&a, &net, &notifier, pull_rx, stop_rx)?;
        let repair = SharedState::default();
        let (repair_stop, repair_rx) = crossbeam_channel::bounded(1);
        let repairer = repair::RepairLoop {
            fs: a.fs.clone(),
            store: a.store.clone(),
            node: node.clone(),
            members: a.parts.identity.members.clone(),
            holder,
            source: a.parts.source.clone(),
            rt: rt.handle().clone(),
            state: repair.clone(),
        };
        threads.push(repairer.spawn(repair_rx)?);
        let discovery = a.opts.discovery.and_then(|ip| {
            let members = a.parts.identity.members.clone();
            let _in_rt = rt.enter();
            discover::start(ip, &node, members)
        });
        tracing::info!(
            device = %a.parts.identity.key.id(),
            listen = %node.local_addr(),
            "sync node started"
        );
        Ok(SyncDaemon {
            rt: Mutex::new(Some(rt)),
            net,
            paths: a.paths.clone(),
            identity_members: a.parts.identity.members.clone(),
            notifier,
            scan_tx: a.parts.scan_tx.clone(),
            pull_tx,
            stop_tx,
            repair_stop,
            repair,
            threads: Mutex::new(threads),
            discovery: Mutex::new(discovery),
        })
    }

    /// The node.
    pub(crate) fn node(&self) -> &Arc<Node> {
        &self.net.node
    }

    /// Bytes sent, bytes received, open connections since the node started.
    pub(crate) fn wire_stats(&self) -> (u64, u64, usize) {
        let s = self.net.node.stats();
        (s.bytes_sent, s.bytes_received, s.connections)
    }

    /// What the repair loop saw last.
    pub(crate) fn repair_state(&self) -> RepairState {
        self.repair.lock().clone()
    }

    /// Lets the pull thread invalidate the mount's kernel caches.
    pub(crate) fn set_notifier(&self, n: Notifier) {
        let _ = self.notifier.set(n);
    }

    /// Registers a one-time invitation valid for `valid`.
    pub(crate) fn add_invite(&self, secret: [u8; 32], k_wrap: [u8; 32], valid: Duration) {
        self.net.node.add_invite(PendingInvite {
            secret,
            k_wrap,
            expiry: SystemTime::now() + valid,
            role: fossa_net::Role::Device,
        });
    }

    /// Registers a one-time storage-peer invitation; returns the code's addresses' code.
    pub(crate) fn add_keeper_invite(
        &self,
        volume: [u8; 16],
        addrs: Vec<SocketAddr>,
        valid: Duration,
    ) -> Result<String> {
        let inv = PendingInvite::generate_keeper(valid)?;
        let addrs = if addrs.is_empty() {
            advertised(self.net.node.local_addr())
        } else {
            addrs
        };
        let code = inv.code(volume, Vec::new(), self.net.node.id(), addrs);
        self.net.node.add_invite(inv);
        Ok(code.encode())
    }

    /// Closes every connection, stops the threads (the scan thread scans a last time: what it
    /// records is pushed at the next start) and the runtime, saves the member list.
    pub(crate) fn shutdown(&self) {
        let _ = self
            .scan_tx
            .send_timeout(Wake::Stop, Duration::from_secs(5));
        let _ = self.pull_tx.send(PullMsg::Stop);
        let _ = self.stop_tx.try_send(());
        let _ = self.repair_stop.try_send(());
        let Some(rt) = self.rt.lock().take() else {
            return;
        };
        drop(self.discovery.lock().take());
        // Closing the connections first ends any fetch the pull thread is waiting for.
        rt.block_on(self.net.node.shutdown());
        for t in self.threads.lock().drain(..) {
            let name = t.thread().name().unwrap_or("?").to_owned();
            if t.join().is_err() {
                tracing::error!("thread {name} panicked");
            }
        }
        rt.shutdown_timeout(Duration::from_secs(2));
        if let Err(e) = save_members(&self.paths, &self.identity_members) {
            tracing::warn!("{e:#}");
        }
        tracing::info!("sync node stopped");
    }
}

async fn start_node(parts: &SyncParts, opts: &NetOpts, backend: Backend) -> Result<Arc<Node>> {
    let cfg = |listen: SocketAddr| NodeConfig {
        volume: parts.volume,
        name: parts.identity.name(),
        listen,
        peers: opts.peers.clone(),
        connect_timeout: CONNECT_TIMEOUT,
    };
    let (key, members) = (&parts.identity.key, &parts.identity.members);
    let start =
        |listen| Node::start_with(cfg(listen), key.clone(), members.clone(), backend.clone());
    if let Some(listen) = opts.listen {
        return start(listen)
            .await
            .with_context(|| format!("listening on {listen}"));
    }
    let default: SocketAddr = DEFAULT_LISTEN
        .parse()
        .map_err(|e| anyhow!("{DEFAULT_LISTEN}: {e}"))?;
    match start(default).await {
        Ok(n) => Ok(n),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen on {default}; using a free port");
            let any = SocketAddr::from(([0, 0, 0, 0], 0));
            start(any).await.context("listening on a free port")
        }
    }
}

fn spawn_threads(
    a: &StartArgs<'_>,
    net: &NetHandle,
    notifier: &Arc<OnceLock<Notifier>>,
    pull_rx: Receiver<PullMsg>,
    stop_rx: Receiver<()>,
) -> Result<Vec<JoinHandle<()>>> {
    let node = net.node.clone();
    let (members, me) = (a.parts.identity.members.clone(), a.parts.identity.key.id());
    let scan = scanner::Scanner {
        fs: a.fs.clone(),
        notify: Box::new(move || node.notify_local_change()),
        alone: Box::new(move || members.list().iter().all(|r| r.device == me || r.revoked)),
    }
    .spawn(a.parts.scan_rx.clone())?;
    let pull = Puller {
        fs: a.fs.clone(),
        store: a.store.clone(),
        net: net.clone(),
        notifier: notifier.clone(),
        no_pull: std::env::var_os(puller::NO_PULL_ENV).is_some(),
    }
    .spawn(pull_rx)?;
    let saver = MemberSaver {
        paths: a.paths.clone(),
        members: a.parts.identity.members.clone(),
        scan: a.parts.scan_tx.clone(),
    };
    let members = saver.spawn(stop_rx)?;
    // Changes made before the node ran (or while it was down) are pushed at once.
    let _ = a.parts.scan_tx.try_send(Wake::Change);
    Ok(vec![scan, pull, members])
}

/// Saves `DATA/members` whenever the list (or an address hint) changes, and wakes the scan
/// thread then (a first peer makes scans worth doing).
struct MemberSaver {
    paths: Paths,
    members: Arc<fossa_net::Members>,
    scan: Sender<Wake>,
}

impl MemberSaver {
    fn spawn(self, stop: Receiver<()>) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("fossa-members".into())
            .spawn(move || {
                let mut saved = self.members.signed();
                while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(MEMBERS_POLL) {
                    let now = self.members.signed();
                    if now != saved {
                        self.save(now.len());
                        saved = now;
                    }
                }
            })
    }

    fn save(&self, n: usize) {
        match save_members(&self.paths, &self.members) {
            Ok(()) => tracing::info!(members = n, "member list saved"),
            Err(e) => tracing::warn!("{e:#}"),
        }
        let _ = self.scan.try_send(Wake::Change);
    }
}
