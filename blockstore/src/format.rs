//! On-disk formats of the block store: data-file header, record header and index entries.
//!
//! Pure encode/decode, no I/O. Every layout here is documented byte by byte in
//! `docs/formats/blockstore.md`; the offsets below are the normative ones. Little-endian.
use crate::{BlockId, Class};

/// Magic at offset 0 of every data file.
pub(crate) const FILE_MAGIC: [u8; 8] = *b"FOSSADAT";
/// Version of the data-file and index formats.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Bytes of the data-file header.
pub(crate) const FILE_HEADER_LEN: u64 = 32;
/// Magic at offset 0 of every record.
pub(crate) const RECORD_MAGIC: [u8; 4] = *b"FBLK";
/// Bytes of a record header; the block's bytes follow it.
pub(crate) const RECORD_HEADER_LEN: u64 = 48;
/// Largest block the store accepts.
pub const MAX_BLOCK_LEN: usize = 64 << 20;
/// Bytes of an index entry value in the redb `blocks` table.
pub(crate) const ENTRY_LEN: usize = 24;

// File header offsets.
const FH_VERSION: usize = 8;
const FH_FILE_NO: usize = 12;
const FH_CHECK: usize = 28;
// Record header offsets.
const RH_LEN: usize = 4;
const RH_ID: usize = 8;
const RH_CHECK: usize = 44;
// Index entry offsets (18..20 reserved, zero).
const E_FILE: usize = 0;
const E_OFFSET: usize = 4;
const E_LEN: usize = 12;
const E_CLASS: usize = 16;
const E_FLAGS: usize = 17;
const E_HITS: usize = 20;

/// First 4 bytes of BLAKE3 over `bytes`: the header checksum.
fn check4(bytes: &[u8]) -> [u8; 4] {
    let h = blake3::hash(bytes);
    let mut out = [0u8; 4];
    out.copy_from_slice(&h.as_bytes()[..4]);
    out
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// Encodes the header of data file number `file_no`.
pub(crate) fn encode_file_header(file_no: u32) -> [u8; FILE_HEADER_LEN as usize] {
    let mut b = [0u8; FILE_HEADER_LEN as usize];
    b[..8].copy_from_slice(&FILE_MAGIC);
    b[FH_VERSION..FH_VERSION + 4].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    b[FH_FILE_NO..FH_FILE_NO + 4].copy_from_slice(&file_no.to_le_bytes());
    let c = check4(&b[..FH_CHECK]);
    b[FH_CHECK..].copy_from_slice(&c);
    b
}

/// Decodes a data-file header, returning the file number it claims.
pub(crate) fn decode_file_header(b: &[u8; FILE_HEADER_LEN as usize]) -> Result<u32, &'static str> {
    if b[..8] != FILE_MAGIC {
        return Err("bad data file magic");
    }
    if b[FH_CHECK..] != check4(&b[..FH_CHECK]) {
        return Err("bad data file header checksum");
    }
    if u32_at(b, FH_VERSION) != FORMAT_VERSION {
        return Err("unsupported data file version");
    }
    Ok(u32_at(b, FH_FILE_NO))
}

/// The decoded header of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    /// Length of the block's bytes.
    pub(crate) len: u32,
    /// Id the bytes should hash to.
    pub(crate) id: BlockId,
}

/// Encodes a record header for a block of `len` bytes with id `id`.
pub(crate) fn encode_record_header(len: u32, id: &BlockId) -> [u8; RECORD_HEADER_LEN as usize] {
    let mut b = [0u8; RECORD_HEADER_LEN as usize];
    b[..4].copy_from_slice(&RECORD_MAGIC);
    b[RH_LEN..RH_LEN + 4].copy_from_slice(&len.to_le_bytes());
    b[RH_ID..RH_ID + 32].copy_from_slice(id.as_bytes());
    let c = check4(&b[..RH_CHECK]);
    b[RH_CHECK..].copy_from_slice(&c);
    b
}

/// Decodes a record header; any damage (torn tail, garbage) is an error.
pub(crate) fn decode_record_header(
    b: &[u8; RECORD_HEADER_LEN as usize],
) -> Result<RecordHeader, &'static str> {
    if b[..4] != RECORD_MAGIC {
        return Err("bad record magic");
    }
    if b[RH_CHECK..] != check4(&b[..RH_CHECK]) {
        return Err("bad record header checksum");
    }
    let len = u32_at(b, RH_LEN);
    if len as usize > MAX_BLOCK_LEN {
        return Err("record longer than the maximum block");
    }
    let mut id = [0u8; 32];
    id.copy_from_slice(&b[RH_ID..RH_ID + 32]);
    Ok(RecordHeader {
        len,
        id: BlockId(id),
    })
}

/// Where a block lives and how it is kept: the value of the redb `blocks` table, and the
/// in-memory index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Data file number.
    pub(crate) file: u32,
    /// Offset of the record header in that file.
    pub(crate) offset: u64,
    /// Length of the block's bytes.
    pub(crate) len: u32,
    /// Storage class.
    pub(crate) class: Class,
    /// Never collected or evicted while set.
    pub(crate) pinned: bool,
    /// Cache hit count as of the last index commit.
    pub(crate) hits: u32,
}

