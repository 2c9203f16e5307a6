//! Swarm tickets (crypto.md, "Swarm tickets"): a chain of links from the founder key to the
//! admitted node, each signed by the node the previous link admitted.
use super::{SwarmId, TicketError};
use crate::proto::swarm::{LinkWire, TicketWire};
use crate::{DeviceId, DeviceKey, verify_signature};

/// Most links in a ticket (founder → admitter → admitter → node).
pub const MAX_CHAIN: usize = crate::proto::swarm::MAX_TICKET_LINKS;
/// Domain separation of a link's signed bytes.
const LINK_CONTEXT: &[u8] = b"fossa swarm ticket v1";

/// One link: `issuer_key` admits `node` until `expiry`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketLink {
    /// The admitted node.
    pub node: DeviceId,
    /// Whether `node` may admit others.
    pub may_admit: bool,
    /// Unix seconds; the link is valid while `now < expiry`.
    pub expiry: u64,
    /// The signer's Ed25519 public key: the founder key (first link) or the previous link's node.
    pub issuer_key: [u8; 32],
    /// Ed25519 signature of [`TicketLink::signed_bytes`] by `issuer_key`.
    pub sig: [u8; 64],
}

/// A ticket admitting its last link's node to `swarm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmTicket {
    /// The swarm.
    pub swarm: SwarmId,
    /// The chain, the founder's link first; 1..=[`MAX_CHAIN`] in a valid ticket.
    pub links: Vec<TicketLink>,
}

impl TicketLink {
    /// `"fossa swarm ticket v1" ‖ swarm ‖ node ‖ may_admit ‖ expiry (u64 LE) ‖ issuer id`.
    fn signed_bytes(
        swarm: &SwarmId,
        node: &DeviceId,
        may_admit: bool,
        expiry: u64,
        issuer: &DeviceId,
    ) -> Vec<u8> {
        let mut b = Vec::with_capacity(LINK_CONTEXT.len() + 16 + 32 + 1 + 8 + 32);
        b.extend_from_slice(LINK_CONTEXT);
        b.extend_from_slice(&swarm.0);
        b.extend_from_slice(&node.0);
        b.push(u8::from(may_admit));
        b.extend_from_slice(&expiry.to_le_bytes());
        b.extend_from_slice(&issuer.0);
        b
    }

    fn sign(
        key: &DeviceKey,
        swarm: &SwarmId,
        node: DeviceId,
        may_admit: bool,
        expiry: u64,
    ) -> Self {
        let bytes = Self::signed_bytes(swarm, &node, may_admit, expiry, &key.id());
        TicketLink {
            node,
            may_admit,
            expiry,
            issuer_key: key.public_key(),
            sig: key.sign(&bytes),
        }
    }

    fn issuer(&self) -> DeviceId {
        DeviceId::of_public_key(&self.issuer_key)
    }

    fn verifies(&self, swarm: &SwarmId) -> bool {
        let bytes = Self::signed_bytes(
            swarm,
            &self.node,
            self.may_admit,
            self.expiry,
            &self.issuer(),
        );
        verify_signature(&self.issuer_key, &bytes, &self.sig)
    }
}

impl SwarmTicket {
    /// The founder's own ticket (one link, may admit), made when the swarm is created; the
    /// founder key is `founder.public_key()`.
    pub fn found(founder: &DeviceKey, swarm: SwarmId, expiry: u64) -> Self {
        let link = TicketLink::sign(founder, &swarm, founder.id(), true, expiry);
        SwarmTicket {
            swarm,
            links: vec![link],
        }
    }

