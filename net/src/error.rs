//! Errors of the network layer. Variants carry data, not prose; `is_transient` says whether
//! a retry (another peer, later) can help.
use crate::DeviceId;

/// A network-layer failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// Placeholder while the crate is being written.
    #[error("not implemented yet")]
    Unimplemented,
    /// The peer is not a current member (unknown or revoked key).
    #[error("device {0} is not a member of this volume")]
    NotMember(DeviceId),
    /// The LAN discovery socket failed.
    #[error("LAN discovery: {0}")]
    Discovery(String),
    /// No peer answered in time.
    #[error("timed out")]
    Timeout,
}
