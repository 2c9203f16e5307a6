//! Roll-forward at open: intact records appended after the last commit are kept.
//!
//! Every record names the BLAKE3 of its bytes, so a record past the committed length whose
//! header checks and whose bytes hash to its id is exactly what was put, whether the process
//! died before the commit (the OS kept the bytes) or a `sync(1)` wrote them out before a
//! power loss. The scan stops at the first damaged header, short record or mismatching hash
//! (a torn tail); everything from there on is cut off.
use crate::error::io_error;
use crate::format::{FILE_HEADER_LEN, RECORD_HEADER_LEN, decode_record_header};
use crate::{BlockId, StoreError};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// An intact record past the committed length.
pub(super) struct TailRecord {
    pub(super) id: BlockId,
    /// Offset of the record header.
    pub(super) offset: u64,
    pub(super) len: u32,
}

/// The intact records of one data file past its committed length.
pub(super) struct Tail {
    pub(super) file: u32,
    /// End of the last intact record (the file is cut here).
    pub(super) end: u64,
    pub(super) records: Vec<TailRecord>,
}

/// Reads `file` record by record from `from` (a record boundary), stopping at the first
/// record that is not intact. Changes nothing on disk.
pub(super) fn scan_tail(path: &Path, file: &File, n: u32, from: u64) -> Result<Tail, StoreError> {
    let actual = file.metadata().map_err(|e| io_error(path, e))?.len();
    let mut tail = Tail {
        file: n,
        end: from.max(FILE_HEADER_LEN),
        records: Vec::new(),
    };
    if actual > tail.end {
        scan(path, file, &mut tail)?;
    }
    Ok(tail)
}

/// Cuts `file` after its intact tail: what follows was never completely written.
pub(super) fn cut(path: &Path, file: &File, tail: &Tail) -> Result<(), StoreError> {
    let actual = file.metadata().map_err(|e| io_error(path, e))?.len();
    if actual > tail.end {
        tracing::warn!(
            file = %path.display(), kept = tail.end, actual,
            "cutting the torn tail of a data file"
        );
        file.set_len(tail.end).map_err(|e| io_error(path, e))?;
        file.sync_all().map_err(|e| io_error(path, e))?;
    } else if actual < tail.end {
        tracing::error!(
            file = %path.display(), committed = tail.end, actual,
            "data file is shorter than committed; run fsck"
        );
    }
    if !tail.records.is_empty() {
        tracing::info!(
            file = %path.display(), blocks = tail.records.len(), end = tail.end,
            "kept blocks written after the last commit"
        );
    }
    Ok(())
}

/// [`scan_tail`] then [`cut`].
pub(super) fn roll_forward(
    path: &Path,
    file: &File,
    n: u32,
    from: u64,
) -> Result<Tail, StoreError> {
    let tail = scan_tail(path, file, n, from)?;
    cut(path, file, &tail)?;
    Ok(tail)
}

fn scan(path: &Path, file: &File, tail: &mut Tail) -> Result<(), StoreError> {
    let mut r = BufReader::with_capacity(1 << 20, file);
    r.seek(SeekFrom::Start(tail.end))
        .map_err(|e| io_error(path, e))?;
    let mut header = [0u8; RECORD_HEADER_LEN as usize];
    let mut data = Vec::new();
    loop {
        if r.read_exact(&mut header).is_err() {
            return Ok(());
        }
        let Ok(h) = decode_record_header(&header) else {
            return Ok(());
        };
        data.resize(h.len as usize, 0);
        if r.read_exact(&mut data).is_err() || BlockId::of(&data) != h.id {
            return Ok(());
        }
        tail.records.push(TailRecord {
            id: h.id,
            offset: tail.end,
            len: h.len,
        });
        tail.end += RECORD_HEADER_LEN + u64::from(h.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_file_header, encode_record_header};

    fn record(data: &[u8]) -> Vec<u8> {
        let mut r = encode_record_header(data.len() as u32, &BlockId::of(data)).to_vec();
        r.extend_from_slice(data);
        r
    }

    #[test]
    fn intact_records_are_kept_and_a_torn_one_cut() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("00000000.blk");
        let mut bytes = encode_file_header(0).to_vec();
        bytes.extend(record(b"committed"));
        let committed = bytes.len() as u64;
        bytes.extend(record(b"after the commit"));
        let end = bytes.len() as u64;
        let mut torn = record(b"torn record");
        torn.truncate(torn.len() - 3);
        bytes.extend(torn);
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let tail = roll_forward(&path, &file, 0, committed).unwrap();
        assert_eq!(tail.end, end);
        assert_eq!(tail.records.len(), 1);
        assert_eq!(tail.records[0].id, BlockId::of(b"after the commit"));
        assert_eq!(tail.records[0].offset, committed);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), end);
    }

    #[test]
    fn a_record_whose_bytes_do_not_match_its_id_ends_the_tail() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("00000000.blk");
        let mut bytes = encode_file_header(0).to_vec();
        let mut bad = record(b"flipped bytes");
        let last = bad.len() - 1;
        bad[last] ^= 1;
        bytes.extend(bad);
        bytes.extend(record(b"after the damage"));
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let tail = roll_forward(&path, &file, 0, FILE_HEADER_LEN).unwrap();
        assert!(tail.records.is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), FILE_HEADER_LEN);
    }
}