    /// A ticket for `node`: this ticket's chain plus one link signed by `key`, which must be
    /// this ticket's holder and allowed to admit. The new link's expiry is capped at the
    /// earliest expiry of this chain (a link never outlives its issuer's ticket).
    pub fn issue(
        &self,
        key: &DeviceKey,
        node: DeviceId,
        may_admit: bool,
        expiry: u64,
    ) -> Result<Self, TicketError> {
        let last = self.links.last().ok_or(TicketError::Empty)?;
        if last.node != key.id() {
            return Err(TicketError::NotHolder { holder: last.node });
        }
        if !last.may_admit || self.links.len() >= MAX_CHAIN {
            return Err(TicketError::CannotAdmit);
        }
        let cap = self.links.iter().map(|l| l.expiry).min().unwrap_or(expiry);
        let mut links = self.links.clone();
        links.push(TicketLink::sign(
            key,
            &self.swarm,
            node,
            may_admit,
            expiry.min(cap),
        ));
        Ok(SwarmTicket {
            swarm: self.swarm,
            links,
        })
    }

    /// The node this ticket admits (its last link's).
    pub fn holder(&self) -> Option<DeviceId> {
        self.links.last().map(|l| l.node)
    }

    /// Whether the holder may admit others with [`SwarmTicket::issue`].
    pub fn may_admit(&self) -> bool {
        self.links.last().is_some_and(|l| l.may_admit) && self.links.len() < MAX_CHAIN
    }

    /// Checks that this ticket admits `node` to `swarm` (founded by `founder`, an Ed25519
    /// public key) at `now` (Unix seconds), in crypto.md's order; the first failure is the error.
    pub fn verify(
        &self,
        swarm: &SwarmId,
        founder: &[u8; 32],
        node: &DeviceId,
        now: u64,
    ) -> Result<(), TicketError> {
        let first = self.links.first().ok_or(TicketError::Empty)?;
        if self.links.len() > MAX_CHAIN {
            return Err(TicketError::ChainTooLong {
                links: self.links.len(),
            });
        }
        if self.swarm != *swarm {
            return Err(TicketError::WrongSwarm {
                expected: *swarm,
                got: self.swarm,
            });
        }
        let holder = self.holder().ok_or(TicketError::Empty)?;
        if holder != *node {
            return Err(TicketError::WrongNode {
                expected: *node,
                got: holder,
            });
        }
        if first.issuer_key != *founder {
            return Err(TicketError::NotFounder);
        }
        for (i, pair) in self.links.windows(2).enumerate() {
            if pair[1].issuer() != pair[0].node {
                return Err(TicketError::BrokenChain { link: i + 1 });
            }
            if !pair[0].may_admit {
                return Err(TicketError::MayNotAdmit { link: i + 1 });
            }
        }
        if let Some((link, l)) = self.links.iter().enumerate().find(|(_, l)| l.expiry <= now) {
            return Err(TicketError::Expired {
                link,
                expiry: l.expiry,
            });
        }
        match self.links.iter().position(|l| !l.verifies(&self.swarm)) {
            Some(link) => Err(TicketError::BadSignature { link }),
            None => Ok(()),
        }
    }

    /// The postcard encoding (crypto.md).
    pub fn encode(&self) -> Vec<u8> {
        // A struct of arrays, integers and vectors always serializes.
        postcard::to_allocvec(&self.to_wire()).unwrap_or_default()
    }

    /// Decodes [`SwarmTicket::encode`]'s bytes (no bytes may be left over). Decoding does
    /// not verify: call [`SwarmTicket::verify`].
    pub fn decode(bytes: &[u8]) -> Result<Self, TicketError> {
        let (w, rest) =
            postcard::take_from_bytes::<TicketWire>(bytes).map_err(|_| TicketError::Malformed)?;
        if !rest.is_empty() {
            return Err(TicketError::Malformed);
        }
        Self::from_wire(w)
    }

    pub(crate) fn to_wire(&self) -> TicketWire {
        TicketWire {
            swarm: self.swarm.0,
            links: self
                .links
                .iter()
                .map(|l| LinkWire {
                    node: l.node.0,
                    may_admit: l.may_admit,
                    expiry: l.expiry,
                    issuer_key: l.issuer_key,
                    sig: l.sig.to_vec(),
                })
                .collect(),
        }
    }

