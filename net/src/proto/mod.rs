//! Wire messages of docs/protocol.md and their framing. Wire structs are separate from the
//! domain types and converted explicitly; postcard tags enum variants by index, so variants
//! are never reordered or reused.
pub(crate) mod dht;
#[cfg(test)]
mod dht_golden_tests;
pub(crate) mod frame;
#[cfg(test)]
mod golden_tests;
pub(crate) mod swarm;

pub(crate) use frame::{BlockFrames, FrameError, read_msg, write_block, write_msg};

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
    // 3 is reserved and never sent: no constant, so that nothing can send it.
    pub(crate) const REVOKED: u32 = 4;
    pub(crate) const JOIN_REFUSED: u32 = 5;
    pub(crate) const INTERNAL: u32 = 6;
    pub(crate) const ABORTED: u32 = 7;
    /// `fossa/dht/1`: wrong swarm, missing or invalid ticket, or id refused.
    pub(crate) const NOT_ADMITTED: u32 = 8;
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
    /// Tag 8: store these blocks (docs/redundancy.md).
    PutBlocks(PutBlocks),
    /// Tag 9: one status per block of a `PutBlocks`.
    PutResults(PutResults),
    /// Tag 10: which of these blocks do you hold?
    HasBlocks(IdList),
    /// Tag 11: answer to `HasBlocks`.
    HasResult(Bitmap),
    /// Tag 12: prove you hold these blocks.
    Audit(Audit),
    /// Tag 13: answer to `Audit`.
    AuditResult(AuditResult),
    /// Tag 14: you may delete these surplus copies.
    DropBlocks(IdList),
    /// Tag 15: answer to `DropBlocks`: which were deleted.
    Dropped(Bitmap),
    /// Tag 16: the joiner has stored what it needs; commit the join.
    JoinConfirm(JoinConfirm),
    /// Tag 17: the join is committed; the member list with the joiner.
    JoinDone(JoinDone),
}

/// Highest tag this version knows.
pub(crate) const MAX_KNOWN_TAG: u32 = 17;
/// Most ids in one `HasBlocks` or `DropBlocks`.
pub(crate) const MAX_IDS_PER_LIST: usize = 4096;

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
/// `"fossa member v2" ‖ volume ‖ postcard(RecordWire)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecordWire {
    pub(crate) device: [u8; 32],
    pub(crate) public_key: [u8; 32],
    pub(crate) name: String,
    pub(crate) added_by: [u8; 32],
    pub(crate) revoked: bool,
    /// Added in record version 2: what the device may do.
    pub(crate) role: RoleWire,
}

/// A member's role (record version 2); variant index is the wire value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RoleWire {
    /// 0: a member device (holds the volume secret).
    Device,
    /// 1: a storage-only peer (ciphertext blocks only).
    Keeper,
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
    pub(crate) updates: Vec<(u64, serde_bytes::ByteBuf)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GetBlocks {
    pub(crate) ids: Vec<[u8; 32]>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Block {
    pub(crate) id: [u8; 32],
    #[serde(with = "serde_bytes")]
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
    /// None for a keeper invitation: a keeper never gets the volume secret.
    pub(crate) k_wrap: Option<[u8; 32]>,
    /// The inviter's list, without the joiner.
    pub(crate) members: Vec<SignedMemberWire>,
}

/// No fields: the message itself is the confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JoinConfirm {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JoinDone {
    /// The inviter's list, the joiner's record included.
    pub(crate) members: Vec<SignedMemberWire>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PutBlocks {
    /// (id, bytes); the holder checks `BLAKE3(bytes) == id`.
    pub(crate) blocks: Vec<([u8; 32], serde_bytes::ByteBuf)>,
}

/// What a holder did with one block of a `PutBlocks`; variant index is the wire value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum PutStatusWire {
    /// 0: stored durably (or already held).
    Stored,
    /// 1: refused, the holder's quota is full.
    QuotaFull,
    /// 2: refused, the bytes do not hash to the id.
    Bad,
    /// 3: the holder failed locally (disk error); try another.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PutResults {
    /// One status per block, in request order.
    pub(crate) results: Vec<PutStatusWire>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdList {
    pub(crate) ids: Vec<[u8; 32]>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Bitmap {
    /// Bit i (byte i / 8, bit i % 8, LSB first) answers id i of the request.
    pub(crate) bits: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Audit {
    pub(crate) nonce: [u8; 32],
    pub(crate) ids: Vec<[u8; 32]>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AuditResult {
    /// Per id: `BLAKE3(nonce ‖ block)`, or None if not held.
    pub(crate) proofs: Vec<Option<[u8; 32]>>,
}

impl Bitmap {
    /// Packs `flags` LSB first.
    pub(crate) fn pack(flags: &[bool]) -> Self {
        let mut bits = vec![0u8; flags.len().div_ceil(8)];
        for (i, f) in flags.iter().enumerate() {
            if *f {
                bits[i / 8] |= 1 << (i % 8);
            }
        }
        Bitmap { bits }
    }
    /// The first `n` flags; None if the bitmap has the wrong length.
    pub(crate) fn unpack(&self, n: usize) -> Option<Vec<bool>> {
        if self.bits.len() != n.div_ceil(8) {
            return None;
        }
        Some(
            (0..n)
                .map(|i| self.bits[i / 8] & (1 << (i % 8)) != 0)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte strings are one slice on the wire, and that is the same encoding postcard gives a
    /// sequence of u8 (length, then the bytes): the wire format did not change with it.
    #[test]
    fn byte_strings_encode_like_u8_sequences() {
        #[derive(Serialize)]
        struct Plain {
            id: [u8; 32],
            data: Option<Vec<u8>>,
        }
        let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let fast = Block {
            id: [3; 32],
            data: Some(data.clone()),
        };
        let plain = Plain {
            id: [3; 32],
            data: Some(data),
        };
        let a = postcard::to_allocvec(&fast).unwrap();
        assert_eq!(a, postcard::to_allocvec(&plain).unwrap());
        assert_eq!(postcard::from_bytes::<Block>(&a).unwrap(), fast);
        let none = Block {
            id: [3; 32],
            data: None,
        };
        let b = postcard::to_allocvec(&none).unwrap();
        assert_eq!(postcard::from_bytes::<Block>(&b).unwrap(), none);
    }
}
