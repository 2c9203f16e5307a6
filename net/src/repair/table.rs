//! The holder table: who holds which block, since when, and how each node fares in audits.
//! Pure bookkeeping with injected time (a `Duration` since any fixed origin).
use crate::DeviceId;
use blockstore::BlockId;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Why the table believes a node holds a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// The node's own data (a device's replica): never asked to drop it.
    Pinned,
    /// The node acknowledged a `PutBlocks` (stored durably).
    Stored,
    /// The node said so in `HasBlocks`: counted, but audited first.
    Claimed,
}

/// One copy of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Holding {
    pub(crate) evidence: Evidence,
    /// When an audit of this copy last passed.
    pub(crate) verified: Option<Duration>,
}

/// A block the policy covers.
#[derive(Clone, Debug)]
pub(crate) struct Tracked {
    pub(crate) size: u64,
    pub(crate) level: u8,
    pub(crate) holders: BTreeMap<DeviceId, Holding>,
}

/// How a node fares.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Health {
    pub(crate) last_seen: Option<Duration>,
    pub(crate) audit_failures: u32,
    pub(crate) audits_passed: u64,
}

/// Block → holders, and node → health (docs/redundancy.md, "Planner").
#[derive(Clone, Debug, Default)]
pub struct HolderTable {
    pub(crate) blocks: BTreeMap<BlockId, Tracked>,
    pub(crate) nodes: HashMap<DeviceId, Health>,
}

impl HolderTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }
    /// Tracks `id` (`size` bytes) at redundancy `level`, or changes its level.
    pub fn set_block(&mut self, id: BlockId, size: u64, level: u8) {
        let t = self.blocks.entry(id).or_insert_with(|| Tracked {
            size,
            level,
            holders: BTreeMap::new(),
        });
        t.level = level;
    }
    /// Stops tracking `id` (no longer reachable: its copies may be collected).
    pub fn remove_block(&mut self, id: &BlockId) {
        self.blocks.remove(id);
    }
    /// Records that `node` holds `id`. A stronger evidence replaces a weaker one.
    pub fn add_holder(&mut self, id: &BlockId, node: DeviceId, evidence: Evidence) {
        let Some(t) = self.blocks.get_mut(id) else {
            return;
        };
        let h = t.holders.entry(node).or_insert(Holding {
            evidence,
            verified: None,
        });
        if rank(evidence) > rank(h.evidence) {
            h.evidence = evidence;
        }
    }
    /// Records that `node` no longer holds `id` (dropped, or said it has not).
    pub fn remove_holder(&mut self, id: &BlockId, node: &DeviceId) {
        if let Some(t) = self.blocks.get_mut(id) {
            t.holders.remove(node);
        }
    }
    /// Records that `node` was reachable at `now` (a live session).
    pub fn seen(&mut self, node: DeviceId, now: Duration) {
        self.nodes.entry(node).or_default().last_seen = Some(now);
    }
    /// Records an audit of `node`'s copy of `id`: a pass verifies the copy; a failure
    /// (wrong or missing proof) removes it and counts against the node.
    pub fn audit_result(&mut self, node: DeviceId, id: &BlockId, passed: bool, now: Duration) {
        let health = self.nodes.entry(node).or_default();
        if passed {
            health.audits_passed += 1;
            if let Some(h) = self
                .blocks
                .get_mut(id)
                .and_then(|t| t.holders.get_mut(&node))
            {
                h.verified = Some(now);
                if h.evidence == Evidence::Claimed {
                    h.evidence = Evidence::Stored;
                }
            }
        } else {
            health.audit_failures += 1;
            self.remove_holder(id, &node);
        }
    }
    /// Audit failures recorded against `node`.
    pub fn audit_failures(&self, node: &DeviceId) -> u32 {
        self.nodes.get(node).map_or(0, |h| h.audit_failures)
    }
    /// The nodes the table lists as holding `id`, counted or not.
    pub fn holders(&self, id: &BlockId) -> Vec<DeviceId> {
        self.blocks
            .get(id)
            .map(|t| t.holders.keys().copied().collect())
            .unwrap_or_default()
    }
    /// The wanted level of `id`.
    pub fn level(&self, id: &BlockId) -> Option<u8> {
        self.blocks.get(id).map(|t| t.level)
    }
    /// Every tracked block.
    pub fn blocks(&self) -> impl Iterator<Item = &BlockId> {
        self.blocks.keys()
    }
    /// Number of tracked blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }
    /// True if no block is tracked.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

fn rank(e: Evidence) -> u8 {
    match e {
        Evidence::Claimed => 0,
        Evidence::Stored => 1,
        Evidence::Pinned => 2,
    }
}
