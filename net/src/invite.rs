//! Invitations and joining (crypto.md, "Invitations"; docs/protocol.md, "Joining").
use crate::members::SignedMember;
use crate::node::Node;
use crate::proto::{JoinAccept, JoinRequest, Message, code, read_msg, write_msg};
use crate::{ALPN_JOIN, DeviceId, DeviceKey, MemberRecord, Members, NetError, Role, tls};
use data_encoding::BASE32_NOPAD;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};
use tracing::{info, warn};

/// Prefix of a printable invitation code for a member device.
const CODE_PREFIX: &str = "FOSSA1-";
/// Prefix of a printable invitation code for a keeper (storage-only peer).
const KEEPER_PREFIX: &str = "FOSSAK1-";
/// Domain-separation prefix of the join proof.
const PROOF_CONTEXT: &[u8] = b"fossa join v1";
/// Longest device name accepted in a JoinRequest.
const MAX_NAME_LEN: usize = 255;

/// The contents of a `FOSSA1-…` (device) or `FOSSAK1-…` (keeper) invitation code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteCode {
    /// Device or keeper: the prefix of the printable code.
    pub role: Role,
    /// The volume.
    pub volume: [u8; 16],
    /// The one-time secret `s`.
    pub secret: [u8; 32],
    /// The volume secret wrapped under `K_wrap` (made and opened by the fs layer); empty in
    /// a keeper invitation.
    pub wrapped: Vec<u8>,
    /// The inviter, pinned by the joiner.
    pub inviter: DeviceId,
    /// Where the inviter listens.
    pub addrs: Vec<SocketAddr>,
    /// Unix seconds after which the inviter refuses it.
    pub expiry: u64,
}

/// The code's wire struct (postcard), fields in this order.
#[derive(Serialize, Deserialize)]
struct InviteWire {
    volume: [u8; 16],
    secret: [u8; 32],
    wrapped: Vec<u8>,
    inviter: [u8; 32],
    addrs: Vec<SocketAddr>,
    expiry: u64,
}

impl InviteCode {
    /// The printable code.
    pub fn encode(&self) -> String {
        let wire = InviteWire {
            volume: self.volume,
            secret: self.secret,
            wrapped: self.wrapped.clone(),
            inviter: self.inviter.0,
            addrs: self.addrs.clone(),
            expiry: self.expiry,
        };
        // Encoding into a Vec cannot fail for this struct.
        let body = postcard::to_allocvec(&wire).unwrap_or_default();
        let prefix = match self.role {
            Role::Device => CODE_PREFIX,
            Role::Keeper => KEEPER_PREFIX,
        };
        format!("{prefix}{}", BASE32_NOPAD.encode(&body))
    }
    /// Parses a printable code (whitespace ignored, case-insensitive).
    pub fn decode(s: &str) -> Result<Self, NetError> {
        let clean: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let (role, body) = match clean.strip_prefix(CODE_PREFIX) {
            Some(b) => (Role::Device, b),
            None => (
                Role::Keeper,
                clean
                    .strip_prefix(KEEPER_PREFIX)
                    .ok_or(NetError::BadInviteCode)?,
            ),
        };
        let bytes = BASE32_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| NetError::BadInviteCode)?;
        let (w, rest) =
            postcard::take_from_bytes::<InviteWire>(&bytes).map_err(|_| NetError::BadInviteCode)?;
        if !rest.is_empty() || (role == Role::Keeper && !w.wrapped.is_empty()) {
            return Err(NetError::BadInviteCode);
        }
        Ok(InviteCode {
            role,
            volume: w.volume,
            secret: w.secret,
            wrapped: w.wrapped,
            inviter: DeviceId(w.inviter),
            addrs: w.addrs,
            expiry: w.expiry,
        })
    }
}

/// What the inviter keeps while an invitation is pending.
#[derive(Clone)]
pub struct PendingInvite {
    /// The one-time secret `s` (to check the joiner's proof).
    pub secret: [u8; 32],
    /// Released to the joiner whose proof matches (never for a keeper invitation).
    pub k_wrap: [u8; 32],
    /// Refused after this time.
    pub expiry: SystemTime,
    /// The role the joiner gets: a keeper invitation admits a storage-only peer.
    pub role: Role,
}

