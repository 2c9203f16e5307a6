//! Healing local copies (docs/redundancy.md, "Healing"): a block whose local copy fails
//! verification — on a read, in a local audit, when a peer puts a block already held — is
//! fetched from another holder and made the indexed copy in place (`BlockStore::heal`).
//!
//! The local audit re-hashes the store's own blocks a slice per round, in id order from a
//! rotating cursor, so every copy is read back periodically, not only the ones being read.
use blockstore::{BlockId, BlockStore, Class, Healed, StoreError};
use fossa_net::Node;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Bytes of local copies re-hashed per round by default.
const AUDIT_BYTES: u64 = 64 << 20;
/// Environment variable overriding [`AUDIT_BYTES`] (tests).
pub(crate) const AUDIT_BYTES_ENV: &str = "FOSSA_LOCAL_AUDIT_BYTES";
/// Deadline of fetching the good copies of corrupt blocks.
const FETCH_DEADLINE: Duration = Duration::from_secs(20);
/// Ids taken from the store at a time by the local audit.
const SLICE: usize = 256;
/// Most corrupt blocks fetched in one round.
const HEAL_MAX: usize = 256;

/// Makes verified `data` the indexed copy of `id`; `found_by` says what found the bad copy.
/// True if the store now holds a good copy.
pub(crate) fn replace(store: &BlockStore, id: BlockId, data: &[u8], found_by: &str) -> bool {
    match store.heal(id, data, Class::Own) {
        Ok(Healed::Replaced) => {
            tracing::warn!(block = %id, found_by, "corrupt local copy replaced by a verified copy from a peer");
            true
        }
        Ok(Healed::AlreadyGood | Healed::Added) => true,
        Err(e) => {
            tracing::warn!(block = %id, found_by, error = %e, "could not replace a corrupt local copy");
            false
        }
    }
}

/// Counters of the local audit, for `fossa status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HealStats {
    /// Local copies re-hashed.
    pub(crate) checked: u64,
    /// Local copies found corrupt (by the audit or by reads).
    pub(crate) corrupt: u64,
    /// Corrupt copies replaced by a verified copy from a peer.
    pub(crate) healed: u64,
}

/// The local audit's position and the corrupt copies not yet healed.
#[derive(Default)]
pub(crate) struct LocalAudit {
    /// The last id checked (the next round starts after it).
    cursor: Option<BlockId>,
    /// Corrupt local copies waiting for a good copy.
    pub(crate) pending: HashSet<BlockId>,
    pub(crate) stats: HealStats,
}

impl LocalAudit {
    /// Re-hashes up to the round's budget of own blocks after the cursor; corrupt ones are
    /// added to `pending`.
    pub(crate) fn scan(&mut self, store: &BlockStore) {
        let budget = budget();
        let mut bytes = 0u64;
        let mut wrapped = false;
        while bytes < budget {
            let ids = store.own_ids_after(self.cursor, SLICE);
            if ids.is_empty() {
                // The end of the store: go round again, at most once per round.
                if wrapped || self.cursor.is_none() {
                    return;
                }
                wrapped = true;
                self.cursor = None;
                continue;
            }
            for id in ids {
                if bytes >= budget {
                    return;
                }
                self.cursor = Some(id);
                bytes += self.check(store, id);
            }
        }
    }

    /// Re-hashes one local copy; the bytes read.
    fn check(&mut self, store: &BlockStore, id: BlockId) -> u64 {
        self.stats.checked += 1;
        match store.get(&id) {
            Ok(d) => d.len() as u64,
            Err(StoreError::NotFound(_)) => 0,
            Err(e) => {
                tracing::error!(block = %id, error = %e, "local audit: copy failed verification");
                self.flag(id);
                0
            }
        }
    }

    /// Records a corrupt local copy found elsewhere (a read that could not heal it).
    pub(crate) fn flag(&mut self, id: BlockId) {
        if self.pending.insert(id) {
            self.stats.corrupt += 1;
        }
    }

    /// Fetches good copies of pending blocks from peers and replaces the bad ones. Blocks no
    /// longer in the store (deleted meanwhile) are forgotten.
    pub(crate) fn heal(
        &mut self,
        store: &BlockStore,
        node: &Arc<Node>,
        rt: &tokio::runtime::Handle,
    ) {
        self.pending.retain(|id| store.has(id).unwrap_or(true));
        if self.pending.is_empty() || node.connected().is_empty() {
            return;
        }
        let ids: Vec<BlockId> = self.pending.iter().take(HEAL_MAX).copied().collect();
        let node = node.clone();
        let got = rt.block_on(async move { node.fetch_blocks(&ids, FETCH_DEADLINE).await });
        for (id, r) in got {
            match r {
                Ok(data) if replace(store, id, &data, "audit") => {
                    self.pending.remove(&id);
                    self.stats.healed += 1;
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(block = %id, error = %e, "no peer gave a good copy yet"),
            }
        }
    }
}

/// [`AUDIT_BYTES`] or `$FOSSA_LOCAL_AUDIT_BYTES`.
fn budget() -> u64 {
    std::env::var(AUDIT_BYTES_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(AUDIT_BYTES)
}
