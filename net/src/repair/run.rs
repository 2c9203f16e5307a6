//! Executing a [`Plan`] with a [`Node`]: the I/O half of the repair loop. Copies read the
//! block locally or fetch it (verified by id), then `PutBlocks` it; drops send `DropBlocks`;
//! audits send a fresh nonce and check the proofs against a verified copy. Every result is
//! fed back into the [`HolderTable`]. All calls have deadlines and go through the node's
//! bandwidth limiters.
use super::{Action, Evidence, HolderTable, Plan};
use crate::{DeviceId, Node, PutStatus, audit_nonce, audit_proof};
use blockstore::BlockId;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};

/// Deadline of fetching blocks for a copy or an audit.
const FETCH_DEADLINE: Duration = Duration::from_secs(30);

/// The deadline of auditing `bytes` of blocks: 2 s plus the bytes at 20 MB/s, what reading
/// them from a slow local disk takes (docs/redundancy.md, "Audits").
pub fn audit_deadline(bytes: u64) -> Duration {
    Duration::from_secs(2) + Duration::from_millis(bytes / 20_000)
}

/// What executing a plan did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Copies stored on their target.
    pub copied: usize,
    /// Bytes of those copies.
    pub bytes_copied: u64,
    /// Nodes that answered `QuotaFull`: give them `free = 0` in the next round.
    pub quota_full: Vec<DeviceId>,
    /// Copies deleted by `DropBlocks`.
    pub dropped: usize,
    /// Audited copies whose proof matched.
    pub audits_passed: usize,
    /// Audited copies whose proof was wrong or missing.
    pub audits_failed: usize,
    /// Requests that failed (timeout, no session, no copy to read): retried by later rounds.
    pub errors: usize,
}

/// Executes `plan` at time `now` (the same clock as the table's).
pub async fn execute(
    node: &Arc<Node>,
    table: &mut HolderTable,
    plan: &Plan,
    now: Duration,
    deadline: Duration,
) -> RunReport {
    let mut report = RunReport::default();
    let mut copies: BTreeMap<DeviceId, Vec<BlockId>> = BTreeMap::new();
    let mut drops: BTreeMap<DeviceId, Vec<BlockId>> = BTreeMap::new();
    for a in &plan.actions {
        match a {
            Action::Copy { block, to, .. } => copies.entry(*to).or_default().push(*block),
            Action::Drop { block, at } => drops.entry(*at).or_default().push(*block),
            Action::Audit { at, blocks } => {
                audit_one(node, table, *at, blocks, now, &mut report).await;
            }
        }
    }
    for (to, ids) in copies {
        copy_to(node, table, to, &ids, deadline, &mut report).await;
    }
    for (at, ids) in drops {
        match node.drop_blocks(&at, &ids, deadline).await {
            Ok(done) => {
                report.dropped += done.iter().filter(|d| **d).count();
                ids.iter().for_each(|id| table.remove_holder(id, &at));
            }
            Err(e) => {
                debug!(node = %at, error = %e, "drop failed");
                report.errors += 1;
            }
        }
    }
    report
}

/// Verified bytes of `ids`: local first, then from peers.
async fn read_blocks(node: &Arc<Node>, ids: &[BlockId]) -> HashMap<BlockId, Vec<u8>> {
    let mut out = HashMap::new();
    let mut missing = Vec::new();
    for id in ids {
        match node.local_block(*id).await {
            Some(d) if BlockId::of(&d) == *id => {
                out.insert(*id, d);
            }
            _ => missing.push(*id),
        }
    }
    if !missing.is_empty() {
        for (id, r) in node.fetch_blocks(&missing, FETCH_DEADLINE).await {
            if let Ok(d) = r {
                out.insert(id, d);
            }
        }
    }
    out
}

async fn copy_to(
    node: &Arc<Node>,
    table: &mut HolderTable,
    to: DeviceId,
    ids: &[BlockId],
    deadline: Duration,
    report: &mut RunReport,
) {
    let mut data = read_blocks(node, ids).await;
    let blocks: Vec<(BlockId, Vec<u8>)> = ids
        .iter()
        .filter_map(|id| data.remove(id).map(|d| (*id, d)))
        .collect();
    report.errors += ids.len() - blocks.len();
    match node.put_blocks(&to, &blocks, deadline).await {
        Ok(statuses) => {
            for ((id, d), s) in blocks.iter().zip(statuses) {
                match s {
                    PutStatus::Stored => {
                        table.add_holder(id, to, Evidence::Stored);
                        report.copied += 1;
                        report.bytes_copied += d.len() as u64;
                    }
                    PutStatus::QuotaFull if !report.quota_full.contains(&to) => {
                        report.quota_full.push(to);
                    }
                    _ => report.errors += 1,
                }
            }
        }
        Err(e) => {
            debug!(node = %to, error = %e, "put failed");
            report.errors += 1;
        }
    }
}

async fn audit_one(
    node: &Arc<Node>,
    table: &mut HolderTable,
    at: DeviceId,
    ids: &[BlockId],
    now: Duration,
    report: &mut RunReport,
) {
    let copies = read_blocks(node, ids).await;
    let ids: Vec<BlockId> = ids
        .iter()
        .filter(|id| copies.contains_key(id))
        .copied()
        .collect();
    let Ok(nonce) = audit_nonce() else {
        report.errors += 1;
        return;
    };
    let bytes: u64 = copies.values().map(|d| d.len() as u64).sum();
    match node.audit(&at, nonce, &ids, audit_deadline(bytes)).await {
        Ok(proofs) => {
            for (id, p) in ids.iter().zip(proofs) {
                let ok = p == Some(audit_proof(&nonce, &copies[id]));
                if !ok {
                    warn!(node = %at, block = %id, "audit failed");
                    report.audits_failed += 1;
                } else {
                    report.audits_passed += 1;
                }
                table.audit_result(at, id, ok, now);
            }
        }
        Err(e) => {
            debug!(node = %at, error = %e, "audit got no answer");
            report.errors += 1;
        }
    }
}
