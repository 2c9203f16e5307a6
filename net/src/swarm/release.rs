//! Signed releases (crypto.md, "Signed release"): a volume's owner key, derived from its
//! volume secret, releases that volume's copies at one node.
use super::{ReleaseError, SwarmId};
use crate::proto::swarm::ReleaseWire;
use crate::{DeviceId, verify_signature};
use ring::signature::{Ed25519KeyPair, KeyPair};

/// Most block ids in one release (so that it fits a 64 KiB DHT message).
pub const MAX_RELEASE_IDS: usize = 1024;
/// Domain separation of a release's signed bytes.
const RELEASE_CONTEXT: &[u8] = b"fossa swarm release v1";
/// BLAKE3 `derive_key` context of the owner key's seed.
const OWNER_KEY_CONTEXT: &str = "fossa 2026-12-07 swarm owner key v1";

/// A volume's owner key: the Ed25519 key pair every device derives from the volume secret.
pub struct OwnerKey {
    pair: Ed25519KeyPair,
}

impl OwnerKey {
    /// The owner key of the volume whose secret is `vs`.
    pub fn from_volume_secret(vs: &[u8; 32]) -> Result<Self, ReleaseError> {
        let seed = zeroize::Zeroizing::new(blake3::derive_key(OWNER_KEY_CONTEXT, vs));
        let pair = Ed25519KeyPair::from_seed_unchecked(seed.as_ref())
            .map_err(|_| ReleaseError::BadOwnerKey)?;
        Ok(OwnerKey { pair })
    }

    /// The owner: the public key nodes record with the copies this volume placed.
    pub fn public_key(&self) -> [u8; 32] {
        let mut pk = [0u8; 32];
        pk.copy_from_slice(self.pair.public_key().as_ref());
        pk
    }
}

/// A release of `ids` at `node`, signed with the owner key `owner`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    /// The swarm.
    pub swarm: SwarmId,
    /// The node asked to release.
    pub node: DeviceId,
    /// The owner key (public) that signed.
    pub owner: [u8; 32],
    /// The device that made the release (for the node's log; signed).
    pub device: DeviceId,
    /// The device's clock, Unix seconds.
    pub issued: u64,
    /// The released blocks, 1..=[`MAX_RELEASE_IDS`].
    pub ids: Vec<[u8; 32]>,
    /// Ed25519 signature by `owner`.
    pub sig: [u8; 64],
}

impl Release {
    /// Signs a release of `ids` at `node` by `device` of the volume whose owner key is `key`.
    pub fn sign(
        key: &OwnerKey,
        swarm: SwarmId,
        node: DeviceId,
        device: DeviceId,
        issued: u64,
        ids: Vec<[u8; 32]>,
    ) -> Result<Self, ReleaseError> {
        check_count(ids.len())?;
        let mut r = Release {
            swarm,
            node,
            owner: key.public_key(),
            device,
            issued,
            ids,
            sig: [0; 64],
        };
        let sig = key.pair.sign(&r.signed_bytes());
        r.sig.copy_from_slice(sig.as_ref());
        Ok(r)
    }

    /// `"fossa swarm release v1" ‖ swarm ‖ node ‖ owner ‖ device ‖ issued (u64 LE) ‖
    /// count (u32 LE) ‖ ids`.
    fn signed_bytes(&self) -> Vec<u8> {
        let mut b =
            Vec::with_capacity(RELEASE_CONTEXT.len() + 16 + 3 * 32 + 12 + 32 * self.ids.len());
        b.extend_from_slice(RELEASE_CONTEXT);
        b.extend_from_slice(&self.swarm.0);
        b.extend_from_slice(&self.node.0);
        b.extend_from_slice(&self.owner);
        b.extend_from_slice(&self.device.0);
        b.extend_from_slice(&self.issued.to_le_bytes());
        // check_count bounds the length far below u32::MAX.
        b.extend_from_slice(&(self.ids.len() as u32).to_le_bytes());
        for id in &self.ids {
            b.extend_from_slice(id);
        }
        b
    }

    /// Checks what a node checks before acting on a release: its swarm, its own id, the id
    /// count and the owner's signature. Which copies it then releases is up to the owners
    /// the node recorded ([`Release::check_owner`]).
    pub fn verify(&self, swarm: &SwarmId, node: &DeviceId) -> Result<(), ReleaseError> {
        if self.swarm != *swarm {
            return Err(ReleaseError::WrongSwarm {
                expected: *swarm,
                got: self.swarm,
            });
        }
        if self.node != *node {
            return Err(ReleaseError::WrongNode {
                expected: *node,
                got: self.node,
            });
        }
        check_count(self.ids.len())?;
        if !verify_signature(&self.owner, &self.signed_bytes(), &self.sig) {
            return Err(ReleaseError::BadSignature);
        }
        Ok(())
    }

    /// Whether this (verified) release may remove an owner from a copy whose recorded owners
    /// are `owners`: only its own owner, and only if that owner placed the copy.
    pub fn check_owner(&self, owners: &[[u8; 32]]) -> Result<(), ReleaseError> {
        if owners.contains(&self.owner) {
            Ok(())
        } else {
            Err(ReleaseError::NotOwner)
        }
    }

