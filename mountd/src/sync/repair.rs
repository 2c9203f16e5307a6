//! The repair loop (docs/redundancy.md, "Wiring in the daemon"): one thread per device that,
//! every round, tracks the wanted level of every block (`Fs::block_levels`), asks newly seen
//! holders which blocks they have (`HasBlocks`, counted as claimed until audited), plans
//! (`fossa_net::repair::plan`) and executes the plan under deadlines. Only the runner acts: the
//! connected member device with the smallest id (this one included); the others keep quiet.
use super::heal::{HealStats, LocalAudit};
use super::source::NetSource;
use blockstore::{BlockId, BlockStore};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use fossa_fs::Fs;
use fossa_net::repair::{Evidence, HolderTable, NodeView, Plan, Policy, RunReport, execute, plan};
use fossa_net::{BlockHolder, DeviceId, Members, Node, Role};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default period of a round.
const PERIOD: Duration = Duration::from_secs(30);
/// Environment variable overriding [`PERIOD`], in milliseconds (tests).
pub(crate) const PERIOD_ENV: &str = "FOSSA_REPAIR_PERIOD_MS";
/// Environment variable overriding the grace period (default 10 min), in milliseconds.
pub(crate) const GRACE_ENV: &str = "FOSSA_REPAIR_GRACE_MS";
/// Environment variable overriding the audit interval (default 1 h), in milliseconds.
pub(crate) const AUDIT_ENV: &str = "FOSSA_AUDIT_INTERVAL_MS";
/// Deadline of each request of a round.
const REQUEST_DEADLINE: Duration = Duration::from_secs(20);
/// Rounds a node that answered `QuotaFull` (no room: quota or disk full) is given no room,
/// doubled per consecutive refusal up to [`QUOTA_FULL_MAX`].
const QUOTA_FULL_ROUNDS: u32 = 10;
/// Longest time, in rounds, a full node is given no room before it is tried again.
const QUOTA_FULL_MAX: u32 = 320;
/// Room assumed on a keeper that never refused (its quota is not known here).
const ASSUMED_FREE: u64 = 1 << 50;
/// Most ids in one `HasBlocks` call.
const HAS_CHUNK: usize = 4096;

/// What the last round saw and did, for `fossa status`.
#[derive(Clone, Debug, Default)]
pub(crate) struct RepairState {
    /// Rounds run since start (as runner).
    pub(crate) rounds: u64,
    /// The runner of the last round (this device, or the device it deferred to).
    pub(crate) runner: Option<DeviceId>,
    /// Counters of the last plan.
    pub(crate) below_level: usize,
    /// Blocks at level only thanks to holders within the grace period.
    pub(crate) waiting: usize,
    /// Blocks below level with no live holder.
    pub(crate) unavailable: usize,
    /// Blocks with no counted copy.
    pub(crate) lost: usize,
    /// Copy actions of the last plan (non-zero: repair in progress).
    pub(crate) copies_planned: usize,
    /// Totals since start.
    pub(crate) total: RunReport,
    /// Trusted holders of each tracked block (this device's included); `fossa status` counts
    /// those live at the time it is asked.
    pub(crate) holders: HashMap<BlockId, Vec<DeviceId>>,
    /// Blocks each node is known to hold.
    pub(crate) per_node: HashMap<DeviceId, usize>,
    /// What the local audit checked, found and healed (every device, runner or not).
    pub(crate) heal: HealStats,
}

/// Shared view of the repair state.
pub(crate) type SharedState = Arc<Mutex<RepairState>>;

/// Tunables read from the environment.
fn policy() -> Policy {
    let ms = |k: &str| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
    };
    let mut p = Policy::default();
    if let Some(g) = ms(GRACE_ENV) {
        p.grace = g;
    }
    if let Some(a) = ms(AUDIT_ENV) {
        p.audit_interval = a;
    }
    p
}

