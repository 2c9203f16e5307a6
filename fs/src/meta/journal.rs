//! The metadata journal, `DATA/meta.journal` (docs/formats/fs.md, "Journal").
//!
//! A soft commit (the close of a written file) appends the sealed records of the dirty
//! metadata, with the ids of the blocks put since the previous entry, and applies them to
//! `meta.redb` without durability. Nothing is synced: the entry survives the death of the
//! daemon (the OS has it) and a `sync(1)` makes it durable. At open, entries newer than the
//! database's `journal` mark are replayed in order, stopping at the first one that is torn
//! or names a block the store does not hold; a durable commit then records the highest
//! sequence number seen, so no entry is ever replayed twice or after one that was dropped.
use crate::FsError;
use blockstore::{BlockId, BlockStore};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

const MAGIC: [u8; 4] = *b"FJNL";
const VERSION: u8 = 1;
/// magic, version, 3 reserved, seq u64, body length u32.
const HEADER_LEN: usize = 20;
const CHECK_LEN: usize = 32;
/// Largest body accepted when reading (a bound, not a limit on what is written).
const MAX_BODY: usize = 1 << 30;

/// One sealed record to write (`Some`) or delete (`None`) in a metadata table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SealedOp {
    /// Table tag (`T_INODE`…).
    pub(crate) table: u8,
    pub(crate) key: Vec<u8>,
    pub(crate) value: Option<Vec<u8>>,
}

/// One journal entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    /// Blocks put since the previous entry; the entry is replayed only if all are stored.
    pub(crate) blocks: Vec<BlockId>,
    pub(crate) ops: Vec<SealedOp>,
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    // Bounded by the caller: keys are ≤ 40 bytes, values and counts far below 4 GiB.
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

/// Encodes `e` as it is appended to the journal.
pub(crate) fn encode(e: &Entry) -> Vec<u8> {
    let mut body = Vec::new();
    put_u32(&mut body, e.blocks.len());
    for id in &e.blocks {
        body.extend_from_slice(id.as_bytes());
    }
    put_u32(&mut body, e.ops.len());
    for op in &e.ops {
        body.push(op.table);
        body.push(u8::from(op.value.is_some()));
        put_u32(&mut body, op.key.len());
        body.extend_from_slice(&op.key);
        if let Some(v) = &op.value {
            put_u32(&mut body, v.len());
            body.extend_from_slice(v);
        }
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + CHECK_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[VERSION, 0, 0, 0]);
    out.extend_from_slice(&e.seq.to_le_bytes());
    put_u32(&mut out, body.len());
    out.extend_from_slice(&body);
    let check = blake3::hash(&out);
    out.extend_from_slice(check.as_bytes());
    out
}

/// A cursor over untrusted bytes; every read is bounds-checked.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Some(h)
    }
    fn u32(&mut self) -> Option<usize> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
}

fn decode_body(seq: u64, body: &[u8]) -> Option<Entry> {
    let mut r = Reader { b: body };
    let nb = r.u32()?;
    let mut blocks = Vec::with_capacity(nb.min(body.len() / 32));
    for _ in 0..nb {
        let mut id = [0u8; 32];
        id.copy_from_slice(r.take(32)?);
        blocks.push(BlockId(id));
    }
    let nops = r.u32()?;
    let mut ops = Vec::with_capacity(nops.min(body.len()));
    for _ in 0..nops {
        let table = r.u8()?;
        let put = match r.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let klen = r.u32()?;
        let key = r.take(klen)?.to_vec();
        let value = match put {
            true => {
                let vlen = r.u32()?;
                Some(r.take(vlen)?.to_vec())
            }
            false => None,
        };
        ops.push(SealedOp { table, key, value });
    }
    r.b.is_empty().then_some(Entry { seq, blocks, ops })
}

/// Decodes one entry at the start of `b`, with its encoded length; `None` if it is torn,
/// damaged or not an entry.
fn decode_one(b: &[u8]) -> Option<(Entry, usize)> {
    let h = b.get(..HEADER_LEN)?;
    if h[..4] != MAGIC || h[4] != VERSION {
        return None;
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&h[8..16]);
    let body_len = u32::from_le_bytes([h[16], h[17], h[18], h[19]]) as usize;
    if body_len > MAX_BODY {
        return None;
    }
    let total = HEADER_LEN + body_len + CHECK_LEN;
    let all = b.get(..total)?;
    let (signed, check) = all.split_at(HEADER_LEN + body_len);
    if blake3::hash(signed).as_bytes() != check {
        return None;
    }
    let e = decode_body(u64::from_le_bytes(seq), &signed[HEADER_LEN..])?;
    Some((e, total))
}

/// Every intact entry from the start of `b`, in order, up to the first damaged one.
pub(crate) fn decode_all(mut b: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    while let Some((e, n)) = decode_one(b) {
        out.push(e);
        b = &b[n..];
    }
    out
}

