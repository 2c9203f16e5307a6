//! Serving `GetBlocks`: the blocks in order, each read from what this node holds, an absent
//! one for each it does not hold.
use super::BLOCK_ENVELOPE;
use crate::MAX_MESSAGE_SIZE;
use crate::backend::Local;
use crate::error::LinkError;
use crate::limit::Limiter;
use crate::proto::{FrameError, GetBlocks, MAX_IDS_PER_REQUEST, write_block};
use blockstore::BlockId;
use std::sync::Arc;

/// Blocks read from the store in one blocking task; the next group is read while this one
/// is sent, so disk and network overlap without pinning a thread for a whole stream.
const READ_GROUP: usize = 4;

/// See [`super::Transfer::serve_get`].
pub(super) async fn serve_get(
    local: &Arc<Local>,
    limit: &Limiter,
    req: GetBlocks,
    send: &mut quinn::SendStream,
) -> Result<(), FrameError> {
    if req.ids.len() > MAX_IDS_PER_REQUEST {
        return Err(FrameError::Malformed);
    }
    let read = |group: Vec<[u8; 32]>| {
        let local = local.clone();
        tokio::task::spawn_blocking(move || {
            let fits = |d: &Vec<u8>| d.len() + BLOCK_ENVELOPE <= MAX_MESSAGE_SIZE;
            group
                .into_iter()
                .map(|id| (id, local.read(BlockId(id)).filter(fits)))
                .collect::<Vec<_>>()
        })
    };
    let mut groups = req.ids.chunks(READ_GROUP).map(<[_]>::to_vec);
    let mut next = groups.next().map(read);
    while let Some(reading) = next.take() {
        next = groups.next().map(read);
        // A read that panicked ends the stream early: the peer asks someone else.
        let blocks = reading
            .await
            .map_err(|_| FrameError::Link(LinkError::StreamEnded))?;
        for (id, data) in blocks {
            limit.take(data.as_ref().map_or(0, Vec::len)).await;
            write_block(send, id, data).await?;
        }
    }
    send.finish().map_err(|e| FrameError::Link(e.into()))?;
    Ok(())
}
