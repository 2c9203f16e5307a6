//! Fetching blocks from peers: spread the ids over the connected peers (at most
//! [`MAX_IDS_PER_REQUEST`] per stream, a few streams at a time), check every block against its
//! id as it arrives, ask another peer when one lacks a block or lies, and never ask twice for
//! a block another fetch is getting ([`InFlight`]).
use super::{BlockSink, Transfer};
use crate::error::{FetchError, LinkError};
use crate::identity::DeviceId;
use crate::limit::Rates;
use crate::links::{Session, protocol_violation};
use crate::proto::{BlockFrames, FrameError, GetBlocks, MAX_IDS_PER_REQUEST, Message, write_msg};
use blockstore::BlockId;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::task::JoinSet;
use tracing::{debug, warn};

/// Most requests (streams, each of at most [`MAX_IDS_PER_REQUEST`] blocks) one fetch keeps
/// open at a time: enough to keep a peer's disk and the wire busy, few enough that a pull
/// does not queue megabytes behind a slow link.
const STREAMS_PER_FETCH: usize = 4;

/// What a peer answered for one id.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Bytes that hash to the id: handed to the sink.
    Got,
    /// Bytes that do not.
    Lied,
    /// No bytes (the peer lacks the block, or the stream ended first).
    Absent,
}

/// Asks `peer` for `ids` on a new stream and hands each verified block to `sink` as it
/// arrives; the answer for every id, in order (ids after a failure are `Absent`).
async fn request(
    rates: Arc<Rates>,
    conn: quinn::Connection,
    peer: DeviceId,
    ids: Vec<BlockId>,
    sink: BlockSink,
) -> Vec<(BlockId, Answer)> {
    let mut out = Vec::with_capacity(ids.len());
    let result = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(LinkError::from)?;
        let req = GetBlocks {
            ids: ids.iter().map(|b| b.0).collect(),
        };
        write_msg(&mut send, &Message::GetBlocks(req)).await?;
        send.finish().map_err(|e| FrameError::Link(e.into()))?;
        let mut frames = BlockFrames::new(&mut recv);
        for id in &ids {
            let (got, data) = frames.next().await?;
            if got != id.0 {
                return Err(FrameError::Malformed);
            }
            let answer = match data {
                Some(d) => {
                    rates.recv.take(d.len()).await;
                    if BlockId::of(&d) == *id {
                        sink(*id, d);
                        Answer::Got
                    } else {
                        warn!(%peer, block = %id, "peer sent a block that does not match its id; refused");
                        Answer::Lied
                    }
                }
                None => Answer::Absent,
            };
            out.push((*id, answer));
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {}
        Err(e) if e.is_protocol() => protocol_violation(&conn, &peer, &e),
        Err(e) => debug!(%peer, error = %e, "block request failed"),
    }
    let answered = out.len();
    out.extend(ids[answered..].iter().map(|id| (*id, Answer::Absent)));
    out
}

/// Per-id state of a fetch.
struct Want {
    tried: HashSet<DeviceId>,
    /// The last peer that sent bytes not matching the id.
    liar: Option<DeviceId>,
    /// `Some(Ok)` once a checked copy went to the sink.
    result: Option<Result<(), FetchError>>,
}

impl Want {
    /// Why the id was not fetched once every connected peer was asked.
    fn exhausted(&self, peers: usize) -> FetchError {
        match self.liar {
            _ if peers == 0 => FetchError::NoPeers,
            Some(peer) => FetchError::BadBytes { peer },
            None => FetchError::NotFound,
        }
    }
}

/// Waiters for a block another fetch is getting: each is sent the bytes, or `None` if that
/// fetch gave up on it.
type Waiters = Vec<tokio::sync::oneshot::Sender<Option<bytes::Bytes>>>;

/// The blocks some [`fetch_each`] call is getting now, with who else waits for them
/// (see `Transfer::fetching`).
#[derive(Default)]
pub(crate) struct InFlight(parking_lot::Mutex<HashMap<BlockId, Waiters>>);

/// The ids one [`fetch_each`] call owns: it asks peers for them and hands each to the
/// waiters; when the last handle goes, the waiters of those it never got are told.
struct Owned {
    table: Arc<InFlight>,
    ids: parking_lot::Mutex<HashSet<BlockId>>,
}

