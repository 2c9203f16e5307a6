//! Swarm admission and ownership (docs/swarm.md; crypto.md "Swarm tickets", "Signed release"):
//! the swarm id, tickets that admit a node (a chain rooted at the founder key), the printable
//! join code, and signed releases by a volume's owner key.
//!
//! Invariants: a ticket is valid only for the swarm, founder key, node id and time it is
//! checked against, with at most [`MAX_CHAIN`] links each signed by the node the previous
//! link admitted; a release is valid only for the swarm and node it names, under the owner
//! key it names. These parts touch no network and no clock: callers pass `now`.
//!
//! [`SwarmNode`] is the one networked part: it runs the sans-IO DHT core ([`crate::dht`]) over
//! QUIC (`fossa/dht/1`), admitting connections by `SwarmHello` (`admit`), framing messages
//! (`frames`), and keeping only the connections it uses (`conns`).
mod admit;
mod code;
mod conns;
mod error;
mod frames;
#[cfg(test)]
pub(crate) mod golden_tests;
mod hello;
mod release;
mod service;
#[cfg(test)]
mod service_tests;
mod ticket;

pub use admit::Gate;
pub use code::{Admission, JoinCode};
pub use error::{ReleaseError, SwarmCodeError, TicketError};
pub use hello::{HelloRefusal, SwarmHello, SwarmMode};
pub use release::{MAX_RELEASE_IDS, OwnerKey, Release};
pub use service::{SwarmConfig, SwarmError, SwarmNode, SwarmStatus};
pub use ticket::{MAX_CHAIN, SwarmTicket, TicketLink};

use data_encoding::BASE32_NOPAD;
use std::fmt;

/// A swarm's id: 16 random bytes made when the swarm is created. `Display` is 26 base32
/// characters (RFC 4648, upper case, no padding).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SwarmId(pub [u8; 16]);

impl SwarmId {
    /// A fresh id from OS randomness.
    pub fn random() -> Result<Self, crate::LocalError> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).map_err(|_| crate::LocalError::NoRandomness)?;
        Ok(SwarmId(b))
    }
}

impl fmt::Display for SwarmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE32_NOPAD.encode(&self.0))
    }
}

impl fmt::Debug for SwarmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SwarmId({self})")
    }
}

impl std::str::FromStr for SwarmId {
    type Err = SwarmCodeError;
    /// The display form, either case, surrounding whitespace ignored.
    fn from_str(s: &str) -> Result<Self, SwarmCodeError> {
        let clean = s.trim().to_ascii_uppercase();
        let bytes = BASE32_NOPAD
            .decode(clean.as_bytes())
            .map_err(|_| SwarmCodeError::Garbled)?;
        let arr: [u8; 16] = bytes
            .try_into()
            .map_err(|v: Vec<u8>| SwarmCodeError::BadSwarmId { len: v.len() })?;
        Ok(SwarmId(arr))
    }
}

#[cfg(test)]
pub(crate) mod test_keys {
    use crate::DeviceKey;

    /// A device key from a fixed seed (PKCS#8 v2 built by hand), for reproducible signatures.
    pub(crate) fn key(seed: u8) -> DeviceKey {
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
        let mut doc = vec![
            0x30, 0x53, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        doc.extend_from_slice(&[seed; 32]);
        doc.extend_from_slice(&[0xa1, 0x23, 0x03, 0x21, 0x00]);
        doc.extend_from_slice(ring::signature::KeyPair::public_key(&pair).as_ref());
        DeviceKey::from_pkcs8(&doc).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_id_display_round_trip() {
        let id = SwarmId::random().unwrap();
        let s = id.to_string();
        assert_eq!(s.len(), 26);
        assert_eq!(s.parse::<SwarmId>().unwrap(), id);
        assert_eq!(s.to_lowercase().parse::<SwarmId>().unwrap(), id);
        assert_eq!("A".parse::<SwarmId>(), Err(SwarmCodeError::Garbled));
        assert_eq!(
            "AAAAAAAA".parse::<SwarmId>(),
            Err(SwarmCodeError::BadSwarmId { len: 5 })
        );
    }

    #[test]
    fn fixed_seed_keys_are_stable() {
        assert_eq!(test_keys::key(1).id(), test_keys::key(1).id());
        assert_ne!(test_keys::key(1).id(), test_keys::key(2).id());
    }
}
