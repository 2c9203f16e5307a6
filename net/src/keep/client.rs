//! The member side of `PutBlocks`, `HasBlocks`, `Audit` and `DropBlocks`: [`KeepClient`]
//! asks one peer, each request on its own stream, the whole call under a deadline. Only a
//! member device's node has one.
use crate::MAX_MESSAGE_SIZE;
use crate::error::{LinkError, NetError, PeerError};
use crate::holder::PutStatus;
use crate::identity::DeviceId;
use crate::limit::Rates;
use crate::links::{Links, protocol_violation};
use crate::proto::{
    Audit, FrameError, IdList, MAX_IDS_PER_LIST, MAX_IDS_PER_REQUEST, Message, PutBlocks, read_msg,
    write_msg,
};
use blockstore::BlockId;
use serde_bytes::ByteBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Room for the envelope of one block in a `PutBlocks` (id, length varint, tag).
const PUT_ENTRY_OVERHEAD: usize = 48;
/// Room for the `PutBlocks` message envelope.
const PUT_ENVELOPE: usize = 64;

/// Sends keep requests to member sessions; block data put waits on the send limit.
pub(crate) struct KeepClient {
    links: Arc<Links>,
    rates: Arc<Rates>,
}

impl KeepClient {
    pub(crate) fn new(links: Arc<Links>, rates: Arc<Rates>) -> Self {
        KeepClient { links, rates }
    }

    /// Asks `peer` to store `blocks` (each `(id, bytes)`, checked by the holder) durably.
    /// One status per block, in order: [`PutStatus::QuotaFull`] means place it elsewhere.
    /// A block too large for one message is [`PutStatus::Bad`] without being sent.
    pub(crate) async fn put_blocks(
        &self,
        peer: &DeviceId,
        blocks: &[(BlockId, Vec<u8>)],
        deadline: Duration,
    ) -> Result<Vec<PutStatus>, NetError> {
        let end = Instant::now() + deadline;
        let conn = self.request_conn(peer)?;
        let mut out = vec![PutStatus::Bad; blocks.len()];
        for batch in put_batches(blocks) {
            let bytes: usize = batch.iter().map(|i| blocks[*i].1.len()).sum();
            self.rates.send.take(bytes).await;
            let req = PutBlocks {
                blocks: batch
                    .iter()
                    .map(|i| (blocks[*i].0.0, ByteBuf::from(blocks[*i].1.clone())))
                    .collect(),
            };
            let answer = ask(&conn, peer, Message::PutBlocks(req), end).await?;
            let Message::PutResults(r) = answer else {
                return Err(bad_answer(&conn, peer));
            };
            if r.results.len() != batch.len() {
                return Err(bad_answer(&conn, peer));
            }
            for (i, s) in batch.into_iter().zip(r.results) {
                out[i] = PutStatus::from_wire(s);
            }
        }
        Ok(out)
    }

    /// Asks `peer` which of `ids` it holds (its word only: check with [`KeepClient::audit`]).
    pub(crate) async fn has_blocks(
        &self,
        peer: &DeviceId,
        ids: &[BlockId],
        deadline: Duration,
    ) -> Result<Vec<bool>, NetError> {
        self.ask_bitmap(peer, ids, deadline, Message::HasBlocks)
            .await
    }

    /// Tells `peer` it may delete its copies of `ids`: send only for surplus copies (the
    /// planner's word that enough other copies exist). Which copies it deleted, in order.
    pub(crate) async fn drop_blocks(
        &self,
        peer: &DeviceId,
        ids: &[BlockId],
        deadline: Duration,
    ) -> Result<Vec<bool>, NetError> {
        self.ask_bitmap(peer, ids, deadline, Message::DropBlocks)
            .await
    }

