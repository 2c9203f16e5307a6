//! The control stream of one member connection (docs/protocol.md, "Control stream"):
//! hello → negotiated (Hello, Members, Want exchanged) → transferring (Index batches both
//! ways, Members on change). Any violation closes the connection with PROTOCOL.
use crate::backend::Local;
use crate::error::PeerError;
use crate::identity::DeviceId;
use crate::links::{Links, protocol_violation};
use crate::members::{Role, SignedMember};
use crate::proto::{
    self, FrameError, Hello, Index, MAX_BATCH_BYTES, MAX_UPDATES_PER_BATCH, MembersMsg, Message,
    Want, code, read_msg, write_msg,
};
use crate::replica::ReplicaError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;
use tracing::{debug, warn};

/// The index-sync part of a node: what every control stream needs besides its connection.
pub(crate) struct IndexSync {
    links: Arc<Links>,
    local: Arc<Local>,
    /// Bumped by [`IndexSync::notify`]; sessions push when it moves.
    changes: watch::Sender<u64>,
    /// Index batches received (a keeper must never see one).
    index_received: AtomicU64,
}

impl IndexSync {
    pub(crate) fn new(links: Arc<Links>, local: Arc<Local>) -> Self {
        IndexSync {
            links,
            local,
            changes: watch::Sender::new(0),
            index_received: AtomicU64::new(0),
        }
    }