impl PendingInvite {
    /// A fresh invitation (random `s` and `K_wrap` from the OS) valid for `valid_for`.
    pub fn generate(valid_for: Duration) -> Result<Self, NetError> {
        use ring::rand::SecureRandom;
        let rng = ring::rand::SystemRandom::new();
        let mut secret = [0u8; 32];
        let mut k_wrap = [0u8; 32];
        rng.fill(&mut secret)
            .and_then(|()| rng.fill(&mut k_wrap))
            .map_err(|_| NetError::Io(std::io::Error::other("OS randomness unavailable")))?;
        Ok(PendingInvite {
            secret,
            k_wrap,
            expiry: SystemTime::now() + valid_for,
            role: Role::Device,
        })
    }
    /// A fresh keeper invitation (docs/redundancy.md): the joiner becomes a [`Role::Keeper`]
    /// and receives no `K_wrap`; its code carries no wrapped secret.
    pub fn generate_keeper(valid_for: Duration) -> Result<Self, NetError> {
        let mut inv = Self::generate(valid_for)?;
        inv.role = Role::Keeper;
        Ok(inv)
    }
    /// The code to hand to the joiner: `wrapped` is the volume secret sealed under
    /// [`PendingInvite::k_wrap`] by the fs layer (ignored, left empty, for a keeper
    /// invitation); `addrs` where this node listens.
    pub fn code(
        &self,
        volume: [u8; 16],
        wrapped: Vec<u8>,
        inviter: DeviceId,
        addrs: Vec<SocketAddr>,
    ) -> InviteCode {
        let expiry = self
            .expiry
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let wrapped = match self.role {
            Role::Device => wrapped,
            Role::Keeper => Vec::new(),
        };
        InviteCode {
            role: self.role,
            volume,
            secret: self.secret,
            wrapped,
            inviter,
            addrs,
            expiry,
        }
    }
}

/// What a successful join returns.
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

/// Joins with `code`: connects to the inviter (pinned), proves the code, returns `K_wrap`.
/// The whole call, over all of the code's addresses, is bounded by `timeout`.
pub async fn join(
    code: &InviteCode,
    key: &DeviceKey,
    name: &str,
    timeout: Duration,
) -> Result<JoinResult, NetError> {
    let v6 = code.addrs.first().is_some_and(SocketAddr::is_ipv6);
    let bind = if v6 {
        SocketAddr::from(([0u16; 8], 0))
    } else {
        SocketAddr::from(([0u8; 4], 0))
    };
    let endpoint = quinn::Endpoint::client(bind)?;
    let result = tokio::time::timeout(timeout, async {
        let mut last = NetError::NoPeers;
        for addr in &code.addrs {
            match try_join(&endpoint, *addr, code, key, name).await {
                Ok(r) => return Ok(r),
                Err(NetError::JoinRefused) => return Err(NetError::JoinRefused),
                Err(e) => last = e,
            }
        }
        Err(last)
    })
    .await
    .unwrap_or(Err(NetError::Timeout));
    endpoint.close(code::DONE.into(), b"");
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    result
}

async fn try_join(
    endpoint: &quinn::Endpoint,
    addr: SocketAddr,
    code: &InviteCode,
    key: &DeviceKey,
    name: &str,
) -> Result<JoinResult, NetError> {
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
        send.finish()?;
        match read_msg(&mut recv).await.map_err(frame_to_net)? {
            Message::JoinAccept(a) => Ok(a),
            _ => Err(NetError::Protocol("expected JoinAccept")),
        }
    };
    let accept = match run.await {
        Ok(a) => a,
        Err(e) => {
            // However the refusal surfaced on the stream, the close code says what it was.
            let reason = match conn.close_reason() {
                Some(r) => Some(r),
                None => tokio::time::timeout(Duration::from_millis(500), conn.closed())
                    .await
                    .ok(),
            };
            conn.close(code::DONE.into(), b"");
            return Err(match reason {
                Some(quinn::ConnectionError::ApplicationClosed(c))
                    if c.error_code == code::JOIN_REFUSED.into() =>
                {
                    NetError::JoinRefused
                }
                _ => e,
            });
        }
    };
    conn.close(code::DONE.into(), b"");
    let members = Members::new(code.volume);
    let records: Vec<SignedMember> = accept
        .members
        .into_iter()
        .filter_map(SignedMember::from_wire)
        .collect();
    members.merge(&records);
    if !members.is_member(&key.id()) || !members.is_member(&code.inviter) {
        return Err(NetError::Protocol("member list without joiner or inviter"));
    }
    let role = members.role(&key.id()).unwrap_or(Role::Keeper);
    if role != code.role || (role == Role::Keeper) != accept.k_wrap.is_none() {
        return Err(NetError::Protocol(
            "join answer does not match the invitation's role",
        ));
    }
    Ok(JoinResult {
        k_wrap: accept.k_wrap,
        role,
        members: members.signed(),
    })
}

fn frame_to_net(e: crate::proto::FrameError) -> NetError {
    match e {
        crate::proto::FrameError::Stream(e) => e,
        crate::proto::FrameError::Finished => NetError::StreamEnded,
        _ => NetError::Protocol("malformed join message"),
    }
}

/// Serves one connection on the join ALPN: checks the proof against the pending invitations,
/// adds the joiner (signed by this node) and answers JoinAccept, or closes with JOIN_REFUSED.
pub(crate) async fn serve_join(node: &Node, conn: quinn::Connection, peer: DeviceId) {
    let result = tokio::time::timeout(node.cfg.connect_timeout, async {
        let (mut send, mut recv) = conn.accept_bi().await?;
        let Message::JoinRequest(req) = read_msg(&mut recv).await.map_err(frame_to_net)? else {
            return Err(NetError::Protocol("expected JoinRequest"));
        };
        let k_wrap = admit(node, peer, &req)?;
        let members = node
            .members
            .signed()
            .iter()
            .map(SignedMember::to_wire)
            .collect();
        let accept = JoinAccept { k_wrap, members };
        write_msg(&mut send, &Message::JoinAccept(accept))
            .await
            .map_err(frame_to_net)?;
        send.finish()?;
        Ok(())
    })
    .await
    .unwrap_or(Err(NetError::Timeout));
    match result {
        Ok(()) => {
            // The joiner closes once it has read the answer.
            let _ = tokio::time::timeout(node.cfg.connect_timeout, conn.closed()).await;
        }
        Err(e) => {
            warn!(%peer, error = %e, "join refused");
            conn.close(code::JOIN_REFUSED.into(), b"refused");
        }
    }
}

