//! The inviter's side of `fossa/join/2` (docs/protocol.md, "Joining"): check the request and
//! hold the invitation, answer `JoinAccept`, and only on the joiner's `JoinConfirm` add the
//! member and consume the invitation.
use super::book::Unclaimed;
use super::join::frame_to_net;
use super::{InviteBook, PendingInvite};
use crate::error::{InviteError, LinkError, NetError, PeerError};
use crate::identity::DeviceId;
use crate::links::Links;
use crate::members::{MemberRecord, Role, SignedMember};
use crate::proto::{JoinAccept, JoinDone, JoinRequest, Message, code, read_msg, write_msg};
use parking_lot::Mutex;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tracing::{debug, info, warn};

/// Longest device name accepted in a JoinRequest.
const MAX_NAME_LEN: usize = 255;
/// How long the inviter holds an invitation for a joiner between `JoinAccept` and
/// `JoinConfirm`.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a join was refused before `JoinAccept`.
#[derive(Debug)]
enum Refusal {
    /// The request failed a check or matched no invitation: a failed attempt.
    Bad,
    /// Its invitation is held by another join: refused, not counted.
    Busy,
    /// The exchange broke (stream, timeout, wrong message).
    Broken(NetError),
}

impl From<NetError> for Refusal {
    fn from(e: NetError) -> Self {
        Refusal::Broken(e)
    }
}

/// An invitation held for one join; released on drop unless consumed.
struct Hold {
    book: Arc<Mutex<InviteBook>>,
    token: u64,
    invite: PendingInvite,
    consumed: bool,
}

impl Drop for Hold {
    fn drop(&mut self) {
        if !self.consumed {
            self.book.lock().release(self.token);
        }
    }
}

/// The inviter's part of a node: its pending invitations and failed attempts, and the links
/// a completed join adds its member to.
pub(crate) struct Inviter {
    links: Arc<Links>,
    book: Arc<Mutex<InviteBook>>,
}

impl Inviter {
    /// `book` is shared with the TLS gate that admits join handshakes while it is open.
    pub(crate) fn new(links: Arc<Links>, book: Arc<Mutex<InviteBook>>) -> Self {
        Inviter { links, book }
    }

    /// Registers an invitation.
    pub(crate) fn add(&self, inv: PendingInvite) {
        self.book.lock().add(inv, SystemTime::now());
    }

    /// Replaces the limits on failed join attempts.
    pub(crate) fn set_limits(&self, limits: super::JoinLimits) {
        self.book.lock().set_limits(limits);
    }
}

/// Serves one connection on the join ALPN.
pub(crate) async fn serve_join(node: &Inviter, conn: quinn::Connection, peer: DeviceId) {
    let ip = conn.remote_address().ip();
    if let Some(wait) = node.book.lock().blocked(ip, Instant::now()) {
        debug!(%peer, %ip, ?wait, "join attempt refused unchecked: address is waiting");
        conn.close(code::JOIN_REFUSED.into(), b"wait");
        return;
    }
    let (send, recv, hold, req) = match accept(node, &conn, peer).await {
        Ok(x) => x,
        Err(r) => {
            conn.close(code::JOIN_REFUSED.into(), b"refused");
            refuse(node, peer, ip, r);
            return;
        }
    };
    match complete(node, send, recv, hold, peer, &req).await {
        Ok(()) => {
            // The joiner closes once it has read JoinDone.
            let _ = tokio::time::timeout(node.links.cfg.connect_timeout, conn.closed()).await;
        }
        Err(e) => {
            let reason = conn.close_reason();
            info!(%peer, error = %e, ?reason, "join not completed; the invitation stays valid");
            conn.close(code::DONE.into(), b"not completed");
        }
    }
}

/// Reads the request, checks it and holds its invitation; sends `JoinAccept`.
async fn accept(
    node: &Inviter,
    conn: &quinn::Connection,
    peer: DeviceId,
) -> Result<(quinn::SendStream, quinn::RecvStream, Hold, JoinRequest), Refusal> {
    tokio::time::timeout(node.links.cfg.connect_timeout, async {
        let (mut send, mut recv) = conn.accept_bi().await.map_err(NetError::from)?;
        let Message::JoinRequest(req) = read_msg(&mut recv).await.map_err(frame_to_net)? else {
            return Err(NetError::Peer(PeerError::Violation("expected JoinRequest")).into());
        };
        let hold = check(node, peer, &req)?;
        let k_wrap = match hold.invite.role {
            Role::Device => Some(hold.invite.k_wrap),
            Role::Keeper => None,
        };
        let members = wire_members(&node.links.members.signed());
        write_msg(
            &mut send,
            &Message::JoinAccept(JoinAccept { k_wrap, members }),
        )
        .await
        .map_err(frame_to_net)?;
        Ok((send, recv, hold, req))
    })
    .await
    .unwrap_or(Err(Refusal::Broken(NetError::Link(LinkError::Timeout))))
}

