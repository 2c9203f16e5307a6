//! Why a ticket, a join code or a release is refused.
use crate::DeviceId;

/// A swarm ticket that does not admit (crypto.md, "Swarm tickets": checked in this order).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// A ticket without links.
    #[error("ticket has no links")]
    Empty,
    /// More links than [`super::MAX_CHAIN`].
    #[error("ticket chain of {links} links is longer than {max}", max = super::MAX_CHAIN)]
    ChainTooLong {
        /// Links in the ticket.
        links: usize,
    },
    /// The ticket is for another swarm.
    #[error("ticket is for swarm {got}, not {expected}")]
    WrongSwarm {
        /// The swarm checked against.
        expected: super::SwarmId,
        /// The swarm the ticket names.
        got: super::SwarmId,
    },
    /// The ticket admits another node.
    #[error("ticket admits {got}, not {expected}")]
    WrongNode {
        /// The node checked against (the peer's certificate id).
        expected: DeviceId,
        /// The node the ticket admits.
        got: DeviceId,
    },
    /// The first link is not signed by the swarm's founder key.
    #[error("ticket is not rooted at the swarm's founder key")]
    NotFounder,
    /// Link `link` is signed by a key that is not the node the previous link admitted.
    #[error("ticket link {link} is signed by a node the chain did not admit")]
    BrokenChain {
        /// Index of the offending link.
        link: usize,
    },
    /// Link `link` is signed by a node whose own link does not let it admit.
    #[error("ticket link {link} is signed by a node that may not admit")]
    MayNotAdmit {
        /// Index of the offending link.
        link: usize,
    },
    /// Link `link` expired at `expiry` (Unix seconds).
    #[error("ticket link {link} expired at {expiry} (Unix seconds)")]
    Expired {
        /// Index of the expired link.
        link: usize,
        /// Its expiry.
        expiry: u64,
    },
    /// Link `link`'s signature does not verify.
    #[error("ticket link {link} has a bad signature")]
    BadSignature {
        /// Index of the offending link.
        link: usize,
    },
    /// The bytes do not decode as a ticket.
    #[error("ticket does not decode")]
    Malformed,
    /// Extending a ticket with a key that is not its holder's.
    #[error("only the ticket's holder {holder} can extend it")]
    NotHolder {
        /// The node the ticket admits.
        holder: DeviceId,
    },
    /// Extending a ticket whose holder may not admit, or whose chain is full.
    #[error("this ticket cannot admit others (may_admit unset or chain full)")]
    CannotAdmit,
}

/// A printable swarm join code that does not decode (crypto.md, "Swarm tickets").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SwarmCodeError {
    /// No `FOSSAS1-` prefix.
    #[error("not a swarm join code (it starts with FOSSAS1-)")]
    NoPrefix,
    /// Not base32, or a length that is no whole code.
    #[error("garbled (a character is missing, extra or not base32)")]
    Garbled,
    /// The check does not match the rest of the code.
    #[error("checksum mismatch (a character is wrong: copy the code again)")]
    Checksum,
    /// The check matches but the contents do not decode or break a bound.
    #[error("malformed contents: {what}")]
    Malformed {
        /// What is wrong.
        what: &'static str,
    },
    /// A swarm id of the wrong length.
    #[error("a swarm id is 16 bytes, not {len}")]
    BadSwarmId {
        /// Bytes decoded.
        len: usize,
    },
}

/// A release that a node refuses (crypto.md, "Signed release").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The release is for another swarm.
    #[error("release is for swarm {got}, not {expected}")]
    WrongSwarm {
        /// This node's swarm.
        expected: super::SwarmId,
        /// The swarm the release names.
        got: super::SwarmId,
    },
    /// The release is addressed to another node.
    #[error("release is for node {got}, not {expected}")]
    WrongNode {
        /// This node.
        expected: DeviceId,
        /// The node the release names.
        got: DeviceId,
    },
    /// The signature does not verify under the owner key the release names.
    #[error("release signature does not verify under its owner key")]
    BadSignature,
    /// No ids, or more than [`super::MAX_RELEASE_IDS`].
    #[error("release lists {count} ids (1 to {max} allowed)", max = super::MAX_RELEASE_IDS)]
    Count {
        /// Ids listed.
        count: usize,
    },
    /// The release's owner is not an owner of the copies it names.
    #[error("release is signed by an owner that did not place these blocks")]
    NotOwner,
    /// The bytes do not decode as a release.
    #[error("release does not decode")]
    Malformed,
    /// The owner key could not be made from its seed.
    #[error("owner key could not be derived")]
    BadOwnerKey,
}
