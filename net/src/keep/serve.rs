//! The holder side of `PutBlocks`, `HasBlocks`, `Audit` and `DropBlocks` (docs/redundancy.md,
//! "Messages"): one request per stream, one answer, then the stream finishes. Holder calls run
//! on `spawn_blocking`.
use crate::backend::Local;

use crate::holder::{BlockHolder, HolderError, PutStatus, audit_proof};
use crate::identity::DeviceId;
use crate::limit::Limiter;
use crate::members::Role;
use crate::proto::{
    Audit, AuditResult, Bitmap, FrameError, IdList, MAX_IDS_PER_LIST, MAX_IDS_PER_REQUEST, Message,
    PutBlocks, PutResults, write_msg,
};
use crate::replica::ReplicaError;
use blockstore::BlockId;
use std::sync::Arc;
use tracing::{debug, warn};

/// Answers one keep request (`msg` is the stream's first message) on `send`; block data
/// put here waits on `recv_limit`.
pub(crate) async fn serve_request(
    node: &Arc<Local>,
    recv_limit: &Limiter,
    peer: DeviceId,
    msg: Message,
    send: &mut quinn::SendStream,
) -> Result<(), FrameError> {
    let answer = match msg {
        Message::PutBlocks(p) => Message::PutResults(put(node, recv_limit, peer, p).await?),
        Message::HasBlocks(l) => Message::HasResult(has(node, l).await?),
        Message::Audit(a) => Message::AuditResult(audit(node, a).await?),
        Message::DropBlocks(l) => Message::Dropped(drop_blocks(node, peer, l).await?),
        _ => return Err(FrameError::Malformed),
    };
    write_msg(send, &answer).await?;
    send.finish().map_err(|e| FrameError::Link(e.into()))
}

/// Runs `f` on `holder` in a blocking thread; a task that ends without an answer (panicked)
/// is a local failure.
async fn with_holder<T: Send + 'static>(
    holder: &Arc<dyn BlockHolder>,
    f: impl FnOnce(&dyn BlockHolder) -> T + Send + 'static,
) -> Result<T, FrameError> {
    let holder = holder.clone();
    tokio::task::spawn_blocking(move || f(holder.as_ref()))
        .await
        .map_err(|_| FrameError::Replica(ReplicaError::TaskLost))
}

async fn put(
    node: &Local,
    recv_limit: &Limiter,
    peer: DeviceId,
    req: PutBlocks,
) -> Result<PutResults, FrameError> {
    let bytes: usize = req.blocks.iter().map(|(_, d)| d.len()).sum();
    recv_limit.take(bytes).await;
    let mut status = vec![PutStatus::Bad; req.blocks.len()];
    let mut good = Vec::with_capacity(req.blocks.len());
    let mut slots = Vec::with_capacity(req.blocks.len());
    for (i, (id, data)) in req.blocks.into_iter().enumerate() {
        let (id, data) = (BlockId(id), data.into_vec());
        if BlockId::of(&data) == id {
            slots.push(i);
            good.push((id, data));
        } else {
            warn!(%peer, block = %id, "PutBlocks: bytes do not match the id; refused");
        }
    }
    let Some(holder) = &node.holder else {
        slots.iter().for_each(|i| status[*i] = PutStatus::Failed);
        return Ok(results(&status));
    };
    let stored = with_holder(holder, move |h| h.put(&good)).await?;
    let mut failed = None;
    for (i, r) in slots.into_iter().zip(stored) {
        status[i] = match r {
            Ok(()) => PutStatus::Stored,
            Err(HolderError::QuotaFull { .. } | HolderError::DiskFull) => PutStatus::QuotaFull,
            Err(e) => {
                failed.get_or_insert((e, 0)).1 += 1;
                PutStatus::Failed
            }
        };
    }
    // One line per request, not per block.
    if let Some((e, blocks)) = failed {
        warn!(%peer, blocks, error = %e, "storing blocks for a peer failed");
    }
    if status.contains(&PutStatus::QuotaFull) {
        debug!(%peer, "PutBlocks refused for lack of room");
    }
    Ok(results(&status))
}

fn results(status: &[PutStatus]) -> PutResults {
    PutResults {
        results: status.iter().map(|s| s.to_wire()).collect(),
    }
}

/// A held block: from the holder, else from the local replica (a device's own data).
async fn read_block(node: &Arc<Local>, id: BlockId) -> Option<Vec<u8>> {
    node.block(id).await
}

async fn has(node: &Arc<Local>, req: IdList) -> Result<Bitmap, FrameError> {
    if req.ids.len() > MAX_IDS_PER_LIST {
        return Err(FrameError::Malformed);
    }
    let mut flags = Vec::with_capacity(req.ids.len());
    for id in req.ids {
        let id = BlockId(id);
        let held = match &node.holder {
            Some(h) => with_holder(h, move |h| h.has(&id).unwrap_or(false)).await?,
            None => false,
        };
        // Not held for others: a device may still hold it as its own data.
        let own = !held && node.role == Role::Device && read_block(node, id).await.is_some();
        flags.push(held || own);
    }
    Ok(Bitmap::pack(&flags))
}

async fn audit(node: &Arc<Local>, req: Audit) -> Result<AuditResult, FrameError> {
    if req.ids.len() > MAX_IDS_PER_REQUEST {
        return Err(FrameError::Malformed);
    }
    let mut proofs = Vec::with_capacity(req.ids.len());
    for id in req.ids {
        let block = read_block(node, BlockId(id)).await;
        proofs.push(block.map(|b| audit_proof(&req.nonce, &b)));
    }
    Ok(AuditResult { proofs })
}

async fn drop_blocks(node: &Local, peer: DeviceId, req: IdList) -> Result<Bitmap, FrameError> {
    if req.ids.len() > MAX_IDS_PER_LIST {
        return Err(FrameError::Malformed);
    }
    let Some(holder) = &node.holder else {
        return Ok(Bitmap::pack(&vec![false; req.ids.len()]));
    };
    let ids: Vec<BlockId> = req.ids.into_iter().map(BlockId).collect();
    let flags = with_holder(holder, move |h| {
        ids.iter()
            .map(|id| h.delete(id).unwrap_or(false))
            .collect::<Vec<bool>>()
    })
    .await?;
    debug!(%peer, dropped = flags.iter().filter(|f| **f).count(), "dropped surplus copies");
    Ok(Bitmap::pack(&flags))
}
