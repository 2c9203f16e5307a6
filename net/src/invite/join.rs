//! The joiner's side of `fossa/join/2` (docs/protocol.md, "Joining"): [`begin_join`] gets the
//! inviter's `JoinAccept` while the inviter holds the invitation; the caller stores what it
//! needs, then [`PendingJoin::confirm`] commits the join (or dropping the [`PendingJoin`]
//! abandons it, and the invitation stays valid).
use super::InviteCode;
use crate::error::{InviteError, LinkError, NetError, PeerError};
use crate::identity::{DeviceId, DeviceKey};
use crate::members::SignedMember;
use crate::members::{Members, Role};
use crate::proto::{FrameError, JoinConfirm, JoinRequest, Message, code, read_msg, write_msg};
use crate::{ALPN_JOIN, tls};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// Domain-separation prefix of the join proof.
const PROOF_CONTEXT: &[u8] = b"fossa join v1";

/// What a completed join returns.
pub struct JoinResult {
    /// The key that unwraps [`InviteCode::wrapped`]; None when joined as a keeper.
    pub k_wrap: Option<[u8; 32]>,
    /// The role the inviter gave us (from our signed record).
    pub role: Role,
    /// The member list, the joiner included.
    pub members: Vec<SignedMember>,
}

/// `BLAKE3 keyed_hash(key = s, "fossa join v1" ‖ joiner DeviceId)`.
pub fn join_proof(secret: &[u8; 32], joiner: &DeviceId) -> [u8; 32] {
    let mut msg = Vec::with_capacity(PROOF_CONTEXT.len() + 32);
    msg.extend_from_slice(PROOF_CONTEXT);
    msg.extend_from_slice(&joiner.0);
    *blake3::keyed_hash(secret, &msg).as_bytes()
}

/// A join the inviter accepted and holds, not yet committed. Dropping it abandons the join
/// (the connection closes with `ABORTED`; the inviter adds nothing).
pub struct PendingJoin {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    joiner: DeviceId,
    role: Role,
    volume: [u8; 16],
    /// `K_wrap` (None for a keeper invitation).
    pub k_wrap: Option<[u8; 32]>,
    /// The inviter's member list (without the joiner), checked to contain the inviter.
    pub members: Vec<SignedMember>,
    done: bool,
}

/// Completes a join in one go ([`begin_join`] then [`PendingJoin::confirm`]), for callers
/// that have nothing to store in between. Each step is bounded by `timeout`.
pub async fn join(
    code: &InviteCode,
    key: &DeviceKey,
    name: &str,
    timeout: Duration,
) -> Result<JoinResult, NetError> {
    begin_join(code, key, name, timeout)
        .await?
        .confirm(timeout)
        .await
}

/// Checks the code's expiry (before any traffic), then asks the inviter to accept `key` with
/// `code`, from a wildcard address. The whole call, over all of the code's addresses, is
/// bounded by `timeout`.
pub async fn begin_join(
    code: &InviteCode,
    key: &DeviceKey,
    name: &str,
    timeout: Duration,
) -> Result<PendingJoin, NetError> {
    let v6 = code.addrs.first().is_some_and(SocketAddr::is_ipv6);
    let bind = if v6 {
        SocketAddr::from(([0u16; 8], 0))
    } else {
        SocketAddr::from(([0u8; 4], 0))
    };
    begin_join_from(bind, code, key, name, timeout).await
}