fn io(e: std::io::Error) -> FsError {
    let full = [rustix::io::Errno::NOSPC, rustix::io::Errno::DQUOT]
        .map(|n| Some(n.raw_os_error()))
        .contains(&e.raw_os_error());
    match full {
        true => FsError::NoSpace,
        false => FsError::Io(e),
    }
}

/// What to replay at open.
pub(crate) struct Replay {
    /// The operations of the entries to replay, in order.
    pub(crate) ops: Vec<SealedOp>,
    /// Entries replayed.
    pub(crate) entries: usize,
    /// Entries dropped (torn by a crash, or naming a block that did not survive it).
    pub(crate) dropped: usize,
    /// The highest sequence number seen: the database's new `journal` mark.
    pub(crate) through: u64,
}

/// The open journal file.
pub(crate) struct Journal {
    file: File,
    /// Bytes of intact entries written since the last reset.
    len: u64,
    /// Sequence number of the last entry written (or of the database's mark).
    last_seq: u64,
    /// Blocks of an entry that failed to be written, carried into the next one.
    carry: Vec<BlockId>,
}

impl Journal {
    /// Opens (creating) the journal at `path` and works out what to replay over a database
    /// whose mark is `through`. The file is left as it is until [`Journal::reset`].
    pub(crate) fn open(
        path: &Path,
        through: u64,
        store: &BlockStore,
    ) -> Result<(Self, Replay), FsError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let bytes = std::fs::read(path).map_err(io)?;
        let entries = decode_all(&bytes);
        let mut replay = Replay {
            ops: Vec::new(),
            entries: 0,
            dropped: 0,
            through,
        };
        let mut broken = false;
        for e in entries {
            replay.through = replay.through.max(e.seq);
            if e.seq <= through {
                continue;
            }
            broken = broken || !all_stored(store, &e.blocks)?;
            if broken {
                replay.dropped += 1;
                continue;
            }
            replay.entries += 1;
            replay.ops.extend(e.ops);
        }
        let j = Journal {
            file,
            len: bytes.len() as u64,
            last_seq: replay.through,
            carry: Vec::new(),
        };
        Ok((j, replay))
    }

    /// Whether entries were written since the last reset.
    pub(crate) fn is_dirty(&self) -> bool {
        self.len > 0
    }

    /// Sequence number of the last entry written.
    pub(crate) fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Appends an entry of `ops` depending on `blocks` (handed to the OS, not synced). On
    /// failure the file is cut back, the blocks carried into the next entry, and nothing
    /// else changes.
    pub(crate) fn append(
        &mut self,
        blocks: Vec<BlockId>,
        ops: Vec<SealedOp>,
    ) -> Result<(), FsError> {
        self.carry.extend(blocks);
        let e = Entry {
            seq: self.last_seq + 1,
            blocks: std::mem::take(&mut self.carry),
            ops,
        };
        let bytes = encode(&e);
        if let Err(err) = self.file.write_all_at(&bytes, self.len) {
            let _ = self.file.set_len(self.len);
            self.carry = e.blocks;
            return Err(io(err));
        }
        self.len += bytes.len() as u64;
        self.last_seq = e.seq;
        Ok(())
    }

    /// Empties the journal once a durable commit has recorded [`Journal::last_seq`]. Not
    /// synced: entries that come back after a crash are at or below the mark and skipped.
    pub(crate) fn reset(&mut self) -> Result<(), FsError> {
        self.file.set_len(0).map_err(io)?;
        self.len = 0;
        self.carry.clear();
        Ok(())
    }
}

fn all_stored(store: &BlockStore, ids: &[BlockId]) -> Result<bool, FsError> {
    for id in ids {
        if !store.has(id)? {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> Entry {
        Entry {
            seq,
            blocks: vec![BlockId([seq as u8; 32])],
            ops: vec![
                SealedOp {
                    table: 1,
                    key: 7u64.to_le_bytes().to_vec(),
                    value: Some(vec![1, 2, 3]),
                },
                SealedOp {
                    table: 2,
                    key: vec![9; 40],
                    value: None,
                },
            ],
        }
    }

    #[test]
    fn entries_round_trip_and_a_torn_tail_ends_them() {
        let mut bytes = encode(&entry(1));
        bytes.extend(encode(&entry(2)));
        let whole = bytes.len();
        bytes.extend(encode(&entry(3)));
        assert_eq!(decode_all(&bytes), vec![entry(1), entry(2), entry(3)]);
        assert_eq!(
            decode_all(&bytes[..bytes.len() - 1]),
            vec![entry(1), entry(2)]
        );
        let mut flipped = bytes.clone();
        flipped[whole - 40] ^= 1;
        assert_eq!(decode_all(&flipped), vec![entry(1)]);
        assert!(decode_all(&[0u8; 64]).is_empty());
    }
}