    /// Converts a decoded wire ticket; a chain longer than [`MAX_CHAIN`] or a signature that
    /// is not 64 bytes is malformed (so a decoded ticket is bounded).
    pub(crate) fn from_wire(w: TicketWire) -> Result<Self, TicketError> {
        if w.links.len() > MAX_CHAIN {
            return Err(TicketError::ChainTooLong {
                links: w.links.len(),
            });
        }
        let links = w
            .links
            .into_iter()
            .map(|l| {
                Ok(TicketLink {
                    node: DeviceId(l.node),
                    may_admit: l.may_admit,
                    expiry: l.expiry,
                    issuer_key: l.issuer_key,
                    sig: l.sig.try_into().map_err(|_| TicketError::Malformed)?,
                })
            })
            .collect::<Result<Vec<_>, TicketError>>()?;
        Ok(SwarmTicket {
            swarm: SwarmId(w.swarm),
            links,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::test_keys::key;

    const NOW: u64 = 1_800_000_000;
    const SWARM: SwarmId = SwarmId([7; 16]);

    /// founder → admitter (may admit) → node.
    fn chain() -> (DeviceKey, DeviceKey, DeviceKey, SwarmTicket) {
        let (f, a, n) = (key(1), key(2), key(3));
        let t = SwarmTicket::found(&f, SWARM, NOW + 1000)
            .issue(&f, a.id(), true, NOW + 500)
            .unwrap()
            .issue(&a, n.id(), false, NOW + 100)
            .unwrap();
        (f, a, n, t)
    }

    #[test]
    fn a_valid_chain_verifies_and_round_trips() {
        let (f, _, n, t) = chain();
        assert_eq!(t.verify(&SWARM, &f.public_key(), &n.id(), NOW), Ok(()));
        assert_eq!(SwarmTicket::decode(&t.encode()), Ok(t.clone()));
        let own = SwarmTicket::found(&f, SWARM, NOW + 1);
        assert_eq!(own.verify(&SWARM, &f.public_key(), &f.id(), NOW), Ok(()));
        assert!(!t.may_admit());
    }

    #[test]
    fn wrong_swarm_node_founder_and_time_are_refused() {
        let (f, a, n, t) = chain();
        let other = SwarmId([8; 16]);
        assert_eq!(
            t.verify(&other, &f.public_key(), &n.id(), NOW),
            Err(TicketError::WrongSwarm {
                expected: other,
                got: SWARM
            })
        );
        assert_eq!(
            t.verify(&SWARM, &f.public_key(), &a.id(), NOW),
            Err(TicketError::WrongNode {
                expected: a.id(),
                got: n.id()
            })
        );
        assert_eq!(
            t.verify(&SWARM, &a.public_key(), &n.id(), NOW),
            Err(TicketError::NotFounder)
        );
        // The last link expires first (capped at NOW + 100).
        assert_eq!(
            t.verify(&SWARM, &f.public_key(), &n.id(), NOW + 100),
            Err(TicketError::Expired {
                link: 2,
                expiry: NOW + 100
            })
        );
        assert_eq!(t.verify(&SWARM, &f.public_key(), &n.id(), NOW + 99), Ok(()));
    }

    #[test]
    fn issuing_caps_expiry_at_the_issuers_chain() {
        let (f, a, _, _) = chain();
        let t = SwarmTicket::found(&f, SWARM, NOW + 10)
            .issue(&f, a.id(), true, NOW + 1_000_000)
            .unwrap();
        assert_eq!(t.links[1].expiry, NOW + 10);
    }

    #[test]
    fn every_tampered_byte_of_a_signed_field_is_refused() {
        let (f, _, n, t) = chain();
        for link in 0..t.links.len() {
            let mut bad = t.clone();
            bad.links[link].sig[5] ^= 1;
            assert_eq!(
                bad.verify(&SWARM, &f.public_key(), &n.id(), NOW),
                Err(TicketError::BadSignature { link })
            );
            let mut bad = t.clone();
            bad.links[link].expiry += 1;
            assert_eq!(
                bad.verify(&SWARM, &f.public_key(), &n.id(), NOW),
                Err(TicketError::BadSignature { link })
            );
            let mut bad = t.clone();
            bad.links[link].may_admit = !bad.links[link].may_admit;
            assert!(
                bad.verify(&SWARM, &f.public_key(), &n.id(), NOW).is_err(),
                "{link}"
            );
        }
        // One flipped bit anywhere in the encoding never yields a valid ticket.
        let bytes = t.encode();
        for i in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut b = bytes.clone();
                b[i] ^= bit;
                if let Ok(d) = SwarmTicket::decode(&b) {
                    assert!(
                        d.verify(&SWARM, &f.public_key(), &n.id(), NOW).is_err(),
                        "byte {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn wrong_signer_and_non_admitters_are_refused() {
        let (f, a, n, t) = chain();
        let mallory = key(9);
        // Mallory signs the last link herself, claiming the admitter's place.
        let mut forged = t.clone();
        forged.links[2] = TicketLink::sign(&mallory, &SWARM, n.id(), false, NOW + 100);
        assert_eq!(
            forged.verify(&SWARM, &f.public_key(), &n.id(), NOW),
            Err(TicketError::BrokenChain { link: 2 })
        );
        // Keeping the admitter's key but not its signature.
        let mut forged = t.clone();
        forged.links[2].issuer_key = a.public_key();
        forged.links[2].sig = mallory.sign(b"anything");
        assert_eq!(
            forged.verify(&SWARM, &f.public_key(), &n.id(), NOW),
            Err(TicketError::BadSignature { link: 2 })
        );
        // A node without may_admit cannot extend (API) and a hand-made extension is refused.
        assert_eq!(
            t.issue(&n, mallory.id(), false, NOW + 50),
            Err(TicketError::CannotAdmit)
        );
        assert_eq!(
            t.issue(&a, mallory.id(), false, NOW + 50),
            Err(TicketError::NotHolder { holder: n.id() })
        );
        let mut ext = t.clone();
        ext.links
            .push(TicketLink::sign(&n, &SWARM, mallory.id(), false, NOW + 50));
        assert_eq!(
            ext.verify(&SWARM, &f.public_key(), &mallory.id(), NOW),
            Err(TicketError::MayNotAdmit { link: 3 })
        );
    }

    #[test]
    fn chains_longer_than_four_links_are_refused() {
        let ks: Vec<DeviceKey> = (1..=6).map(key).collect();
        let mut t = SwarmTicket::found(&ks[0], SWARM, NOW + 1000);
        for w in ks.windows(2).take(3) {
            t = t.issue(&w[0], w[1].id(), true, NOW + 1000).unwrap();
        }
        assert_eq!(t.links.len(), MAX_CHAIN);
        assert_eq!(
            t.verify(&SWARM, &ks[0].public_key(), &ks[3].id(), NOW),
            Ok(())
        );
        assert_eq!(
            t.issue(&ks[3], ks[4].id(), true, NOW + 1000),
            Err(TicketError::CannotAdmit)
        );
        let mut long = t.clone();
        long.links.push(TicketLink::sign(
            &ks[3],
            &SWARM,
            ks[4].id(),
            true,
            NOW + 1000,
        ));
        assert_eq!(
            long.verify(&SWARM, &ks[0].public_key(), &ks[4].id(), NOW),
            Err(TicketError::ChainTooLong { links: 5 })
        );
        assert_eq!(
            SwarmTicket::decode(&long.encode()),
            Err(TicketError::ChainTooLong { links: 5 })
        );
        assert_eq!(
            SwarmTicket {
                swarm: SWARM,
                links: vec![]
            }
            .verify(&SWARM, &ks[0].public_key(), &ks[0].id(), NOW),
            Err(TicketError::Empty)
        );
    }
}
