//! The volume as the network layer sees it ([`fossa_net::Replica`] over [`Fs`]), and the
//! signing and checking of index updates with the device key and the member list.
use super::puller::PullMsg;
use blockstore::{BlockId, BlockStore, StoreError};
use crossbeam_channel::Sender;
use fossa_fs::Fs;
use fossa_fs::sync::{UpdateSigner, UpdateVerifier};
use fossa_net::{DeviceId, DeviceKey, Members, Replica, ReplicaError, verify_signature};
use std::sync::Arc;

/// Signs this device's updates with its key.
pub(crate) struct DeviceSigner(pub(crate) Arc<DeviceKey>);

impl UpdateSigner for DeviceSigner {
    fn device(&self) -> [u8; 32] {
        self.0.id().0
    }
    fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg)
    }
}

/// Accepts updates signed by a current member only.
pub(crate) struct MemberVerifier(pub(crate) Arc<Members>);

impl UpdateVerifier for MemberVerifier {
    fn verify(&self, author: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
        let device = DeviceId(*author);
        let Some(pk) = self.0.public_key(&device) else {
            tracing::warn!(%device, "refused an update: its author is not a current member");
            return false;
        };
        let ok = verify_signature(&pk, msg, sig);
        if !ok {
            tracing::warn!(%device, "refused an update: bad signature");
        }
        ok
    }
}

/// [`Replica`] over the filesystem core. Every apply's report goes to `applied` (FUSE cache
/// invalidation, then the block puller).
pub(crate) struct FsReplica {
    pub(crate) fs: Arc<Fs>,
    pub(crate) store: Arc<BlockStore>,
    pub(crate) applied: Sender<PullMsg>,
}

fn replica_err(e: impl std::error::Error + Send + Sync + 'static) -> ReplicaError {
    ReplicaError::volume(e)
}

impl Replica for FsReplica {
    fn index_id(&self) -> u64 {
        self.fs.sync_handle().index_id()
    }
    fn local_seq(&self) -> u64 {
        self.fs.sync_handle().seq()
    }
    fn updates_since(&self, after: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>, ReplicaError> {
        self.fs
            .sync_handle()
            .updates(after, max)
            .map_err(replica_err)
    }
    fn progress(&self, peer: &DeviceId) -> (u64, u64) {
        self.fs.sync_handle().progress(&peer.0)
    }
    fn apply(
        &self,
        peer: &DeviceId,
        index_id: u64,
        upto: u64,
        updates: Vec<Vec<u8>>,
    ) -> Result<(), ReplicaError> {
        let report = self
            .fs
            .sync_handle()
            .apply(&peer.0, index_id, upto, &updates)
            .map_err(replica_err)?;
        if report.rejected > 0 {
            tracing::warn!(%peer, rejected = report.rejected, "refused updates from peer");
        }
        if report.applied > 0 || report.conflicts > 0 {
            tracing::debug!(%peer, applied = report.applied, conflicts = report.conflicts, "applied");
        }
        // The receiver lives as long as the daemon; a send fails only during shutdown.
        let _ = self.applied.send(PullMsg::Applied(report));
        Ok(())
    }
    fn block(&self, id: &BlockId) -> Result<Option<Vec<u8>>, ReplicaError> {
        match self.store.get(id) {
            Ok(b) => Ok(Some(b)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(replica_err(e)),
        }
    }
}