/// [`begin_join`] from a UDP socket bound to `bind`.
pub async fn begin_join_from(
    bind: SocketAddr,
    code: &InviteCode,
    key: &DeviceKey,
    name: &str,
    timeout: Duration,
) -> Result<PendingJoin, NetError> {
    code.check_expiry(SystemTime::now())?;
    let endpoint = tls::quic_endpoint(bind, None)?;
    let result = tokio::time::timeout(timeout, async {
        let mut last = NetError::Invite(InviteError::NoAddress);
        for addr in &code.addrs {
            match try_join(&endpoint, *addr, code, key, name).await {
                Ok(r) => return Ok(r),
                Err(NetError::Invite(InviteError::Refused)) => {
                    return Err(NetError::Invite(InviteError::Refused));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    })
    .await
    .unwrap_or(Err(NetError::Link(LinkError::Timeout)));
    match result {
        Ok(p) => Ok(p),
        Err(e) => {
            close_endpoint(&endpoint).await;
            Err(e)
        }
    }
}

async fn close_endpoint(endpoint: &quinn::Endpoint) {
    endpoint.close(code::DONE.into(), b"");
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
}

async fn try_join(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    code: &InviteCode,
    key: &DeviceKey,
    name: &str,
) -> Result<PendingJoin, NetError> {
    let cfg = tls::client_config(key, Some(code.inviter), None, ALPN_JOIN)?;
    let conn = endpoint.connect_with(cfg, addr, "fossa")?.await?;
    let run = async {
        let (mut send, mut recv) = conn.open_bi().await?;
        let req = JoinRequest {
            volume: code.volume,
            device: key.id().0,
            public_key: key.public_key(),
            name: name.to_string(),
            proof: join_proof(&code.secret, &key.id()),
        };
        write_msg(&mut send, &Message::JoinRequest(req))
            .await
            .map_err(frame_to_net)?;
        match read_msg(&mut recv).await.map_err(frame_to_net)? {
            Message::JoinAccept(a) => Ok((send, recv, a)),
            _ => Err(NetError::Peer(PeerError::Violation("expected JoinAccept"))),
        }
    };
    let (send, recv, accept) = match run.await {
        Ok(a) => a,
        Err(e) => return Err(refusal_or(&conn, e).await),
    };
    let mut pending = PendingJoin {
        endpoint: endpoint.clone(),
        conn,
        send,
        recv,
        joiner: key.id(),
        role: code.role,
        volume: code.volume,
        k_wrap: accept.k_wrap,
        members: Vec::new(),
        done: false,
    };
    let members = Members::new(code.volume);
    let records: Vec<SignedMember> = accept
        .members
        .into_iter()
        .filter_map(SignedMember::from_wire)
        .collect();
    members.merge(&records);
    if !members.is_member(&code.inviter) {
        return Err(NetError::Peer(PeerError::Violation(
            "member list without the inviter",
        )));
    }
    if (code.role == Role::Keeper) != pending.k_wrap.is_none() {
        return Err(NetError::Peer(PeerError::Violation(
            "join answer does not match the invitation's role",
        )));
    }
    pending.members = members.signed();
    Ok(pending)
}

/// The error to report for a failed exchange: [`InviteError::Refused`] if the inviter
/// closed with `JOIN_REFUSED` (however that surfaced on the stream), else `e`.
async fn refusal_or(conn: &quinn::Connection, e: NetError) -> NetError {
    let reason = match conn.close_reason() {
        Some(r) => Some(r),
        None => tokio::time::timeout(Duration::from_millis(500), conn.closed())
            .await
            .ok(),
    };
    conn.close(code::DONE.into(), b"");
    match reason {
        Some(quinn::ConnectionError::ApplicationClosed(c))
            if c.error_code == code::JOIN_REFUSED.into() =>
        {
            NetError::Invite(InviteError::Refused)
        }
        _ => e,
    }
}

pub(super) fn frame_to_net(e: FrameError) -> NetError {
    match e {
        e @ (FrameError::Link(_) | FrameError::Refused(_) | FrameError::Replica(_)) => e.into(),
        FrameError::Finished => NetError::Link(LinkError::StreamEnded),
        _ => NetError::Peer(PeerError::Violation("malformed join message")),
    }
}

impl PendingJoin {
    /// Confirms the join (the caller has stored what it needs) and waits, at most `timeout`,
    /// for the inviter's `JoinDone`: the member list with this device's record in it.
    pub async fn confirm(mut self, timeout: Duration) -> Result<JoinResult, NetError> {
        let result = tokio::time::timeout(timeout, self.exchange_confirm())
            .await
            .unwrap_or(Err(NetError::Link(LinkError::Timeout)));
        let result = match result {
            Ok(r) => Ok(r),
            Err(e) => Err(refusal_or(&self.conn, e).await),
        };
        self.done = true;
        self.conn.close(code::DONE.into(), b"");
        close_endpoint(&self.endpoint).await;
        result
    }

    async fn exchange_confirm(&mut self) -> Result<JoinResult, NetError> {
        write_msg(&mut self.send, &Message::JoinConfirm(JoinConfirm {}))
            .await
            .map_err(frame_to_net)?;
        self.send.finish()?;
        let Message::JoinDone(done) = read_msg(&mut self.recv).await.map_err(frame_to_net)? else {
            return Err(NetError::Peer(PeerError::Violation("expected JoinDone")));
        };
        let members = Members::new(self.volume);
        members.merge(&self.members);
        let records: Vec<SignedMember> = done
            .members
            .into_iter()
            .filter_map(SignedMember::from_wire)
            .collect();
        members.merge(&records);
        let role = members.role(&self.joiner);
        if role != Some(self.role) || !members.is_member(&self.joiner) {
            return Err(NetError::Peer(PeerError::Violation(
                "JoinDone without this device in the invitation's role",
            )));
        }
        Ok(JoinResult {
            k_wrap: self.k_wrap,
            role: self.role,
            members: members.signed(),
        })
    }
}

impl PendingJoin {
    /// Abandons the join: closes with `ABORTED` and waits (briefly) until the close is sent.
    pub async fn abort(mut self) {
        self.done = true;
        self.conn.close(code::ABORTED.into(), b"aborted");
        close_endpoint(&self.endpoint).await;
    }
}

impl Drop for PendingJoin {
    fn drop(&mut self) {
        if !self.done {
            self.conn.close(code::ABORTED.into(), b"aborted");
        }
    }
}