impl Owned {
    /// Gives `data` to the waiters for `id`, which is no longer in flight.
    fn deliver(&self, id: BlockId, data: &bytes::Bytes) {
        if self.ids.lock().remove(&id) {
            for w in self.table.0.lock().remove(&id).unwrap_or_default() {
                let _ = w.send(Some(data.clone()));
            }
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        let mut table = self.table.0.lock();
        for id in self.ids.get_mut().drain() {
            for w in table.remove(&id).unwrap_or_default() {
                let _ = w.send(None);
            }
        }
    }
}

/// See [`Transfer::fetch_each`].
pub(super) async fn fetch_each(
    node: &Transfer,
    ids: &[BlockId],
    deadline: Duration,
    sink: BlockSink,
) -> Vec<(BlockId, FetchError)> {
    let end = tokio::time::Instant::now() + deadline;
    let owned = Arc::new(Owned {
        table: node.fetching.clone(),
        ids: parking_lot::Mutex::new(HashSet::new()),
    });
    let mut mine = Vec::new();
    let mut joined = Vec::new();
    {
        let mut seen = HashSet::new();
        let mut table = node.fetching.0.lock();
        for id in ids.iter().filter(|id| seen.insert(**id)) {
            match table.get_mut(id) {
                Some(waiters) => {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    waiters.push(tx);
                    joined.push((*id, rx));
                }
                None => {
                    table.insert(*id, Vec::new());
                    owned.ids.lock().insert(*id);
                    mine.push(*id);
                }
            }
        }
    }
    let relay: BlockSink = {
        let (sink, owned) = (sink.clone(), owned.clone());
        Arc::new(move |id, data| {
            owned.deliver(id, &data);
            sink(id, data);
        })
    };
    drop(owned);
    let waits = async {
        let mut failed = Vec::new();
        for (id, rx) in joined {
            match tokio::time::timeout_at(end, rx).await {
                Ok(Ok(Some(data))) => sink(id, data),
                Ok(_) => failed.push((id, FetchError::NotFound)),
                Err(_) => failed.push((id, FetchError::Timeout)),
            }
        }
        failed
    };
    let (mut failed, waited) = tokio::join!(fetch_owned(node, &mine, end, relay), waits);
    failed.extend(waited);
    failed
}

/// [`fetch_each`] for ids no other call is getting.
async fn fetch_owned(
    node: &Transfer,
    ids: &[BlockId],
    end: tokio::time::Instant,
    sink: BlockSink,
) -> Vec<(BlockId, FetchError)> {
    let mut wants: HashMap<BlockId, Want> = ids
        .iter()
        .map(|id| {
            let w = Want {
                tried: HashSet::new(),
                liar: None,
                result: None,
            };
            (*id, w)
        })
        .collect();
    loop {
        let peers = node.links.sessions();
        let mut plan = assign(node, &peers, &mut wants).into_iter();
        if plan.len() == 0 {
            break;
        }
        let mut set = JoinSet::new();
        let spawn = |set: &mut JoinSet<_>, (peer, conn, chunk): PlanStep| {
            let rates = node.rates.clone();
            let sink = sink.clone();
            set.spawn(async move { (peer, request(rates, conn, peer, chunk, sink).await) });
        };
        for step in plan.by_ref().take(STREAMS_PER_FETCH) {
            spawn(&mut set, step);
        }
        let round = tokio::time::timeout_at(end, async {
            while let Some(joined) = set.join_next().await {
                if let Ok((peer, answers)) = joined {
                    take_answers(&mut wants, peer, answers);
                }
                if let Some(step) = plan.next() {
                    spawn(&mut set, step);
                }
            }
        })
        .await;
        if round.is_err() {
            break;
        }
    }
    let timed_out = tokio::time::Instant::now() >= end;
    wants
        .into_iter()
        .filter_map(|(id, w)| match w.result {
            Some(Ok(())) => None,
            Some(Err(e)) => Some((id, e)),
            None if timed_out => Some((id, FetchError::Timeout)),
            None => Some((id, FetchError::NotFound)),
        })
        .collect()
}

/// See [`Transfer::fetch`].
pub(super) async fn fetch(
    node: &Transfer,
    ids: &[BlockId],
    deadline: Duration,
) -> Vec<(BlockId, Result<Vec<u8>, FetchError>)> {
    let got: Arc<parking_lot::Mutex<HashMap<BlockId, bytes::Bytes>>> = Arc::default();
    let into = got.clone();
    let sink: BlockSink = Arc::new(move |id, data| {
        into.lock().insert(id, data);
    });
    let failed: HashMap<BlockId, FetchError> = fetch_each(node, ids, deadline, sink)
        .await
        .into_iter()
        .collect();
    let mut failed = failed;
    let got = got.lock();
    ids.iter()
        .map(|id| {
            // A repeated id gets the bytes again; a repeated failure reads as not found.
            let r = match got.get(id) {
                Some(d) => Ok(d.to_vec()),
                None => Err(failed.remove(id).unwrap_or(FetchError::NotFound)),
            };
            (*id, r)
        })
        .collect()
}

/// One request of a plan: whom to ask, on which connection, for what.
type PlanStep = (DeviceId, quinn::Connection, Vec<BlockId>);

type Plan = Vec<PlanStep>;

/// Spreads the open ids over peers not yet asked for them, at most 64 ids per request.
fn assign(
    node: &Transfer,
    peers: &[(DeviceId, Session)],
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
            w.result = Some(Err(w.exhausted(peers.len())));
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

fn take_answers(
    wants: &mut HashMap<BlockId, Want>,
    peer: DeviceId,
    answers: Vec<(BlockId, Answer)>,
) {
    for (id, answer) in answers {
        let Some(w) = wants.get_mut(&id) else {
            continue;
        };
        w.tried.insert(peer);
        match answer {
            Answer::Got => w.result = Some(Ok(())),
            Answer::Lied => w.liar = Some(peer),
            Answer::Absent => {}
        }
    }
}
