//! Pointer blocks: the inner nodes of a file's Merkle tree (docs/formats/fs-content.md,
//! "Pointer blocks"). The payload follows the block type byte ([`super::BlockKind::Pointer`]).
//!
//! Layout: version u8 at [`PTR_VERSION_AT`], height u8 at [`PTR_HEIGHT_AT`], entry count
//! u16 at [`PTR_COUNT_AT`], then `count` entries of [`ENTRY_LEN`] bytes from [`PTR_HEADER`]:
//! a block reference (all zeros for a hole) and the length it covers, u64.
use super::sealed::{BLOCK_REF_LEN, BlockRef};
use crate::FsError;
use blockstore::BlockId;

/// Largest data chunk: a height-1 entry with a block covers at most this many bytes.
pub const MAX_CHUNK: u32 = 256 * 1024;
/// Offset of the version byte.
const PTR_VERSION_AT: usize = 0;
/// Offset of the height byte.
const PTR_HEIGHT_AT: usize = 1;
/// Offset of the entry count (u16).
const PTR_COUNT_AT: usize = 2;
/// Format version byte of pointer blocks.
pub(crate) const PTR_VERSION: u8 = 1;
/// Header length: version, height, count; the entries start here.
const PTR_HEADER: usize = 4;
/// Encoded size of one entry: ref 64 B + length u64.
pub(crate) const ENTRY_LEN: usize = BLOCK_REF_LEN + 8;
/// Hard cap on entries per pointer block (the format's limit; options may lower it).
pub const MAX_FANOUT: usize = 256;
/// Deepest tree accepted (256^8 chunks is far beyond any u64 file).
pub(crate) const MAX_DEPTH: u8 = 8;

/// One child of a pointer block (or one leaf of the flattened tree).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The child block; `None` for a hole.
    pub(crate) r: Option<BlockRef>,
    /// Bytes of file content the child covers (> 0).
    pub(crate) len: u64,
}

impl Entry {
    /// A hole of `len` zero bytes.
    pub(crate) fn hole(len: u64) -> Self {
        Entry { r: None, len }
    }
}

/// Encodes a pointer block payload (after the block type byte).
pub(crate) fn encode_pointer(height: u8, entries: &[Entry]) -> Vec<u8> {
    let mut p = Vec::with_capacity(PTR_HEADER + entries.len() * ENTRY_LEN);
    p.resize(PTR_HEADER, 0);
    p[PTR_VERSION_AT] = PTR_VERSION;
    p[PTR_HEIGHT_AT] = height;
    p[PTR_COUNT_AT..PTR_HEADER].copy_from_slice(&(entries.len() as u16).to_le_bytes());
    for e in entries {
        match &e.r {
            Some(r) => r.encode(&mut p),
            None => p.extend_from_slice(&[0u8; BLOCK_REF_LEN]),
        }
        p.extend_from_slice(&e.len.to_le_bytes());
    }
    p
}

/// Decodes and structurally validates a pointer block payload; any defect is `BadBlock(id)`.
pub(crate) fn decode_pointer(id: BlockId, height: u8, p: &[u8]) -> Result<Vec<Entry>, FsError> {
    let bad = || FsError::BadBlock(id);
    if p.len() < PTR_HEADER {
        return Err(bad());
    }
    let (head, body) = p.split_at(PTR_HEADER);
    let count = u16::from_le_bytes([head[PTR_COUNT_AT], head[PTR_COUNT_AT + 1]]) as usize;
    let (ver, h) = (head[PTR_VERSION_AT], head[PTR_HEIGHT_AT]);
    if ver != PTR_VERSION || h != height || count == 0 || count > MAX_FANOUT {
        return Err(bad());
    }
    if body.len() != count * ENTRY_LEN {
        return Err(bad());
    }
    body.chunks_exact(ENTRY_LEN)
        .map(|b| {
            let (rb, lb) = b.split_at(BLOCK_REF_LEN);
            let len = u64::from_le_bytes(lb.try_into().map_err(|_| bad())?);
            let r = match rb.iter().all(|x| *x == 0) {
                true => None,
                false => Some(BlockRef::decode(rb).map_err(|_| bad())?),
            };
            let too_big = height == 1 && r.is_some() && len > u64::from(MAX_CHUNK);
            if len == 0 || too_big {
                return Err(bad());
            }
            Ok(Entry { r, len })
        })
        .collect()
}

/// A data entry of `len` bytes whose reference is made of byte `b` (tests of trees and
/// pointer blocks).
#[cfg(test)]
pub(crate) fn test_entry(b: u8, len: u64) -> Entry {
    Entry {
        r: Some(BlockRef {
            id: BlockId([b; 32]),
            key: [b; 32],
        }),
        len,
    }
}

#[cfg(test)]
mod tests {
    use super::test_entry as data;
    use super::*;

    #[test]
    fn pointer_round_trip_and_rejects_garbage() {
        let es = vec![data(1, 10), Entry::hole(5), data(2, 7)];
        let p = encode_pointer(1, &es);
        let id = BlockId([9; 32]);
        assert_eq!(decode_pointer(id, 1, &p).ok(), Some(es));
        assert!(decode_pointer(id, 2, &p).is_err(), "wrong height");
        assert!(
            decode_pointer(id, 1, &p[..p.len() - 1]).is_err(),
            "truncated"
        );
        assert!(decode_pointer(id, 1, &[]).is_err());
        let mut bad = p.clone();
        bad[0] = 7;
        assert!(decode_pointer(id, 1, &bad).is_err(), "version");
        let mut zero_len = p.clone();
        zero_len[PTR_HEADER + BLOCK_REF_LEN..PTR_HEADER + ENTRY_LEN].fill(0);
        assert!(decode_pointer(id, 1, &zero_len).is_err(), "zero length");
        let huge = encode_pointer(1, &[data(1, u64::from(MAX_CHUNK) + 1)]);
        assert!(decode_pointer(id, 1, &huge).is_err(), "chunk too long");
    }
}
