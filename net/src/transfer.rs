//! Block streams (docs/protocol.md, "Block streams"): serving `GetBlocks` from the replica and
//! fetching blocks from peers, every received block checked against its id.
use crate::limit::Limiter;
use crate::node::{Node, protocol_violation};
use crate::proto::{
    FrameError, GetBlocks, MAX_IDS_PER_REQUEST, Message, read_msg, write_block, write_msg,
};
use crate::{DeviceId, MAX_MESSAGE_SIZE, NetError, Role};
use blockstore::BlockId;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::task::JoinSet;
use tracing::{debug, warn};

/// Room for the message envelope around a block's bytes.
pub(crate) const BLOCK_ENVELOPE: usize = 64;

/// Serves block requests the peer opens on `conn` until it closes.
pub(crate) async fn serve(node: Arc<Node>, conn: quinn::Connection, peer: DeviceId) {
    while let Ok((send, recv)) = conn.accept_bi().await {
        tokio::spawn(serve_stream(node.clone(), conn.clone(), peer, send, recv));
    }
}

async fn serve_stream(
    node: Arc<Node>,
    conn: quinn::Connection,
    peer: DeviceId,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let result = async {
        // Only member devices ask anything of a node: a keeper never opens a stream.
        if node.members.role(&peer) != Some(Role::Device) {
            return Err(FrameError::Malformed);
        }
        match read_msg(&mut recv).await? {
            Message::GetBlocks(req) => serve_get(&node, req, &mut send).await,
            other => crate::keep::serve_request(&node, peer, other, &mut send).await,
        }
    }
    .await;
    match result {
        Ok(()) => {}
        Err(e) if e.is_protocol() => protocol_violation(&conn, &peer, &e),
        Err(e) => debug!(%peer, error = %e, "block stream ended"),
    }
}

/// A locally held block: one held for others, else the replica's (checked against `id`).
pub(crate) async fn local_block(node: &Arc<Node>, id: BlockId) -> Option<Vec<u8>> {
    if let Some(holder) = node.holder.clone() {
        match tokio::task::spawn_blocking(move || holder.get(&id)).await {
            Ok(Ok(Some(d))) => return Some(d),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => warn!(block = %id, error = %e, "reading a held block failed"),
            Err(_) => {}
        }
    }
    let replica = node.replica.clone();
    match tokio::task::spawn_blocking(move || replica.block(&id)).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            warn!(block = %id, error = %e, "reading a block for a peer failed");
            None
        }
        Err(_) => None,
    }
}

async fn serve_get(
    node: &Arc<Node>,
    req: GetBlocks,
    send: &mut quinn::SendStream,
) -> Result<(), FrameError> {
    if req.ids.len() > MAX_IDS_PER_REQUEST {
        return Err(FrameError::Malformed);
    }
    for id in req.ids {
        let data = local_block(node, BlockId(id))
            .await
            .filter(|d| d.len() + BLOCK_ENVELOPE <= MAX_MESSAGE_SIZE);
        node.send_limit
            .take(data.as_ref().map_or(0, Vec::len))
            .await;
        write_block(send, id, data).await?;
    }
    send.finish().map_err(|e| FrameError::Stream(e.into()))?;
    Ok(())
}

/// Asks `peer` for `ids` on a new stream; the answers, in order.
async fn request(
    limit: Arc<Limiter>,
    conn: quinn::Connection,
    peer: DeviceId,
    ids: Vec<BlockId>,
) -> Result<Answers, NetError> {
    let result = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(NetError::from)?;
        let req = GetBlocks {
            ids: ids.iter().map(|b| b.0).collect(),
        };
        write_msg(&mut send, &Message::GetBlocks(req)).await?;
        send.finish().map_err(|e| FrameError::Stream(e.into()))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            match read_msg(&mut recv).await? {
                Message::Block(b) if b.id == id.0 => {
                    limit.take(b.data.as_ref().map_or(0, Vec::len)).await;
                    out.push((*id, b.data));
                }
                _ => return Err(FrameError::Malformed),
            }
        }
        Ok(out)
    }
    .await;
    result.map_err(|e| match e {
        e if e.is_protocol() => {
            protocol_violation(&conn, &peer, &e);
            NetError::Protocol("bad block response")
        }
        FrameError::Stream(e) => e,
        _ => NetError::StreamEnded,
    })
}