/// The period of a round ([`PERIOD`] or `$FOSSA_REPAIR_PERIOD_MS`).
fn period() -> Duration {
    std::env::var(PERIOD_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(PERIOD, Duration::from_millis)
}

/// The loop's inputs.
pub(crate) struct RepairLoop {
    /// The filesystem (wanted levels).
    pub(crate) fs: Arc<Fs>,
    /// This device's store (its own copies).
    pub(crate) store: Arc<BlockStore>,
    /// The node.
    pub(crate) node: Arc<Node>,
    /// The volume's members.
    pub(crate) members: Arc<Members>,
    /// The holder of copies placed here.
    pub(crate) holder: Arc<dyn BlockHolder>,
    /// The read path's block source (reports corrupt copies it could not heal).
    pub(crate) source: Arc<NetSource>,
    /// The daemon's runtime.
    pub(crate) rt: tokio::runtime::Handle,
    /// Published after each round.
    pub(crate) state: SharedState,
}

struct Round {
    table: HolderTable,
    policy: Policy,
    start: Instant,
    /// Nodes asked `HasBlocks` for every tracked block since they connected.
    asked: HashSet<DeviceId>,
    sizes: HashMap<BlockId, u64>,
    quota_full: HashMap<DeviceId, u32>,
    /// Consecutive `QuotaFull` refusals per node (reset when a copy to it is stored).
    full_streak: HashMap<DeviceId, u32>,
    audit: LocalAudit,
}

impl RepairLoop {
    /// Starts the thread; it stops when `stop` fires or is dropped.
    pub(crate) fn spawn(self, stop: Receiver<()>) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("fossa-repair".into())
            .spawn(move || {
                let mut r = Round {
                    table: HolderTable::new(),
                    policy: policy(),
                    start: Instant::now(),
                    asked: HashSet::new(),
                    sizes: HashMap::new(),
                    quota_full: HashMap::new(),
                    full_streak: HashMap::new(),
                    audit: LocalAudit::default(),
                };
                let period = period();
                while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(period) {
                    self.round(&mut r);
                }
            })
    }

    /// The runner among the connected member devices and this one.
    fn runner(&self) -> DeviceId {
        let members = &self.node_members();
        let me = self.node.id();
        self.node
            .connected()
            .into_iter()
            .filter(|d| members.get(d) == Some(&Role::Device))
            .chain(std::iter::once(me))
            .min()
            .unwrap_or(me)
    }

    fn node_members(&self) -> HashMap<DeviceId, Role> {
        self.members
            .list()
            .into_iter()
            .filter(|r| !r.revoked)
            .map(|r| (r.device, r.role))
            .collect()
    }

    fn round(&self, r: &mut Round) {
        self.audit_local(&mut r.audit);
        let runner = self.runner();
        if runner != self.node.id() {
            self.state.lock().runner = Some(runner);
            r.asked.clear();
            return;
        }
        let now = r.start.elapsed();
        let fresh = match self.track(r) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "repair: cannot list block levels");
                return;
            }
        };
        let live = self.node.connected();
        for n in &live {
            r.table.seen(*n, now);
        }
        r.asked.retain(|n| live.contains(n));
        self.ask_holders(r, &live, &fresh);
        let views = self.views(r, &live);
        let p = plan(
            &r.table,
            &views,
            &r.policy,
            now,
            r.start.elapsed().as_nanos() as u64,
        );
        let node = self.node.clone();
        let report = self.rt.block_on(async {
            let t = &mut r.table;
            execute(&node, t, &p, now, REQUEST_DEADLINE).await
        });
        note_refusals(r, &p, &report);
        if report != RunReport::default() {
            tracing::info!(?report, below = p.below_level, "repair round");
        }
        self.publish(r, &p, &report);
    }

    /// Re-hashes a slice of the local copies and heals every corrupt one found (by this
    /// audit or by reads) from peers. Every device does this, runner or not.
    fn audit_local(&self, a: &mut LocalAudit) {
        for id in self.source.take_corrupt() {
            a.flag(id);
        }
        let by_reads = self.source.take_healed();
        a.stats.corrupt += by_reads;
        a.stats.healed += by_reads;
        a.scan(&self.store);
        a.heal(&self.store, &self.node, &self.rt);
        self.state.lock().heal = a.stats;
    }

    /// Updates the table from the wanted levels and this device's store; returns the blocks
    /// tracked for the first time.
    fn track(&self, r: &mut Round) -> Result<Vec<BlockId>, fossa_fs::FsError> {
        let levels = self.fs.block_levels()?;
        let gone: Vec<BlockId> = r
            .table
            .blocks()
            .filter(|id| !levels.contains_key(id))
            .copied()
            .collect();
        for id in &gone {
            r.table.remove_block(id);
            r.sizes.remove(id);
        }
        let me = self.node.id();
        let mut fresh = Vec::new();
        for (id, level) in levels {
            let size = *r.sizes.entry(id).or_insert_with(|| {
                fresh.push(id);
                self.store.get(&id).map_or(0, |d| d.len() as u64)
            });
            r.table.set_block(id, size, level);
            if self.store.has(&id).unwrap_or(false) && !r.audit.pending.contains(&id) {
                r.table.add_holder(&id, me, Evidence::Pinned);
            } else {
                r.table.remove_holder(&id, &me);
            }
        }
        Ok(fresh)
    }

    /// `HasBlocks`: every tracked block to nodes that connected since the last round, the
    /// fresh blocks to the others. Answers count as claimed (audited first).
    fn ask_holders(&self, r: &mut Round, live: &[DeviceId], fresh: &[BlockId]) {
        let all: Vec<BlockId> = r.table.blocks().copied().collect();
        for n in live {
            let ids = if r.asked.contains(n) { fresh } else { &all };
            if ids.is_empty() {
                r.asked.insert(*n);
                continue;
            }
            let mut ok = true;
            for chunk in ids.chunks(HAS_CHUNK) {
                let node = self.node.clone();
                let got = self
                    .rt
                    .block_on(async { node.has_blocks(n, chunk, REQUEST_DEADLINE).await });
                match got {
                    Ok(flags) => {
                        for (id, has) in chunk.iter().zip(flags) {
                            if has {
                                r.table.add_holder(id, *n, Evidence::Claimed);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::debug!(node = %n, error = %e, "repair: HasBlocks failed");
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                r.asked.insert(*n);
            }
        }
    }

    fn views(&self, r: &Round, live: &[DeviceId]) -> Vec<NodeView> {
        let me = self.node.id();
        self.node_members()
            .into_iter()
            .map(|(id, role)| {
                let free = if id == me {
                    let (used, quota) = self.holder.usage();
                    quota.saturating_sub(used)
                } else if r.quota_full.contains_key(&id) {
                    0
                } else {
                    ASSUMED_FREE
                };
                NodeView {
                    id,
                    role,
                    free,
                    connected: id == me || live.contains(&id),
                }
            })
            .collect()
    }

    fn publish(&self, r: &Round, p: &Plan, report: &RunReport) {
        let me = self.node.id();
        let max_fail = r.policy.max_audit_failures;
        let trusted = |n: &DeviceId| r.table.audit_failures(n) < max_fail;
        let mut copies = HashMap::new();
        let mut per_node: HashMap<DeviceId, usize> = HashMap::new();
        for id in r.table.blocks() {
            let holders = r.table.holders(id);
            for h in &holders {
                *per_node.entry(*h).or_default() += 1;
            }
            copies.insert(*id, holders.into_iter().filter(|h| trusted(h)).collect());
        }
        let copies_planned = p
            .actions
            .iter()
            .filter(|a| matches!(a, fossa_net::repair::Action::Copy { .. }))
            .count();
        let mut s = self.state.lock();
        s.rounds += 1;
        s.runner = Some(me);
        s.below_level = p.below_level;
        s.waiting = p.waiting;
        s.unavailable = p.unavailable;
        s.lost = p.lost;
        s.copies_planned = copies_planned;
        s.total.copied += report.copied;
        s.total.bytes_copied += report.bytes_copied;
        s.total.dropped += report.dropped;
        s.total.audits_passed += report.audits_passed;
        s.total.audits_failed += report.audits_failed;
        s.total.errors += report.errors;
        s.holders = copies;
        s.per_node = per_node;
    }
}

/// Gives nodes that refused copies for lack of room no room for a while, longer with every
/// consecutive refusal (logged once per refusal streak, not per block); a node that stored a
/// copy is trusted with room again.
fn note_refusals(r: &mut Round, p: &Plan, report: &RunReport) {
    for a in &p.actions {
        if let fossa_net::repair::Action::Copy { to, .. } = a
            && !report.quota_full.contains(to)
        {
            r.full_streak.remove(to);
        }
    }
    for n in &report.quota_full {
        let streak = r.full_streak.entry(*n).or_default();
        *streak += 1;
        let rounds = QUOTA_FULL_ROUNDS
            .saturating_mul(1 << (*streak - 1).min(5))
            .min(QUOTA_FULL_MAX);
        if *streak == 1 {
            tracing::info!(node = %n, rounds, "a holder has no room: no copies placed on it for a while");
        }
        r.quota_full.insert(*n, rounds);
    }
    r.quota_full.retain(|_, left| {
        *left = left.saturating_sub(1);
        *left > 0
    });
}
