//! Wire messages of docs/protocol.md and their framing. Wire structs are separate from the
//! domain types and converted explicitly; postcard tags enum variants by index, so variants
//! are never reordered or reused.
mod frame;

pub(crate) use frame::{FrameError, read_msg, write_msg};

use serde::{Deserialize, Serialize};

/// Minor version we speak (`Hello.minor`).
pub(crate) const MINOR: u16 = 0;
/// Most ids in one `GetBlocks`.
pub(crate) const MAX_IDS_PER_REQUEST: usize = 64;
/// Most updates in one `Index` batch.
pub(crate) const MAX_UPDATES_PER_BATCH: usize = 1000;
/// Most update bytes in one `Index` batch.
pub(crate) const MAX_BATCH_BYTES: usize = 2 << 20;

/// QUIC application close codes (docs/protocol.md, "Error codes").
pub(crate) mod code {
    pub(crate) const DONE: u32 = 0;
    pub(crate) const PROTOCOL: u32 = 1;
    pub(crate) const WRONG_VOLUME: u32 = 2;
    pub(crate) const REVOKED: u32 = 4;
    pub(crate) const JOIN_REFUSED: u32 = 5;
    pub(crate) const INTERNAL: u32 = 6;
}

/// Every message; the variant index is the tag (docs/protocol.md, "Message tags").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Message {
    /// Tag 0.
    Hello(Hello),
    /// Tag 1.
    Members(MembersMsg),
    /// Tag 2.
    Want(Want),
    /// Tag 3.
    Index(Index),
    /// Tag 4.
    GetBlocks(GetBlocks),
    /// Tag 5.
    Block(Block),
    /// Tag 6.
    JoinRequest(JoinRequest),
    /// Tag 7.
    JoinAccept(JoinAccept),
}

/// Highest tag this version knows.
pub(crate) const MAX_KNOWN_TAG: u32 = 7;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub(crate) minor: u16,
    pub(crate) volume: [u8; 16],
    pub(crate) device: [u8; 32],
    pub(crate) name: String,
    pub(crate) index_id: u64,
    pub(crate) seq: u64,
}

/// A member record as signed (crypto.md, "Membership records"): the signature covers
/// `"fossa member v1" ‖ volume ‖ postcard(RecordWire)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecordWire {
    pub(crate) device: [u8; 32],
    pub(crate) public_key: [u8; 32],
    pub(crate) name: String,
    pub(crate) added_by: [u8; 32],
    pub(crate) revoked: bool,
}

/// A signed record as carried in `Members`/`JoinAccept` and saved in the member list file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SignedMemberWire {
    pub(crate) record: RecordWire,
    pub(crate) signer: [u8; 32],
    /// 64 bytes (Ed25519).
    pub(crate) sig: Vec<u8>,
    /// Unsigned hint: where the device was last reached.
    pub(crate) addrs: Vec<std::net::SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MembersMsg {
    pub(crate) records: Vec<SignedMemberWire>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Want {
    pub(crate) index_id: u64,
    pub(crate) after: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Index {
    pub(crate) index_id: u64,
    pub(crate) upto: u64,
    pub(crate) updates: Vec<(u64, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GetBlocks {
    pub(crate) ids: Vec<[u8; 32]>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Block {
    pub(crate) id: [u8; 32],
    pub(crate) data: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JoinRequest {
    pub(crate) volume: [u8; 16],
    pub(crate) device: [u8; 32],
    pub(crate) public_key: [u8; 32],
    pub(crate) name: String,
    pub(crate) proof: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JoinAccept {
    pub(crate) k_wrap: [u8; 32],
    pub(crate) members: Vec<SignedMemberWire>,
}
