//! Errors of the network layer, one type per concept; variants carry data, not prose.
//!
//! - [`LinkError`]: the QUIC link broke or a deadline passed (retry, maybe elsewhere).
//! - [`PeerError`]: the peer broke the protocol or is not who may talk to us (logged, the
//!   connection closed).
//! - [`LocalError`]: this device's own state (key file, member list, TLS, randomness);
//!   [`KeyError`] (identity.rs) is the key file's and a device id's part of it.
//! - [`InviteError`]: an invitation code or a join refused.
//! - [`FetchError`]: why one block could not be fetched (timeout, no peers, not found, a
//!   peer's wrong bytes).
//! - [`NetError`]: what a call that crosses concepts (connect, join, keep requests) returns:
//!   one of the above, or a replica failure; `From` converts each into it.
//!
//! Library code never panics on peer input: a bad message is a [`PeerError`] that closes
//! that one connection. Ask [`NetError::is_timeout`] / [`NetError::is_transient`] rather than
//! matching deep.
use crate::identity::{DeviceId, KeyError};
use crate::replica::ReplicaError;

/// The QUIC link broke, or no answer came before a deadline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// No answer before the deadline.
    #[error("timed out")]
    Timeout,
    /// Starting a QUIC connection failed locally (bad address, endpoint closed).
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The QUIC connection failed or was closed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// A stream failed because its connection was lost.
    #[error("stream: {0}")]
    Stream(quinn::ConnectionError),
    /// The stream ended (reset, stopped, finished) before a whole message arrived.
    #[error("stream ended early")]
    StreamEnded,
}

impl LinkError {
    /// The connection-level cause, if the link failed with one (a close code, a TLS alert).
    pub fn connection(&self) -> Option<&quinn::ConnectionError> {
        match self {
            LinkError::Connection(c) | LinkError::Stream(c) => Some(c),
            _ => None,
        }
    }
}

/// The peer broke the protocol, or is not a peer we may talk to.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// A malformed, oversized or unexpected message, or an answer that does not match its
    /// request; names what was wrong.
    #[error("protocol violation: {0}")]
    Violation(&'static str),
    /// The peer's Hello names another volume.
    #[error("peer belongs to another volume")]
    WrongVolume,
    /// The peer is not a current member (unknown or revoked key).
    #[error("device {0} is not a member of this volume")]
    NotMember(DeviceId),
}

/// This device's own state failed: key file, member list, TLS setup, randomness, sockets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// Local I/O (key file, member list file, socket).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The device key or a device id.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The member list file does not decode.
    #[error("malformed member list file")]
    BadMembersFile,
    /// A record that is not correctly signed by a current member.
    #[error("member record for {0} is not signed by a current member")]
    BadSignature(DeviceId),
    /// The device is not in the member list (or is revoked).
    #[error("device {0} is not a member of this volume")]
    NotMember(DeviceId),
    /// TLS configuration failure.
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// Certificate generation failure.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// The OS gave no randomness.
    #[error("OS randomness unavailable")]
    NoRandomness,
    /// The LAN discovery socket failed.
    #[error("LAN discovery: {0}")]
    Discovery(std::io::Error),
}

/// An invitation refused: its code before any traffic, or the inviter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InviteError {
    /// An invitation code that does not decode.
    #[error("bad invitation code: {0}")]
    BadCode(CodeError),
    /// An invitation code past its expiry (Unix seconds).
    #[error("invitation expired at {expiry} (Unix time)")]
    Expired {
        /// When it expired, Unix seconds.
        expiry: u64,
    },
    /// The code names no address to reach the inviter at.
    #[error("the invitation names no address")]
    NoAddress,
    /// The inviter refused the invitation (bad proof, expired, used, withdrawn, held by
    /// another join, or this address waits after failed attempts).
    #[error(
        "the inviter refused the invitation (used, expired or withdrawn; or another join holds \
         it, or this address must wait after failed attempts)"
    )]
    Refused,
}

/// Why a printable code was refused (before any network traffic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodeError {
    /// No known prefix.
    #[error("not an invitation code (it starts with FOSSA2- or FOSSAK2-)")]
    NoPrefix,
    /// A version 1 code, made by an older fossa.
    #[error("made by an older fossa ({prefix}): ask for a new code")]
    OldVersion {
        /// The version 1 prefix found.
        prefix: &'static str,
    },
    /// Not base32, or a length that is no whole code.
    #[error("garbled (a character is missing, extra or not base32)")]
    Garbled,
    /// The check does not match the rest of the code.
    #[error("checksum mismatch (a character is wrong: copy the code again)")]
    Checksum,
    /// The check matches but the contents do not decode (a code made wrongly).
    #[error("malformed contents")]
    Malformed,
}