    /// The postcard encoding (crypto.md).
    pub fn encode(&self) -> Vec<u8> {
        // A struct of arrays, integers and vectors always serializes.
        postcard::to_allocvec(&self.to_wire()).unwrap_or_default()
    }

    /// Decodes [`Release::encode`]'s bytes (bounded; no bytes left over). Does not verify.
    pub fn decode(bytes: &[u8]) -> Result<Self, ReleaseError> {
        let (w, rest) =
            postcard::take_from_bytes::<ReleaseWire>(bytes).map_err(|_| ReleaseError::Malformed)?;
        if !rest.is_empty() {
            return Err(ReleaseError::Malformed);
        }
        Self::from_wire(w)
    }

    pub(crate) fn to_wire(&self) -> ReleaseWire {
        ReleaseWire {
            swarm: self.swarm.0,
            node: self.node.0,
            owner: self.owner,
            device: self.device.0,
            issued: self.issued,
            ids: self.ids.clone(),
            sig: self.sig.to_vec(),
        }
    }

    pub(crate) fn from_wire(w: ReleaseWire) -> Result<Self, ReleaseError> {
        check_count(w.ids.len())?;
        Ok(Release {
            swarm: SwarmId(w.swarm),
            node: DeviceId(w.node),
            owner: w.owner,
            device: DeviceId(w.device),
            issued: w.issued,
            ids: w.ids,
            sig: w.sig.try_into().map_err(|_| ReleaseError::Malformed)?,
        })
    }
}

fn check_count(count: usize) -> Result<(), ReleaseError> {
    if (1..=MAX_RELEASE_IDS).contains(&count) {
        Ok(())
    } else {
        Err(ReleaseError::Count { count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWARM: SwarmId = SwarmId([7; 16]);
    const NODE: DeviceId = DeviceId([4; 32]);
    const DEVICE: DeviceId = DeviceId([5; 32]);

    fn release(vs: u8, ids: Vec<[u8; 32]>) -> Release {
        let key = OwnerKey::from_volume_secret(&[vs; 32]).unwrap();
        Release::sign(&key, SWARM, NODE, DEVICE, 1_800_000_000, ids).unwrap()
    }

    #[test]
    fn a_release_verifies_and_round_trips() {
        let r = release(1, vec![[1; 32], [2; 32]]);
        assert_eq!(r.verify(&SWARM, &NODE), Ok(()));
        assert_eq!(Release::decode(&r.encode()), Ok(r.clone()));
        let owner = OwnerKey::from_volume_secret(&[1; 32]).unwrap().public_key();
        assert_eq!(
            r.owner, owner,
            "the owner key is a function of the volume secret"
        );
        assert_eq!(r.check_owner(&[[9; 32], owner]), Ok(()));
    }

    #[test]
    fn wrong_swarm_and_node_are_refused() {
        let r = release(1, vec![[1; 32]]);
        let other = SwarmId([8; 16]);
        assert_eq!(
            r.verify(&other, &NODE),
            Err(ReleaseError::WrongSwarm {
                expected: other,
                got: SWARM
            })
        );
        assert_eq!(
            r.verify(&SWARM, &DEVICE),
            Err(ReleaseError::WrongNode {
                expected: DEVICE,
                got: NODE
            })
        );
    }

    #[test]
    fn another_volumes_release_removes_nothing() {
        let victim = OwnerKey::from_volume_secret(&[1; 32]).unwrap().public_key();
        // Signed with its own (valid) owner key: verifies, but it is not the copy's owner.
        let other = release(2, vec![[1; 32]]);
        assert_eq!(other.verify(&SWARM, &NODE), Ok(()));
        assert_eq!(other.check_owner(&[victim]), Err(ReleaseError::NotOwner));
        // Claiming the victim's owner key without its secret: the signature fails.
        let mut forged = other.clone();
        forged.owner = victim;
        assert_eq!(
            forged.verify(&SWARM, &NODE),
            Err(ReleaseError::BadSignature)
        );
    }

    #[test]
    fn tampered_bytes_and_bad_counts_are_refused() {
        let r = release(1, vec![[1; 32], [2; 32]]);
        let bytes = r.encode();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            if let Ok(d) = Release::decode(&b) {
                assert!(d.verify(&SWARM, &NODE).is_err(), "byte {i}");
            }
        }
        let key = OwnerKey::from_volume_secret(&[1; 32]).unwrap();
        assert_eq!(
            Release::sign(&key, SWARM, NODE, DEVICE, 0, vec![]),
            Err(ReleaseError::Count { count: 0 })
        );
        let many = vec![[0; 32]; MAX_RELEASE_IDS + 1];
        assert_eq!(
            Release::sign(&key, SWARM, NODE, DEVICE, 0, many.clone()),
            Err(ReleaseError::Count {
                count: MAX_RELEASE_IDS + 1
            })
        );
        let mut w = r.to_wire();
        w.ids = many;
        let big = postcard::to_allocvec(&w).unwrap();
        assert_eq!(
            Release::decode(&big),
            Err(ReleaseError::Count {
                count: MAX_RELEASE_IDS + 1
            })
        );
        assert!(
            Release::sign(&key, SWARM, NODE, DEVICE, 0, vec![[0; 32]; MAX_RELEASE_IDS])
                .unwrap()
                .encode()
                .len()
                < 64 * 1024
        );
    }
}
