//! Invitations and joining (crypto.md, "Invitations"; docs/protocol.md, "Joining"): the
//! printable code (this file), the joiner's side (`join.rs`), the inviter's side (`serve.rs`)
//! and the inviter's book of pending invitations with its rate limits (`book.rs`).
//!
//! Invariant: an invitation is consumed only by a join that completes (the joiner confirmed
//! after storing what it needs); a code that is mistyped or expired is refused before any
//! network traffic.
mod book;
mod join;
mod serve;

pub(crate) use book::InviteBook;
pub use book::JoinLimits;
pub use join::{JoinResult, PendingJoin, begin_join, begin_join_from, join, join_proof};
pub(crate) use serve::{Inviter, serve_join};

pub use crate::error::CodeError;
use crate::error::{InviteError, LocalError};
use crate::identity::DeviceId;
use crate::members::Role;
use data_encoding::BASE32_NOPAD;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// Prefix of a printable invitation code for a member device.
const CODE_PREFIX: &str = "FOSSA2-";
/// Prefix of a printable invitation code for a keeper (storage-only peer).
const KEEPER_PREFIX: &str = "FOSSAK2-";
/// Prefixes of version 1 codes (no check), refused with their own error.
const V1_PREFIXES: [&str; 2] = ["FOSSA1-", "FOSSAK1-"];
/// Domain separation of the code's check.
const CHECK_CONTEXT: &[u8] = b"fossa invitation code v2";
/// Bytes of check at the end of the decoded code.
const CHECK_LEN: usize = 4;

/// The contents of a `FOSSA2-…` (device) or `FOSSAK2-…` (keeper) invitation code.
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
        let mut bytes = postcard::to_allocvec(&wire).unwrap_or_default();
        let prefix = prefix_of(self.role);
        let check = check(prefix, &bytes);
        bytes.extend_from_slice(&check);
        format!("{prefix}{}", BASE32_NOPAD.encode(&bytes))
    }
    /// Parses a printable code (whitespace ignored, case-insensitive), checking its checksum.
    pub fn decode(s: &str) -> Result<Self, InviteError> {
        Self::parse(s).map_err(InviteError::BadCode)
    }
    fn parse(s: &str) -> Result<Self, CodeError> {
        let clean: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if let Some(prefix) = V1_PREFIXES.into_iter().find(|p| clean.starts_with(p)) {
            return Err(CodeError::OldVersion { prefix });
        }
        let role = if clean.starts_with(CODE_PREFIX) {
            Role::Device
        } else if clean.starts_with(KEEPER_PREFIX) {
            Role::Keeper
        } else {
            return Err(CodeError::NoPrefix);
        };
        let prefix = prefix_of(role);
        let bytes = BASE32_NOPAD
            .decode(&clean.as_bytes()[prefix.len()..])
            .map_err(|_| CodeError::Garbled)?;
        let split = bytes
            .len()
            .checked_sub(CHECK_LEN)
            .ok_or(CodeError::Garbled)?;
        let (body, got) = bytes.split_at(split);
        if check(prefix, body) != got {
            return Err(CodeError::Checksum);
        }
        let (w, rest) =
            postcard::take_from_bytes::<InviteWire>(body).map_err(|_| CodeError::Malformed)?;
        if !rest.is_empty() || (role == Role::Keeper && !w.wrapped.is_empty()) {
            return Err(CodeError::Malformed);
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
    /// Refuses a code whose expiry (Unix seconds) is not after `now`.
    pub fn check_expiry(&self, now: SystemTime) -> Result<(), InviteError> {
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.expiry <= now {
            return Err(InviteError::Expired {
                expiry: self.expiry,
            });
        }
        Ok(())
    }
}

fn prefix_of(role: Role) -> &'static str {
    match role {
        Role::Device => CODE_PREFIX,
        Role::Keeper => KEEPER_PREFIX,
    }
}