/// A failure of a call that crosses concepts: one of the concept errors, or the replica's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The link broke or a deadline passed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The peer misbehaved or may not talk to us.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// Local state failed.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// An invitation was refused.
    #[error(transparent)]
    Invite(#[from] InviteError),
    /// A request for a peer this node has no session with.
    #[error("no session with {0}")]
    NotConnected(DeviceId),
    /// The local replica failed.
    #[error("replica: {0}")]
    Replica(#[from] ReplicaError),
}

impl NetError {
    /// True if a deadline passed (ETIMEDOUT to a caller that maps errors to errno).
    pub fn is_timeout(&self) -> bool {
        matches!(self, NetError::Link(LinkError::Timeout))
    }
    /// True if retrying (later, or with another peer) may succeed: a broken link or a
    /// deadline (not a connect refused locally: bad address, endpoint closed), no session
    /// yet, local I/O, the replica.
    pub fn is_transient(&self) -> bool {
        match self {
            NetError::Link(LinkError::Connect(_)) => false,
            NetError::Link(_)
            | NetError::NotConnected(_)
            | NetError::Local(LocalError::Io(_))
            | NetError::Replica(_) => true,
            _ => false,
        }
    }
}

/// Converts a concept's source error into [`NetError`] through that concept.
macro_rules! via {
    ($concept:ident: $($t:ty),*) => {$(
        impl From<$t> for NetError {
            fn from(e: $t) -> Self {
                NetError::$concept(e.into())
            }
        }
    )*};
}
via!(Link: quinn::ConnectError, quinn::ConnectionError, quinn::WriteError, quinn::ReadExactError,
    quinn::ReadError, quinn::ClosedStream);
via!(Local: std::io::Error, rustls::Error, rcgen::Error, KeyError);

impl From<quinn::WriteError> for LinkError {
    fn from(e: quinn::WriteError) -> Self {
        match e {
            quinn::WriteError::ConnectionLost(c) => LinkError::Stream(c),
            _ => LinkError::StreamEnded,
        }
    }
}

impl From<quinn::ReadExactError> for LinkError {
    fn from(e: quinn::ReadExactError) -> Self {
        match e {
            quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(c)) => {
                LinkError::Stream(c)
            }
            _ => LinkError::StreamEnded,
        }
    }
}

impl From<quinn::ReadError> for LinkError {
    fn from(e: quinn::ReadError) -> Self {
        match e {
            quinn::ReadError::ConnectionLost(c) => LinkError::Stream(c),
            _ => LinkError::StreamEnded,
        }
    }
}

impl From<quinn::ClosedStream> for LinkError {
    fn from(_: quinn::ClosedStream) -> Self {
        LinkError::StreamEnded
    }
}

/// Why one block could not be fetched from peers. Ask it [`FetchError::is_timeout`],
/// [`FetchError::is_no_peers`] or [`FetchError::bad_peer`] to tell the cases apart (a daemon
/// maps a timeout to ETIMEDOUT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The deadline passed before any peer sent the block.
    #[error("no peer sent the block in time")]
    Timeout,
    /// No peer is connected.
    #[error("no connected peer")]
    NoPeers,
    /// Every connected peer was asked; none had the block.
    #[error("no connected peer has the block")]
    NotFound,
    /// Every connected peer was asked; `peer` sent bytes that do not match the block's id
    /// (refused) and no other sent the block.
    #[error("peer {peer} sent bytes that do not match the block's id; no other peer has it")]
    BadBytes {
        /// The peer that sent the wrong bytes (the last one, if several did).
        peer: DeviceId,
    },
}

impl FetchError {
    /// True if the deadline passed (ETIMEDOUT to a reader).
    pub fn is_timeout(&self) -> bool {
        matches!(self, FetchError::Timeout)
    }
    /// True if no peer was connected to ask.
    pub fn is_no_peers(&self) -> bool {
        matches!(self, FetchError::NoPeers)
    }
    /// The peer that sent bytes not matching the id, if that is why the fetch failed.
    pub fn bad_peer(&self) -> Option<DeviceId> {
        match self {
            FetchError::BadBytes { peer } => Some(*peer),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_can_ask_what_went_wrong_without_matching_deep() {
        let timeout: NetError = LinkError::Timeout.into();
        assert!(timeout.is_timeout() && timeout.is_transient());
        let refused: NetError = InviteError::Refused.into();
        assert!(!refused.is_timeout() && !refused.is_transient());
        let peer = DeviceId([7; 32]);
        let bad = FetchError::BadBytes { peer };
        assert_eq!(bad.bad_peer(), Some(peer));
        assert!(!bad.is_timeout() && !bad.is_no_peers());
        assert!(FetchError::Timeout.is_timeout() && FetchError::Timeout.bad_peer().is_none());
        assert!(FetchError::NoPeers.is_no_peers());
        let io: NetError = std::io::Error::other("disk").into();
        assert!(matches!(io, NetError::Local(LocalError::Io(_))));
    }
}