    /// Wakes every session to push updates made since its last push.
    pub(crate) fn notify(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// `Index` batches received from peers.
    pub(crate) fn batches_received(&self) -> u64 {
        self.index_received.load(Ordering::Relaxed)
    }
}

/// What the peer told us before transferring.
pub(crate) struct Negotiated {
    minor: u16,
    /// Where to start pushing our index.
    after: u64,
    /// Version of our member list when we sent it.
    members_sent: u64,
}

/// Exchanges Hello, Members and Want; the session exists only once this succeeded (in TLS
/// 1.3 the client finishes its handshake before the server has judged its certificate, so
/// a dialer learns it was accepted from the peer's Hello).
pub(crate) async fn negotiate(
    node: &IndexSync,
    conn: &quinn::Connection,
    peer: DeviceId,
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
) -> Result<Negotiated, FrameError> {
    let members_sent = send_opening(node, peer, send).await?;
    let mut neg = read_opening(node, conn, peer, recv).await?;
    neg.members_sent = members_sent;
    Ok(neg)
}

/// Runs the negotiated control stream until the connection ends.
pub(crate) async fn run(
    node: &IndexSync,
    conn: &quinn::Connection,
    peer: DeviceId,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    neg: Negotiated,
) {
    let result = tokio::select! {
        r = push(node, conn, peer, &mut send, &neg) => r,
        r = receive(node, conn, peer, &mut recv, neg.minor) => r,
    };
    if let Err(e) = result {
        close_for(conn, peer, &e);
    }
}

/// Closes `conn` with the code that fits `e` (PROTOCOL for peer violations, logged).
pub(crate) fn close_for(conn: &quinn::Connection, peer: DeviceId, e: &FrameError) {
    match e {
        e if e.is_protocol() => protocol_violation(conn, &peer, e),
        FrameError::Refused(PeerError::WrongVolume) => {
            warn!(%peer, "peer belongs to another volume");
            conn.close(code::WRONG_VOLUME.into(), b"wrong volume");
        }
        FrameError::Refused(PeerError::NotMember(_)) => {
            warn!(%peer, "peer is not a member (revoked); closing");
            conn.close(code::REVOKED.into(), b"revoked");
        }
        FrameError::Replica(e) => {
            warn!(%peer, error = %e, "local replica failed; closing");
            conn.close(code::INTERNAL.into(), b"internal");
        }
        e => {
            debug!(%peer, error = %e, "control stream ended");
            conn.close(code::DONE.into(), b"");
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ReplicaError> + Send + 'static,
) -> Result<T, FrameError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(FrameError::Replica),
        Err(_) => Err(FrameError::Replica(ReplicaError::TaskLost)),
    }
}

fn members_msg(node: &IndexSync) -> Message {
    Message::Members(MembersMsg {
        records: node
            .links
            .members
            .signed()
            .iter()
            .map(SignedMember::to_wire)
            .collect(),
    })
}

/// Sends Hello, Members, Want; returns the member list version sent.
async fn send_opening(
    node: &IndexSync,
    peer: DeviceId,
    send: &mut quinn::SendStream,
) -> Result<u64, FrameError> {
    let replica = node.local.replica.clone();
    let (index_id, seq, (want_index, want_after)) = blocking(move || {
        Ok((
            replica.index_id(),
            replica.local_seq(),
            replica.progress(&peer),
        ))
    })
    .await?;
    let hello = Hello {
        minor: proto::MINOR,
        volume: node.links.cfg.volume,
        device: node.links.key.id().0,
        name: node.links.cfg.name.clone(),
        index_id,
        seq,
    };
    write_msg(send, &Message::Hello(hello)).await?;
    let members_sent = *node.links.members.subscribe().borrow();
    write_msg(send, &members_msg(node)).await?;
    let want = Want {
        index_id: want_index,
        after: want_after,
    };
    write_msg(send, &Message::Want(want)).await?;
    Ok(members_sent)
}

/// Reads the next message, ignoring unknown tags from a peer of a newer minor version.
async fn next(recv: &mut quinn::RecvStream, peer_minor: u16) -> Result<Message, FrameError> {
    loop {
        match read_msg(recv).await {
            Err(FrameError::UnknownTag(t)) if peer_minor > proto::MINOR => {
                debug!(
                    tag = t,
                    "ignoring optional message of a newer minor version"
                );
            }
            r => return r,
        }
    }
}

async fn read_opening(
    node: &IndexSync,
    conn: &quinn::Connection,
    peer: DeviceId,
    recv: &mut quinn::RecvStream,
) -> Result<Negotiated, FrameError> {
    let Message::Hello(hello) = read_msg(recv).await? else {
        return Err(FrameError::Malformed);
    };
    if hello.volume != node.links.cfg.volume {
        return Err(FrameError::Refused(PeerError::WrongVolume));
    }
    if hello.device != peer.0 {
        return Err(FrameError::Malformed);
    }
    debug!(%peer, name = %hello.name, seq = hello.seq, "hello");
    let Message::Members(m) = next(recv, hello.minor).await? else {
        return Err(FrameError::Malformed);
    };
    merge_members(node, conn, peer, m)?;
    let Message::Want(want) = next(recv, hello.minor).await? else {
        return Err(FrameError::Malformed);
    };
    let replica = node.local.replica.clone();
    let our_index = blocking(move || Ok(replica.index_id())).await?;
    let after = if want.index_id == our_index {
        want.after
    } else {
        0
    };
    Ok(Negotiated {
        minor: hello.minor,
        after,
        members_sent: 0,
    })
}

fn merge_members(
    node: &IndexSync,
    _conn: &quinn::Connection,
    peer: DeviceId,
    m: MembersMsg,
) -> Result<(), FrameError> {
    let records: Vec<SignedMember> = m
        .records
        .into_iter()
        .filter_map(SignedMember::from_wire)
        .collect();
    if node.links.members.merge(&records) {
        debug!(%peer, "member list updated");
    }
    if !node.links.members.is_member(&peer) {
        return Err(FrameError::Refused(PeerError::NotMember(peer)));
    }
    Ok(())
}

/// Sends our index from `after` on, then live updates and member list changes.
async fn push(
    node: &IndexSync,
    conn: &quinn::Connection,
    peer: DeviceId,
    send: &mut quinn::SendStream,
    neg: &Negotiated,
) -> Result<(), FrameError> {
    let mut after = neg.after;
    let mut changes = node.changes.subscribe();
    let mut members = node.links.members.subscribe();
    if *members.borrow_and_update() != neg.members_sent {
        // Changed while negotiating.
        write_msg(send, &members_msg(node)).await?;
    }
    let replica = node.local.replica.clone();
    let index_id = blocking(move || Ok(replica.index_id())).await?;
    // No index moves to or from a keeper (docs/redundancy.md, "Keeper sessions").
    let sync = index_peers(node, &peer);
    loop {
        changes.mark_unchanged();
        if sync {
            after = send_updates(node, send, index_id, after).await?;
        }
        tokio::select! {
            r = changes.changed() => if r.is_err() { return Ok(()) },
            r = members.changed() => {
                if r.is_err() {
                    return Ok(());
                }
                if !node.links.members.is_member(&peer) {
                    return Err(FrameError::Refused(PeerError::NotMember(peer)));
                }
                write_msg(send, &members_msg(node)).await?;
            }
            _ = conn.closed() => return Ok(()),
        }
    }
}

/// Sends every update after `after` in batches; returns the last sequence sent.
async fn send_updates(
    node: &IndexSync,
    send: &mut quinn::SendStream,
    index_id: u64,
    mut after: u64,
) -> Result<u64, FrameError> {
    loop {
        let replica = node.local.replica.clone();
        let updates = blocking(move || replica.updates_since(after, MAX_UPDATES_PER_BATCH)).await?;
        if updates.is_empty() {
            return Ok(after);
        }
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        for (seq, blob) in updates {
            if !batch.is_empty() && bytes + blob.len() > MAX_BATCH_BYTES {
                send_batch(send, index_id, std::mem::take(&mut batch)).await?;
                bytes = 0;
            }
            bytes += blob.len();
            batch.push((seq, blob));
        }
        after = send_batch(send, index_id, batch).await?;
    }
}

async fn send_batch(
    send: &mut quinn::SendStream,
    index_id: u64,
    updates: Vec<(u64, Vec<u8>)>,
) -> Result<u64, FrameError> {
    let upto = updates.last().map_or(0, |(s, _)| *s);
    write_msg(
        send,
        &Message::Index(Index {
            index_id,
            upto,
            updates: updates
                .into_iter()
                .map(|(s, b)| (s, serde_bytes::ByteBuf::from(b)))
                .collect(),
        }),
    )
    .await?;
    Ok(upto)
}

/// Applies the peer's Index batches and merges its member lists.
async fn receive(
    node: &IndexSync,
    conn: &quinn::Connection,
    peer: DeviceId,
    recv: &mut quinn::RecvStream,
    peer_minor: u16,
) -> Result<(), FrameError> {
    loop {
        match next(recv, peer_minor).await {
            Ok(Message::Index(ix)) => {
                node.index_received.fetch_add(1, Ordering::Relaxed);
                if !index_peers(node, &peer) {
                    return Err(FrameError::Malformed);
                }
                apply(node, peer, ix).await?;
            }
            Ok(Message::Members(m)) => merge_members(node, conn, peer, m)?,
            Ok(_) => return Err(FrameError::Malformed),
            Err(FrameError::Finished) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// True if both ends are member devices (only they exchange index updates).
fn index_peers(node: &IndexSync, peer: &DeviceId) -> bool {
    node.local.role == Role::Device && node.links.members.role(peer) == Some(Role::Device)
}

async fn apply(node: &IndexSync, peer: DeviceId, ix: Index) -> Result<(), FrameError> {
    let ascending = ix.updates.windows(2).all(|w| w[0].0 < w[1].0);
    let last = ix.updates.last().map_or(ix.upto, |(s, _)| *s);
    if !ascending || last != ix.upto || ix.updates.is_empty() {
        return Err(FrameError::Malformed);
    }
    let replica = node.local.replica.clone();
    let blobs: Vec<Vec<u8>> = ix.updates.into_iter().map(|(_, b)| b.into_vec()).collect();
    debug!(%peer, upto = ix.upto, n = blobs.len(), "applying index batch");
    blocking(move || replica.apply(&peer, ix.index_id, ix.upto, blobs)).await
}
