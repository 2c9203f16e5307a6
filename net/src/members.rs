//! The volume's member list (crypto.md, "Membership records"): signed records, revocation final.
use crate::{DeviceId, DeviceKey, NetError};
use std::net::SocketAddr;
use std::path::Path;

/// One device of the volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRecord {
    /// The device.
    pub device: DeviceId,
    /// Its Ed25519 public key (DeviceId = BLAKE3 of it).
    pub public_key: [u8; 32],
    /// A human name ("laptop").
    pub name: String,
    /// The member that added it (itself for the volume's first device).
    pub added_by: DeviceId,
    /// Revoked for good.
    pub revoked: bool,
    /// Where it was last reached (a hint, not signed).
    pub addrs: Vec<SocketAddr>,
}

/// A record with its signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedMember {
    /// The record.
    pub record: MemberRecord,
    /// Who signed it (must be a member).
    pub signer: DeviceId,
    /// Ed25519 over "fossa member v1" ‖ volume id ‖ record encoding.
    pub sig: [u8; 64],
}

/// The member list shared by the TLS verifiers, sessions and the CLI; internally locked.
pub struct Members {
    _private: (),
}

impl Members {
    /// An empty list for volume `volume`.
    pub fn new(_volume: [u8; 16]) -> Self {
        Members { _private: () }
    }
    /// Loads the list saved at `path` (an empty list if the file does not exist).
    pub fn load(_volume: [u8; 16], _path: &Path) -> Result<Self, NetError> {
        Err(NetError::Unimplemented)
    }
    /// Saves the list to `path` atomically (write + fsync + rename).
    pub fn save(&self, _path: &Path) -> Result<(), NetError> {
        Err(NetError::Unimplemented)
    }
    /// Signs `record` with `key` and adds it (the first device adds itself this way).
    pub fn add_own(&self, _key: &DeviceKey, _record: MemberRecord) -> Result<(), NetError> {
        Err(NetError::Unimplemented)
    }
    /// Merges records received from a peer; returns true if anything changed.
    pub fn merge(&self, _records: &[SignedMember]) -> bool {
        false
    }
    /// Marks `device` revoked (signed by `key`).
    pub fn revoke(&self, _key: &DeviceKey, _device: &DeviceId) -> Result<(), NetError> {
        Err(NetError::Unimplemented)
    }
    /// Records where `device` was reached (not signed, not synced as authoritative).
    pub fn set_addrs(&self, _device: &DeviceId, _addrs: Vec<SocketAddr>) {}
    /// True if `device` is a current (not revoked) member.
    pub fn is_member(&self, _device: &DeviceId) -> bool {
        false
    }
    /// The public key of a current member.
    pub fn public_key(&self, _device: &DeviceId) -> Option<[u8; 32]> {
        None
    }
    /// All records, members and revoked.
    pub fn list(&self) -> Vec<MemberRecord> {
        Vec::new()
    }
    /// All signed records (what `Members` messages carry).
    pub fn signed(&self) -> Vec<SignedMember> {
        Vec::new()
    }
}
