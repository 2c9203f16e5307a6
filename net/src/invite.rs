//! Invitations and joining (crypto.md, "Invitations"; docs/protocol.md, "Joining").
use crate::{DeviceId, DeviceKey, NetError, SignedMember};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// The contents of a `FOSSA1-…` invitation code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteCode {
    /// The volume.
    pub volume: [u8; 16],
    /// The one-time secret `s`.
    pub secret: [u8; 32],
    /// The volume secret wrapped under `K_wrap` (made and opened by the fs layer).
    pub wrapped: Vec<u8>,
    /// The inviter, pinned by the joiner.
    pub inviter: DeviceId,
    /// Where the inviter listens.
    pub addrs: Vec<SocketAddr>,
    /// Unix seconds after which the inviter refuses it.
    pub expiry: u64,
}

impl InviteCode {
    /// The printable code.
    pub fn encode(&self) -> String {
        String::new()
    }
    /// Parses a printable code (whitespace ignored).
    pub fn decode(_s: &str) -> Result<Self, NetError> {
        Err(NetError::Unimplemented)
    }
}

/// What the inviter keeps while an invitation is pending.
#[derive(Clone)]
pub struct PendingInvite {
    /// The one-time secret `s` (to check the joiner's proof).
    pub secret: [u8; 32],
    /// Released to the joiner whose proof matches.
    pub k_wrap: [u8; 32],
    /// Refused after this time.
    pub expiry: SystemTime,
}

/// What a successful join returns.
pub struct JoinResult {
    /// The key that unwraps [`InviteCode::wrapped`].
    pub k_wrap: [u8; 32],
    /// The member list, the joiner included.
    pub members: Vec<SignedMember>,
}

/// Joins with `code`: connects to the inviter (pinned), proves the code, returns `K_wrap`.
pub async fn join(
    _code: &InviteCode,
    _key: &DeviceKey,
    _name: &str,
    _timeout: Duration,
) -> Result<JoinResult, NetError> {
    Err(NetError::Unimplemented)
}