impl Entry {
    /// Offset of the block's bytes.
    pub(crate) fn data_offset(&self) -> u64 {
        self.offset + RECORD_HEADER_LEN
    }

    /// Bytes the record takes in its data file.
    pub(crate) fn record_len(&self) -> u64 {
        RECORD_HEADER_LEN + u64::from(self.len)
    }
}

/// Encodes an index entry.
pub(crate) fn encode_entry(e: &Entry) -> [u8; ENTRY_LEN] {
    let mut b = [0u8; ENTRY_LEN];
    b[E_FILE..E_FILE + 4].copy_from_slice(&e.file.to_le_bytes());
    b[E_OFFSET..E_OFFSET + 8].copy_from_slice(&e.offset.to_le_bytes());
    b[E_LEN..E_LEN + 4].copy_from_slice(&e.len.to_le_bytes());
    b[E_CLASS] = match e.class {
        Class::Own => 0,
        Class::Cached => 1,
    };
    b[E_FLAGS] = u8::from(e.pinned);
    b[E_HITS..E_HITS + 4].copy_from_slice(&e.hits.to_le_bytes());
    b
}

/// Decodes an index entry.
pub(crate) fn decode_entry(b: &[u8; ENTRY_LEN]) -> Result<Entry, &'static str> {
    let class = match b[E_CLASS] {
        0 => Class::Own,
        1 => Class::Cached,
        _ => return Err("bad class in index entry"),
    };
    if b[E_FLAGS] > 1 {
        return Err("bad flags in index entry");
    }
    let (offset, len) = (u64_at(b, E_OFFSET), u32_at(b, E_LEN));
    // Readers add the header and length to the offset unchecked.
    if offset
        .checked_add(RECORD_HEADER_LEN + u64::from(len))
        .is_none()
    {
        return Err("index entry past the largest offset");
    }
    Ok(Entry {
        file: u32_at(b, E_FILE),
        offset,
        len,
        class,
        pinned: b[E_FLAGS] == 1,
        hits: u32_at(b, E_HITS),
    })
}

/// File name of data file `n` inside `DIR/data/`.
pub(crate) fn data_file_name(n: u32) -> String {
    format!("{n:08}.blk")
}

/// Parses a data file name back to its number.
pub(crate) fn parse_data_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".blk")?;
    if digits.len() != 8 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_header_round_trip_and_damage() {
        let mut h = encode_file_header(7);
        assert_eq!(&h[..8], b"FOSSADAT");
        assert_eq!(decode_file_header(&h), Ok(7));
        h[13] ^= 1;
        assert!(decode_file_header(&h).is_err());
    }

    #[test]
    fn record_header_round_trip_and_damage() {
        let id = BlockId::of(b"x");
        let mut h = encode_record_header(1234, &id);
        assert_eq!(decode_record_header(&h), Ok(RecordHeader { len: 1234, id }));
        h[20] ^= 0x80;
        assert!(decode_record_header(&h).is_err());
        assert!(decode_record_header(&[0u8; 48]).is_err());
    }

    #[test]
    fn entry_round_trip() {
        let e = Entry {
            file: 3,
            offset: 1 << 40,
            len: 99,
            class: Class::Cached,
            pinned: true,
            hits: 5,
        };
        assert_eq!(decode_entry(&encode_entry(&e)), Ok(e));
        let mut b = encode_entry(&e);
        b[16] = 9;
        assert!(decode_entry(&b).is_err());
    }

    #[test]
    fn entry_whose_record_would_end_past_u64_is_refused() {
        let mut b = encode_entry(&Entry {
            file: 1,
            offset: u64::MAX - RECORD_HEADER_LEN - 10,
            len: 10,
            class: Class::Own,
            pinned: false,
            hits: 0,
        });
        assert!(decode_entry(&b).is_ok());
        b[12] = 11;
        assert!(decode_entry(&b).is_err());
    }

    #[test]
    fn file_names() {
        assert_eq!(data_file_name(12), "00000012.blk");
        assert_eq!(parse_data_file_name("00000012.blk"), Some(12));
        assert_eq!(parse_data_file_name("12.blk"), None);
        assert_eq!(parse_data_file_name("0000001x.blk"), None);
    }

    /// Golden bytes (`tests/fixtures/format-v1/`): the committed encodings decode to the values
    /// they were made from and re-encode identically, so a format change cannot slip in.
    #[test]
    fn golden_bytes() {
        let h = encode_file_header(7);
        crate::golden::check("blockstore-file-header", &h);
        assert_eq!(decode_file_header(&h), Ok(7));

        let id = BlockId::of(b"golden block");
        let r = encode_record_header(1234, &id);
        crate::golden::check("blockstore-record-header", &r);
        assert_eq!(decode_record_header(&r), Ok(RecordHeader { len: 1234, id }));

        let e = Entry {
            file: 3,
            offset: 0x0102_0304_0506,
            len: 99,
            class: Class::Cached,
            pinned: true,
            hits: 5,
        };
        let b = encode_entry(&e);
        crate::golden::check("blockstore-index-entry", &b);
        assert_eq!(decode_entry(&b), Ok(e));
    }
}