    /// Challenges `peer` to prove it holds `ids`: per id, its `BLAKE3(nonce ‖ block)` or None
    /// (not held). Compare with [`crate::audit_proof`] over a verified copy; a wrong or
    /// missing proof, or no answer by the deadline, is a failed audit.
    pub(crate) async fn audit(
        &self,
        peer: &DeviceId,
        nonce: [u8; 32],
        ids: &[BlockId],
        deadline: Duration,
    ) -> Result<Vec<Option<[u8; 32]>>, NetError> {
        let end = Instant::now() + deadline;
        let conn = self.request_conn(peer)?;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_IDS_PER_REQUEST) {
            let req = Audit {
                nonce,
                ids: chunk.iter().map(|b| b.0).collect(),
            };
            let Message::AuditResult(r) = ask(&conn, peer, Message::Audit(req), end).await? else {
                return Err(bad_answer(&conn, peer));
            };
            if r.proofs.len() != chunk.len() {
                return Err(bad_answer(&conn, peer));
            }
            out.extend(r.proofs);
        }
        Ok(out)
    }

    async fn ask_bitmap(
        &self,
        peer: &DeviceId,
        ids: &[BlockId],
        deadline: Duration,
        make: fn(IdList) -> Message,
    ) -> Result<Vec<bool>, NetError> {
        let end = Instant::now() + deadline;
        let conn = self.request_conn(peer)?;
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_IDS_PER_LIST) {
            let req = make(IdList {
                ids: chunk.iter().map(|b| b.0).collect(),
            });
            let flags = match ask(&conn, peer, req, end).await? {
                Message::HasResult(b) | Message::Dropped(b) => b.unpack(chunk.len()),
                _ => None,
            };
            out.extend(flags.ok_or_else(|| bad_answer(&conn, peer))?);
        }
        Ok(out)
    }

    /// The session connection to `peer`.
    fn request_conn(&self, peer: &DeviceId) -> Result<quinn::Connection, NetError> {
        self.links
            .session_conn(peer)
            .ok_or(NetError::NotConnected(*peer))
    }
}

/// Index sets of `blocks`, each fitting one `PutBlocks` message; oversized blocks left out.
fn put_batches(blocks: &[(BlockId, Vec<u8>)]) -> Vec<Vec<usize>> {
    let room = MAX_MESSAGE_SIZE - PUT_ENVELOPE;
    let mut batches = Vec::new();
    let mut cur = Vec::new();
    let mut size = 0usize;
    for (i, (_, data)) in blocks.iter().enumerate() {
        let need = data.len() + PUT_ENTRY_OVERHEAD;
        if need > room {
            continue;
        }
        if size + need > room {
            batches.push(std::mem::take(&mut cur));
            size = 0;
        }
        cur.push(i);
        size += need;
    }
    if !cur.is_empty() {
        batches.push(cur);
    }
    batches
}

/// Sends one request on a new stream and reads its one answer, by `end`.
async fn ask(
    conn: &quinn::Connection,
    peer: &DeviceId,
    req: Message,
    end: Instant,
) -> Result<Message, NetError> {
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(LinkError::from)?;
        write_msg(&mut send, &req).await?;
        send.finish().map_err(|e| FrameError::Link(e.into()))?;
        read_msg(&mut recv).await
    };
    match tokio::time::timeout_at(end, exchange).await {
        Err(_) => Err(NetError::Link(LinkError::Timeout)),
        Ok(Ok(m)) => Ok(m),
        Ok(Err(e)) if e.is_protocol() => {
            protocol_violation(conn, peer, &e);
            Err(e.into())
        }
        Ok(Err(e)) => Err(e.into()),
    }
}

fn bad_answer(conn: &quinn::Connection, peer: &DeviceId) -> NetError {
    protocol_violation(conn, peer, &"answer does not match the request");
    NetError::Peer(PeerError::Violation("answer does not match the request"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_fit_one_message_and_skip_oversized_blocks() {
        let mk = |n: usize, len: usize| (BlockId([n as u8; 32]), vec![0u8; len]);
        let blocks = vec![
            mk(0, 3 << 20),
            mk(1, 2 << 20),
            mk(2, MAX_MESSAGE_SIZE),
            mk(3, 10),
        ];
        let b = put_batches(&blocks);
        assert_eq!(b, vec![vec![0], vec![1, 3]]);
        assert!(put_batches(&[]).is_empty());
    }
}