/// Checks a JoinRequest; on success consumes the invitation and adds the joiner.
fn admit(node: &Node, peer: DeviceId, req: &JoinRequest) -> Result<Option<[u8; 32]>, NetError> {
    if req.volume != node.cfg.volume
        || req.device != peer.0
        || DeviceId::of_public_key(&req.public_key) != peer
        || req.name.len() > MAX_NAME_LEN
    {
        return Err(NetError::JoinRefused);
    }
    let now = SystemTime::now();
    let proof = blake3::Hash::from(req.proof);
    let invite = {
        let mut invites = node.invites.lock();
        invites.retain(|i| i.expiry > now);
        // blake3::Hash compares in constant time.
        let pos = invites
            .iter()
            .position(|i| blake3::Hash::from(join_proof(&i.secret, &peer)) == proof);
        pos.map(|p| invites.swap_remove(p))
    };
    let invite = invite.ok_or(NetError::JoinRefused)?;
    let record = MemberRecord {
        device: peer,
        public_key: req.public_key,
        name: req.name.clone(),
        added_by: node.key.id(),
        revoked: false,
        role: invite.role,
        // The join connection comes from a throwaway endpoint, not the joiner's node.
        addrs: vec![],
    };
    node.members.add_own(&node.key, record)?;
    info!(device = %peer, name = %req.name, role = ?invite.role, "device joined");
    Ok(match invite.role {
        Role::Device => Some(invite.k_wrap),
        Role::Keeper => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> InviteCode {
        InviteCode {
            role: Role::Device,
            volume: [1; 16],
            secret: [2; 32],
            wrapped: vec![3; 61],
            inviter: DeviceId([4; 32]),
            addrs: vec![
                "127.0.0.1:4433".parse().unwrap(),
                "[::1]:4433".parse().unwrap(),
            ],
            expiry: 1_800_000_000,
        }
    }

    #[test]
    fn code_round_trip() {
        let c = sample();
        let s = c.encode();
        assert!(s.starts_with("FOSSA1-"));
        assert_eq!(InviteCode::decode(&s).unwrap(), c);
        // Whitespace and case do not matter.
        let spaced: String = s
            .chars()
            .enumerate()
            .flat_map(|(i, ch)| {
                if i % 10 == 9 {
                    vec![ch, '\n']
                } else {
                    vec![ch]
                }
            })
            .collect();
        assert_eq!(InviteCode::decode(&spaced.to_lowercase()).unwrap(), c);
    }

    #[test]
    fn keeper_code_round_trip_has_no_secret() {
        let inv = PendingInvite::generate_keeper(Duration::from_secs(60)).unwrap();
        let c = inv.code([1; 16], vec![9; 40], DeviceId([2; 32]), vec![]);
        assert!(c.wrapped.is_empty());
        let s = c.encode();
        assert!(s.starts_with("FOSSAK1-"), "{s}");
        assert_eq!(InviteCode::decode(&s).unwrap(), c);
        // A keeper code that carries a wrapped secret is refused.
        let mut bad = sample();
        bad.role = Role::Keeper;
        assert!(InviteCode::decode(&bad.encode()).is_err());
    }

    #[test]
    fn code_rejects_garbage() {
        let s = sample().encode();
        for bad in [
            "",
            "FOSSA1-",
            "FOSSA2-AAAA",
            "hello",
            &s[7..],
            &s[..s.len() - 5],
            &format!("{s}AAAAAAAA"),
            &s.replace("FOSSA1-", "FOSSA1-!"),
        ] {
            assert!(InviteCode::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_invites_are_random_and_make_codes() {
        let a = PendingInvite::generate(Duration::from_secs(60)).unwrap();
        let b = PendingInvite::generate(Duration::from_secs(60)).unwrap();
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.secret, a.k_wrap);
        let code = a.code([1; 16], vec![9], DeviceId([2; 32]), vec![]);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(code.expiry >= now + 58 && code.expiry <= now + 61);
        assert_eq!(code.secret, a.secret);
        assert_eq!(InviteCode::decode(&code.encode()).unwrap(), code);
    }

    #[test]
    fn proof_binds_secret_and_device() {
        let a = join_proof(&[1; 32], &DeviceId([5; 32]));
        assert_ne!(a, join_proof(&[2; 32], &DeviceId([5; 32])));
        assert_ne!(a, join_proof(&[1; 32], &DeviceId([6; 32])));
    }
}