/// Per-id state of a fetch.
struct Want {
    tried: HashSet<DeviceId>,
    result: Option<Result<Vec<u8>, NetError>>,
}

/// Fetches `ids` from connected peers within `deadline` (see [`Node::fetch_blocks`]).
pub(crate) async fn fetch(
    node: &Node,
    ids: &[BlockId],
    deadline: Duration,
) -> Vec<(BlockId, Result<Vec<u8>, NetError>)> {
    let end = tokio::time::Instant::now() + deadline;
    let mut wants: HashMap<BlockId, Want> = ids
        .iter()
        .map(|id| {
            let w = Want {
                tried: HashSet::new(),
                result: None,
            };
            (*id, w)
        })
        .collect();
    loop {
        let peers = node.sessions();
        let plan = assign(node, &peers, &mut wants);
        if plan.is_empty() {
            break;
        }
        let mut set = JoinSet::new();
        for (peer, conn, chunk) in plan {
            let limit = node.recv_limit.clone();
            set.spawn(
                async move { (peer, chunk.clone(), request(limit, conn, peer, chunk).await) },
            );
        }
        let round = tokio::time::timeout_at(end, async {
            while let Some(joined) = set.join_next().await {
                if let Ok((peer, asked, answer)) = joined {
                    take_answer(&mut wants, peer, asked, answer);
                }
            }
        })
        .await;
        if round.is_err() {
            break;
        }
    }
    ids.iter()
        .map(|id| {
            let r = match wants.get_mut(id).and_then(|w| w.result.take()) {
                Some(r) => r,
                None if tokio::time::Instant::now() >= end => Err(NetError::Timeout),
                None => Err(NetError::NotFound),
            };
            // A repeated id gets the bytes again, or the same error kind.
            if let (Ok(d), Some(w)) = (&r, wants.get_mut(id)) {
                w.result = Some(Ok(d.clone()));
            }
            (*id, r)
        })
        .collect()
}

/// A peer's answers to one request, in order.
type Answers = Vec<(BlockId, Option<Vec<u8>>)>;

type Plan = Vec<(DeviceId, quinn::Connection, Vec<BlockId>)>;

/// Spreads the open ids over peers not yet asked for them, at most 64 ids per request.
fn assign(
    node: &Node,
    peers: &[(DeviceId, crate::node::Session)],
    wants: &mut HashMap<BlockId, Want>,
) -> Plan {
    let mut per_peer: HashMap<usize, Vec<BlockId>> = HashMap::new();
    let mut open: Vec<(&BlockId, &mut Want)> = wants
        .iter_mut()
        .filter(|(_, w)| w.result.is_none())
        .collect();
    open.sort_by_key(|(id, _)| **id);
    for (id, w) in open {
        let candidates: Vec<usize> = (0..peers.len())
            .filter(|i| !w.tried.contains(&peers[*i].0))
            .collect();
        if candidates.is_empty() {
            w.result = Some(Err(if peers.is_empty() {
                NetError::NoPeers
            } else {
                NetError::NotFound
            }));
            continue;
        }
        let pick = node.rr.fetch_add(1, Ordering::Relaxed) % candidates.len();
        per_peer.entry(candidates[pick]).or_default().push(*id);
    }
    let mut plan = Vec::new();
    for (i, ids) in per_peer {
        let (peer, session) = &peers[i];
        for chunk in ids.chunks(MAX_IDS_PER_REQUEST) {
            plan.push((*peer, session.conn.clone(), chunk.to_vec()));
        }
    }
    plan
}

fn take_answer(
    wants: &mut HashMap<BlockId, Want>,
    peer: DeviceId,
    asked: Vec<BlockId>,
    answer: Result<Answers, NetError>,
) {
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            debug!(%peer, error = %e, "block request failed");
            asked.into_iter().map(|id| (id, None)).collect()
        }
    };
    for (id, data) in answer {
        let Some(w) = wants.get_mut(&id) else {
            continue;
        };
        w.tried.insert(peer);
        match data {
            Some(d) if BlockId::of(&d) == id => w.result = Some(Ok(d)),
            Some(_) => {
                warn!(%peer, block = %id, "peer sent a block that does not match its id; refused")
            }
            None => {}
        }
    }
}
