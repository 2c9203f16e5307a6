//! What a node serves from: a member device's [`Backend`] (its replica, and optionally a
//! holder of copies kept for others), or a keeper's holder alone; inside the node both are a
//! [`Local`], the one place that reads a block held here.
use crate::holder::BlockHolder;
use crate::members::Role;
use crate::replica::{NoIndex, Replica};
use blockstore::BlockId;
use std::sync::Arc;
use tracing::warn;

/// What a member device's node serves from (a keeper's node takes only a holder:
/// `Keeper::start`).
#[derive(Clone)]
pub struct Backend {
    /// The local volume.
    pub replica: Arc<dyn Replica>,
    /// Where copies placed here for redundancy go (None: refuses `PutBlocks`).
    pub holder: Option<Arc<dyn BlockHolder>>,
}

/// The blocks and index this node holds, and its role (fixed by how the node was started).
pub(crate) struct Local {
    /// The volume (a keeper's [`NoIndex`]).
    pub(crate) replica: Arc<dyn Replica>,
    /// Blocks held for others (every keeper; a device that accepts copies).
    pub(crate) holder: Option<Arc<dyn BlockHolder>>,
    /// Device or keeper.
    pub(crate) role: Role,
}

impl Local {
    /// A member device's.
    pub(crate) fn device(b: Backend) -> Self {
        Local {
            replica: b.replica,
            holder: b.holder,
            role: Role::Device,
        }
    }

    /// A keeper's: its holder, no index.
    pub(crate) fn keeper(holder: Arc<dyn BlockHolder>) -> Self {
        Local {
            replica: Arc::new(NoIndex),
            holder: Some(holder),
            role: Role::Keeper,
        }
    }

    /// A locally held block: one held for others, else the replica's (checked against `id`).
    pub(crate) async fn block(self: &Arc<Self>, id: BlockId) -> Option<Vec<u8>> {
        let local = self.clone();
        tokio::task::spawn_blocking(move || local.read(id))
            .await
            .ok()
            .flatten()
    }

    /// [`Local::block`] on the calling (blocking) thread.
    pub(crate) fn read(&self, id: BlockId) -> Option<Vec<u8>> {
        if let Some(holder) = &self.holder {
            match holder.get(&id) {
                Ok(Some(d)) => return Some(d),
                Ok(None) => {}
                Err(e) => warn!(block = %id, error = %e, "reading a held block failed"),
            }
        }
        match self.replica.block(&id) {
            Ok(d) => d,
            Err(e) => {
                warn!(block = %id, error = %e, "reading a block for a peer failed");
                None
            }
        }
    }
}
