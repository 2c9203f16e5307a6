//! The planner: from the holder table, the nodes of this round and the policy, the actions
//! that bring every block to its level (docs/redundancy.md, "Planner"). Pure: no I/O, time
//! and randomness are inputs, so a simulation replays exactly.
use super::table::{Evidence, HolderTable, Tracked};
use crate::{DeviceId, Role};
use blockstore::BlockId;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// Most ids in one planned audit (one `Audit` request).
pub const MAX_AUDIT_IDS: usize = 64;

/// A node as the planner sees it this round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeView {
    /// The node.
    pub id: DeviceId,
    /// Device or keeper.
    pub role: Role,
    /// Bytes it may still take (quota left; 0 once it refused with QuotaFull).
    pub free: u64,
    /// A live session now.
    pub connected: bool,
}

/// Tunables of placement and repair.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// How long an unreachable holder still counts before its copies are replaced.
    pub grace: Duration,
    /// Failed audits after which a node is distrusted: none of its copies count.
    pub max_audit_failures: u32,
    /// A copy is audited again after this long.
    pub audit_interval: Duration,
    /// Most copies audited per round.
    pub audits_per_round: usize,
    /// Most bytes of copies planned per round (the repair share of the bandwidth limit).
    pub copy_bytes_per_round: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            grace: Duration::from_secs(600),
            max_audit_failures: 3,
            audit_interval: Duration::from_secs(3600),
            audits_per_round: 256,
            copy_bytes_per_round: 256 << 20,
        }
    }
}

/// One thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Fetch `block` from `from` (verified by id) and `PutBlocks` it to `to`.
    Copy {
        /// The block.
        block: BlockId,
        /// Its size in bytes.
        size: u64,
        /// A live holder.
        from: DeviceId,
        /// The new holder.
        to: DeviceId,
    },
    /// `DropBlocks` this surplus copy (enough other live copies remain).
    Drop {
        /// The block.
        block: BlockId,
        /// The holder that may delete it.
        at: DeviceId,
    },
    /// `Audit` these copies at one node with a fresh nonce.
    Audit {
        /// The holder.
        at: DeviceId,
        /// At most [`MAX_AUDIT_IDS`] blocks.
        blocks: Vec<BlockId>,
    },
}

/// The actions of one round and what the planner saw.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// What to do, copies first (scarcest blocks first), then drops, then audits.
    pub actions: Vec<Action>,
    /// Blocks with fewer counted copies than their level.
    pub below_level: usize,
    /// Blocks at level only thanks to holders away for less than the grace period.
    pub waiting: usize,
    /// Blocks below level with no live holder to copy from (some may come back).
    pub unavailable: usize,
    /// Blocks with no counted copy at all.
    pub lost: usize,
    /// Copies left for a later round by the byte budget or lack of room.
    pub deferred: usize,
}

/// How one holder counts this round.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Standing {
    Live,
    Away,
    Out,
}

struct Ctx<'a> {
    table: &'a HolderTable,
    policy: &'a Policy,
    now: Duration,
    nodes: HashMap<DeviceId, NodeView>,
    free: HashMap<DeviceId, u64>,
}

impl Ctx<'_> {
    fn standing(&self, node: &DeviceId) -> Standing {
        let Some(view) = self.nodes.get(node) else {
            return Standing::Out;
        };
        if self.table.audit_failures(node) >= self.policy.max_audit_failures {
            return Standing::Out;
        }
        if view.connected {
            return Standing::Live;
        }
        let last = self.table.nodes.get(node).and_then(|h| h.last_seen);
        match last {
            Some(t) if self.now.saturating_sub(t) <= self.policy.grace => Standing::Away,
            _ => Standing::Out,
        }
    }
    fn trusted_target(&self, node: &DeviceId) -> bool {
        self.nodes.get(node).is_some_and(|v| v.connected)
            && self.table.audit_failures(node) < self.policy.max_audit_failures
    }
}

/// Plans one round. `seed` varies the audit sample between rounds.
pub fn plan(
    table: &HolderTable,
    nodes: &[NodeView],
    policy: &Policy,
    now: Duration,
    seed: u64,
) -> Plan {
    let mut ctx = Ctx {
        table,
        policy,
        now,
        nodes: nodes.iter().map(|n| (n.id, *n)).collect(),
        free: nodes.iter().map(|n| (n.id, n.free)).collect(),
    };
    let mut out = Plan::default();
    let mut repairs: Vec<(usize, &BlockId, &Tracked, Vec<DeviceId>)> = Vec::new();
    let mut drops = Vec::new();
    for (id, t) in &table.blocks {
        let (live, away) = split(&ctx, t);
        let counted = live.len() + away;
        if counted == 0 {
            out.lost += 1;
        }
        if counted < usize::from(t.level) {
            out.below_level += 1;
            if live.is_empty() {
                out.unavailable += 1;
            } else {
                repairs.push((counted, id, t, live));
            }
        } else if live.len() < usize::from(t.level) {
            out.waiting += 1;
        } else if away == 0 && live.len() > usize::from(t.level) {
            drops.extend(surplus(&ctx, id, t, &live));
        }
    }
    repairs.sort_by_key(|(counted, id, _, _)| (*counted, **id));
    let mut budget = policy.copy_bytes_per_round;
    for (counted, id, t, live) in repairs {
        let need = usize::from(t.level) - counted;
        let copies = place(&mut ctx, id, t, &live, need, &mut budget);
        out.deferred += need - copies.len();
        out.actions.extend(copies);
    }
    let dropping: HashSet<(DeviceId, BlockId)> = drops
        .iter()
        .filter_map(|a| match a {
            Action::Drop { block, at } => Some((*at, *block)),
            _ => None,
        })
        .collect();
    out.actions.extend(drops);
    out.actions.extend(audits(&ctx, seed, &dropping));
    out
}