/// The first [`CHECK_LEN`] bytes of `BLAKE3(CHECK_CONTEXT ‖ prefix ‖ body)`.
fn check(prefix: &str, body: &[u8]) -> [u8; CHECK_LEN] {
    let mut h = blake3::Hasher::new();
    h.update(CHECK_CONTEXT);
    h.update(prefix.as_bytes());
    h.update(body);
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&h.finalize().as_bytes()[..CHECK_LEN]);
    out
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
    pub fn generate(valid_for: Duration) -> Result<Self, LocalError> {
        use ring::rand::SecureRandom;
        let rng = ring::rand::SystemRandom::new();
        let mut secret = [0u8; 32];
        let mut k_wrap = [0u8; 32];
        rng.fill(&mut secret)
            .and_then(|()| rng.fill(&mut k_wrap))
            .map_err(|_| LocalError::NoRandomness)?;
        Ok(PendingInvite {
            secret,
            k_wrap,
            expiry: SystemTime::now() + valid_for,
            role: Role::Device,
        })
    }
    /// A fresh keeper invitation (docs/redundancy.md): the joiner becomes a [`Role::Keeper`]
    /// and receives no `K_wrap`; its code carries no wrapped secret.
    pub fn generate_keeper(valid_for: Duration) -> Result<Self, LocalError> {
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
        assert!(s.starts_with("FOSSA2-"));
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
        assert!(s.starts_with("FOSSAK2-"), "{s}");
        assert_eq!(InviteCode::decode(&s).unwrap(), c);
        // A keeper code that carries a wrapped secret is refused.
        let mut bad = sample();
        bad.role = Role::Keeper;
        assert!(InviteCode::decode(&bad.encode()).is_err());
    }

    fn parse_err(s: &str) -> CodeError {
        match InviteCode::decode(s) {
            Err(InviteError::BadCode(e)) => e,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn code_rejects_garbage() {
        let s = sample().encode();
        for bad in ["", "FOSSA", "FOSSA2X-AAAA", "hello", &s[7..]] {
            assert_eq!(parse_err(bad), CodeError::NoPrefix, "{bad}");
        }
        for bad in ["FOSSA2-", "FOSSA2-AAA", &s.replace("FOSSA2-", "FOSSA2-!")] {
            assert_eq!(parse_err(bad), CodeError::Garbled, "{bad}");
        }
        for bad in [&s[..s.len() - 8], &format!("{s}AAAAAAAA")] {
            assert_eq!(parse_err(bad), CodeError::Checksum, "{bad}");
        }
        // A body that does not decode, with a correct check.
        let mut body = vec![0xff; 20];
        body.extend_from_slice(&check(CODE_PREFIX, &body));
        let made = format!("{CODE_PREFIX}{}", BASE32_NOPAD.encode(&body));
        assert_eq!(parse_err(&made), CodeError::Malformed);
    }

    #[test]
    fn every_single_character_change_is_a_checksum_mismatch() {
        let s = sample().encode();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        // Every position of the body but the last character (whose unused low bits make
        // some changes non-canonical base32: garbled, also refused).
        for i in CODE_PREFIX.len()..s.len() - 1 {
            let old = s.as_bytes()[i] as char;
            for new in alphabet.chars().filter(|&c| c != old).step_by(7) {
                let mut t = s.clone();
                t.replace_range(i..=i, &new.to_string());
                assert_eq!(
                    parse_err(&t),
                    CodeError::Checksum,
                    "position {i}: {old}->{new}"
                );
            }
        }
    }

    #[test]
    fn version_1_codes_and_role_swaps_are_refused() {
        let s = sample().encode();
        let v1 = s.replace("FOSSA2-", "FOSSA1-");
        assert_eq!(parse_err(&v1), CodeError::OldVersion { prefix: "FOSSA1-" });
        let k1 = s.replace("FOSSA2-", "FOSSAK1-");
        assert_eq!(parse_err(&k1), CodeError::OldVersion { prefix: "FOSSAK1-" });
        // The check covers the prefix: a device code relabelled as a keeper code fails it.
        let relabelled = s.replace("FOSSA2-", "FOSSAK2-");
        assert_eq!(parse_err(&relabelled), CodeError::Checksum);
    }

    #[test]
    fn expiry_is_checked_against_the_given_clock() {
        let c = sample();
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert!(c.check_expiry(at(c.expiry - 1)).is_ok());
        for late in [c.expiry, c.expiry + 1] {
            let e = c.check_expiry(at(late)).unwrap_err();
            assert!(matches!(e, InviteError::Expired { expiry } if expiry == c.expiry));
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