fn wire_members(list: &[SignedMember]) -> Vec<crate::proto::SignedMemberWire> {
    list.iter().map(SignedMember::to_wire).collect()
}

/// Checks a JoinRequest and holds the invitation its proof matches.
fn check(node: &Inviter, peer: DeviceId, req: &JoinRequest) -> Result<Hold, Refusal> {
    if req.volume != node.links.cfg.volume
        || req.device != peer.0
        || DeviceId::of_public_key(&req.public_key) != peer
        || req.name.len() > MAX_NAME_LEN
    {
        return Err(Refusal::Bad);
    }
    let claimed = node.book.lock().claim(&req.proof, &peer, SystemTime::now());
    let (token, invite) = claimed.map_err(|u| match u {
        Unclaimed::NoMatch => Refusal::Bad,
        Unclaimed::Busy => Refusal::Busy,
    })?;
    Ok(Hold {
        book: node.book.clone(),
        token,
        invite,
        consumed: false,
    })
}

/// Logs a refusal; counts it if it was a failed attempt.
fn refuse(node: &Inviter, peer: DeviceId, ip: IpAddr, r: Refusal) {
    match r {
        Refusal::Busy => {
            info!(%peer, %ip, "join refused: its invitation is held by another join");
        }
        Refusal::Broken(e) => {
            info!(%peer, %ip, error = %e, "join attempt failed before its request was checked");
        }
        Refusal::Bad => {
            let f = node
                .book
                .lock()
                .failed(ip, Instant::now(), SystemTime::now());
            warn!(
                %peer, %ip, failures_from_address = f.from_addr, wait = ?f.delay,
                "join refused: bad or expired invitation proof"
            );
            if f.withdrawn > 0 {
                warn!(
                    withdrawn = f.withdrawn,
                    "invitation withdrawn after too many failed join attempts: make a new one"
                );
            }
        }
    }
}

/// Waits for `JoinConfirm`, then adds the member, consumes the invitation, sends `JoinDone`.
async fn complete(
    node: &Inviter,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    mut hold: Hold,
    peer: DeviceId,
    req: &JoinRequest,
) -> Result<(), NetError> {
    let confirm = tokio::time::timeout(CONFIRM_TIMEOUT, read_msg(&mut recv))
        .await
        .map_err(|_| NetError::Link(LinkError::Timeout))?
        .map_err(frame_to_net)?;
    let Message::JoinConfirm(_) = confirm else {
        return Err(NetError::Peer(PeerError::Violation("expected JoinConfirm")));
    };
    // Withdrawn while held (too many failed attempts meanwhile): the join cannot commit.
    if !node.book.lock().consume(hold.token) {
        return Err(NetError::Invite(InviteError::Refused));
    }
    hold.consumed = true;
    let record = MemberRecord {
        device: peer,
        public_key: req.public_key,
        name: req.name.clone(),
        added_by: node.links.key.id(),
        revoked: false,
        role: hold.invite.role,
        // The join connection comes from a throwaway endpoint, not the joiner's node.
        addrs: vec![],
    };
    node.links.members.add_own(&node.links.key, record)?;
    info!(device = %peer, name = %req.name, role = ?hold.invite.role, "device joined");
    if let Err(e) = send_done(node, &mut send).await {
        warn!(
            device = %peer, error = %e,
            "device joined, but JoinDone was not delivered: if the joiner gave up, remove it \
             with `fossa devices remove`"
        );
    }
    Ok(())
}

async fn send_done(node: &Inviter, send: &mut quinn::SendStream) -> Result<(), NetError> {
    let members = wire_members(&node.links.members.signed());
    tokio::time::timeout(node.links.cfg.connect_timeout, async {
        write_msg(send, &Message::JoinDone(JoinDone { members }))
            .await
            .map_err(frame_to_net)?;
        send.finish()?;
        Ok(())
    })
    .await
    .unwrap_or(Err(NetError::Link(LinkError::Timeout)))
}