/// Live holders of `t`, and how many are away within the grace period.
fn split(ctx: &Ctx<'_>, t: &Tracked) -> (Vec<DeviceId>, usize) {
    let mut live = Vec::new();
    let mut away = 0;
    for node in t.holders.keys() {
        match ctx.standing(node) {
            Standing::Live => live.push(*node),
            Standing::Away => away += 1,
            Standing::Out => {}
        }
    }
    (live, away)
}

/// Up to `need` copies of `id` onto new nodes: most free space first, ties broken by a hash
/// of (block, node) so equal nodes share the load; never a node twice.
fn place(
    ctx: &mut Ctx<'_>,
    id: &BlockId,
    t: &Tracked,
    live: &[DeviceId],
    need: usize,
    budget: &mut u64,
) -> Vec<Action> {
    let mut targets: Vec<DeviceId> = ctx
        .nodes
        .keys()
        .filter(|n| !t.holders.contains_key(n) && ctx.trusted_target(n))
        .filter(|n| ctx.free.get(n).copied().unwrap_or(0) >= t.size)
        .copied()
        .collect();
    targets.sort_by_key(|n| {
        let free = ctx.free.get(n).copied().unwrap_or(0);
        (std::cmp::Reverse(free), mix(id, n))
    });
    let mut sources: Vec<DeviceId> = live.to_vec();
    sources.sort_by_key(|n| {
        let claimed = t.holders.get(n).map(|h| h.evidence) == Some(Evidence::Claimed);
        (claimed, mix(id, n))
    });
    let mut out = Vec::new();
    for (i, to) in targets.into_iter().take(need).enumerate() {
        if *budget < t.size {
            break;
        }
        *budget -= t.size;
        if let Some(f) = ctx.free.get_mut(&to) {
            *f -= t.size;
        }
        out.push(Action::Copy {
            block: *id,
            size: t.size,
            from: sources[i % sources.len()],
            to,
        });
    }
    out
}

/// Drops of the surplus live copies of `id` that are not pinned, least free space first;
/// none while a live copy is only claimed.
fn surplus(ctx: &Ctx<'_>, id: &BlockId, t: &Tracked, live: &[DeviceId]) -> Vec<Action> {
    // An unaudited claim is not relied on to justify dropping a stored copy.
    if live.iter().any(|n| {
        t.holders
            .get(n)
            .is_some_and(|h| h.evidence == Evidence::Claimed)
    }) {
        return Vec::new();
    }
    let extra = live.len() - usize::from(t.level);
    let mut candidates: Vec<DeviceId> = live
        .iter()
        .filter(|n| {
            t.holders
                .get(n)
                .is_some_and(|h| h.evidence != Evidence::Pinned)
        })
        .copied()
        .collect();
    candidates.sort_by_key(|n| (ctx.free.get(n).copied().unwrap_or(0), mix(id, n)));
    candidates
        .into_iter()
        .take(extra)
        .map(|at| Action::Drop { block: *id, at })
        .collect()
}

/// Copies to audit this round: claimed ones first, then those not verified within the audit
/// interval, scanning from a seeded offset; grouped per node. Copies dropped this round are
/// not audited.
fn audits(ctx: &Ctx<'_>, seed: u64, dropping: &HashSet<(DeviceId, BlockId)>) -> Vec<Action> {
    let limit = ctx.policy.audits_per_round;
    let mut claimed = Vec::new();
    let mut due = Vec::new();
    let n = ctx.table.blocks.len().max(1);
    let start = usize::try_from(splitmix(seed) % n as u64).unwrap_or(0);
    let ordered = ctx
        .table
        .blocks
        .iter()
        .skip(start)
        .chain(ctx.table.blocks.iter().take(start));
    for (id, t) in ordered {
        for (node, h) in &t.holders {
            if h.evidence == Evidence::Pinned
                || ctx.standing(node) != Standing::Live
                || dropping.contains(&(*node, *id))
            {
                continue;
            }
            if h.evidence == Evidence::Claimed {
                claimed.push((*node, *id));
            } else if h
                .verified
                .is_none_or(|v| ctx.now.saturating_sub(v) >= ctx.policy.audit_interval)
                && due.len() < limit
            {
                due.push((*node, *id));
            }
        }
    }
    claimed.extend(due);
    claimed.truncate(limit);
    let mut per_node: BTreeMap<DeviceId, Vec<BlockId>> = BTreeMap::new();
    for (node, id) in claimed {
        per_node.entry(node).or_default().push(id);
    }
    per_node
        .into_iter()
        .flat_map(|(at, ids)| {
            ids.chunks(MAX_AUDIT_IDS)
                .map(|c| Action::Audit {
                    at,
                    blocks: c.to_vec(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A well-mixed 64-bit value of (block, node): the tie-breaker that spreads placements.
fn mix(id: &BlockId, node: &DeviceId) -> u64 {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&id.0[..8]);
    b.copy_from_slice(&node.0[..8]);
    splitmix(u64::from_le_bytes(a) ^ u64::from_le_bytes(b).rotate_left(17))
}

/// SplitMix64's output function.
pub(crate) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
