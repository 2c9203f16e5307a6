//! Errors of the network layer. Variants carry data, not prose; `is_transient` says whether
//! a retry (another peer, later) can help. Library code never panics on peer input: a bad
//! message is a [`NetError::Protocol`] that closes that one connection.
use crate::DeviceId;

/// A network-layer failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The peer is not a current member (unknown or revoked key).
    #[error("device {0} is not a member of this volume")]
    NotMember(DeviceId),
    /// The LAN discovery socket failed.
    #[error("LAN discovery: {0}")]
    Discovery(String),
    /// No peer answered in time.
    #[error("timed out")]
    Timeout,
    /// Local I/O (key file, member list file, socket).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The device key file is not a PKCS#8 v2 Ed25519 document.
    #[error("device key file is not a valid Ed25519 PKCS#8 document")]
    BadKey,
    /// A device id that is not 52 base32 characters (32 bytes).
    #[error("malformed device id")]
    BadDeviceId,
    /// An invitation code refused before any network traffic.
    #[error("bad invitation code: {0}")]
    BadInviteCode(crate::invite::CodeError),
    /// An invitation code past its expiry (Unix seconds), refused before any network traffic.
    #[error("invitation expired at {expiry} (Unix time)")]
    InviteExpired {
        /// When it expired, Unix seconds.
        expiry: u64,
    },
    /// The member list file does not decode.
    #[error("malformed member list file")]
    BadMembersFile,
    /// A record that is not correctly signed by a current member.
    #[error("member record for {0} is not signed by a current member")]
    BadSignature(DeviceId),
    /// A peer broke the protocol (malformed, oversized or unexpected message).
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// The peer's Hello names another volume.
    #[error("peer belongs to another volume")]
    WrongVolume,
    /// The peer's key is not the one we meant to reach.
    #[error("reached device {got} instead of {expected}")]
    WrongDevice {
        /// The device the caller pinned.
        expected: DeviceId,
        /// The device that answered.
        got: DeviceId,
    },
    /// The inviter refused the invitation (bad proof, expired, used, withdrawn, held by
    /// another join, or this address waits after failed attempts).
    #[error(
        "the inviter refused the invitation (used, expired or withdrawn; or another join holds \
         it, or this address must wait after failed attempts)"
    )]
    JoinRefused,
    /// A keeper asked to do what only member devices do.
    #[error("a keeper cannot {0}")]
    KeeperCannot(&'static str),
    /// No connected peer holds the block.
    #[error("no peer has the block")]
    NotFound,
    /// No peer is connected.
    #[error("no connected peer")]
    NoPeers,
    /// The node is shut down.
    #[error("node is shut down")]
    Closed,
    /// TLS configuration failure.
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// Certificate generation failure.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// Starting a QUIC connection failed locally (bad address, endpoint closed).
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The QUIC connection failed or was closed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// A stream failed (reset, stopped, connection lost).
    #[error("stream: {0}")]
    Stream(quinn::ConnectionError),
    /// The stream ended before a whole message arrived.
    #[error("stream ended early")]
    StreamEnded,
    /// The local replica failed.
    #[error("replica: {0}")]
    Replica(#[from] crate::ReplicaError),
}

impl NetError {
    /// True if retrying (later, or with another peer) may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            NetError::Timeout
                | NetError::Io(_)
                | NetError::NotFound
                | NetError::NoPeers
                | NetError::Connection(_)
                | NetError::Stream(_)
                | NetError::StreamEnded
                | NetError::Replica(_)
        )
    }
}

impl From<quinn::WriteError> for NetError {
    fn from(e: quinn::WriteError) -> Self {
        match e {
            quinn::WriteError::ConnectionLost(c) => NetError::Stream(c),
            _ => NetError::StreamEnded,
        }
    }
}

impl From<quinn::ReadExactError> for NetError {
    fn from(e: quinn::ReadExactError) -> Self {
        match e {
            quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(c)) => {
                NetError::Stream(c)
            }
            _ => NetError::StreamEnded,
        }
    }
}

impl From<quinn::ReadError> for NetError {
    fn from(e: quinn::ReadError) -> Self {
        match e {
            quinn::ReadError::ConnectionLost(c) => NetError::Stream(c),
            _ => NetError::StreamEnded,
        }
    }
}

impl From<quinn::ClosedStream> for NetError {
    fn from(_: quinn::ClosedStream) -> Self {
        NetError::StreamEnded
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
