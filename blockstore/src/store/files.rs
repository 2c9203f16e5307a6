//! Data files at open: header checks, roll-forward of uncommitted tails, orphans.
use super::tail::{Tail, cut, roll_forward, scan_tail};
use super::writer::open_rw;
use crate::error::io_error;
use crate::format::{FILE_HEADER_LEN, data_file_name, decode_file_header, parse_data_file_name};
use crate::{BadFile, StoreError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// The data files found at open.
pub(super) struct DataFiles {
    /// Open handles of every usable file, committed or orphan.
    pub(super) handles: HashMap<u32, Arc<File>>,
    /// Files on disk that the index does not know (left alone until fsck repair adopts them).
    pub(super) orphans: BTreeSet<u32>,
    /// One past the highest file number seen anywhere.
    pub(super) next_file: u32,
    /// Intact records past the committed length of committed files, and of files newer
    /// than every committed one (created after the last commit; adopted when they hold any).
    pub(super) tails: Vec<Tail>,
}

/// Lists `NNNNNNNN.blk` files in `data_dir`.
fn list(data_dir: &Path) -> Result<Vec<u32>, StoreError> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(data_dir).map_err(|e| io_error(data_dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| io_error(data_dir, e))?;
        if let Some(n) = ent.file_name().to_str().and_then(parse_data_file_name) {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Whether `data_dir` holds any data file.
pub(super) fn has_data_files(data_dir: &Path) -> Result<bool, StoreError> {
    Ok(!list(data_dir)?.is_empty())
}

/// Reads and checks the header of data file `n`.
pub(super) fn check_header(path: &Path, file: &File, n: u32) -> Result<(), StoreError> {
    let mut h = [0u8; FILE_HEADER_LEN as usize];
    let bad = |fault| StoreError::Format {
        path: path.to_owned(),
        fault,
    };
    match file.read_exact_at(&mut h, 0) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(bad(BadFile::ShortHeader));
        }
        Err(e) => return Err(io_error(path, e)),
    }
    match decode_file_header(&h) {
        Ok(claimed) if claimed == n => Ok(()),
        Ok(claimed) => Err(bad(BadFile::NumberMismatch {
            in_header: claimed,
            in_name: n,
        })),
        Err(reason) => Err(bad(BadFile::Header(reason))),
    }
}

/// Opens every data file: committed ones are checked (a bad header is a
/// [`StoreError::Format`]) and rolled forward (`tail`); unknown ones newer than every
/// committed file are rolled forward if they hold intact records, other unknown ones become
/// orphans, never written or deleted here. Without an index (`had_index` false) every
/// unknown file is an orphan.
pub(super) fn open_data_files(
    data_dir: &Path,
    file_lens: &BTreeMap<u32, u64>,
    had_index: bool,
) -> Result<DataFiles, StoreError> {
    let on_disk = list(data_dir)?;
    let mut out = DataFiles {
        handles: HashMap::new(),
        orphans: BTreeSet::new(),
        next_file: 0,
        tails: Vec::new(),
    };
    let newest_committed = file_lens.last_key_value().map(|(n, _)| *n);
    for &n in &on_disk {
        out.next_file = out.next_file.max(n.saturating_add(1));
        let path = data_dir.join(data_file_name(n));
        let file = open_rw(&path, false)?;
        match file_lens.get(&n) {
            Some(&committed) => {
                check_header(&path, &file, n)?;
                out.tails.push(roll_forward(&path, &file, n, committed)?);
            }
            None => match check_header(&path, &file, n) {
                Ok(()) if had_index && newest_committed.is_none_or(|c| n > c) => {
                    let tail = scan_tail(&path, &file, n, 0)?;
                    if tail.records.is_empty() {
                        out.orphans.insert(n);
                    } else {
                        cut(&path, &file, &tail)?;
                        out.tails.push(tail);
                    }
                }
                Ok(()) => {
                    tracing::warn!(file = %path.display(), "data file not in the index; fsck --repair adopts it");
                    out.orphans.insert(n);
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "ignoring unindexed data file");
                    continue;
                }
            },
        }
        out.handles.insert(n, Arc::new(file));
    }
    for (&n, _) in file_lens
        .iter()
        .filter(|(n, _)| !out.handles.contains_key(n))
    {
        tracing::error!(file = n, "committed data file is missing; run fsck");
        out.next_file = out.next_file.max(n.saturating_add(1));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::encode_file_header;

    #[test]
    fn orphans_are_kept_and_committed_tails_cut() {
        let tmp = tempfile::tempdir().unwrap();
        let mut f0 = encode_file_header(0).to_vec();
        f0.extend_from_slice(&[5u8; 100]);
        std::fs::write(tmp.path().join("00000000.blk"), &f0).unwrap();
        std::fs::write(tmp.path().join("00000004.blk"), encode_file_header(4)).unwrap();
        std::fs::write(tmp.path().join("00000007.blk"), b"junk").unwrap();
        std::fs::write(tmp.path().join("notes.txt"), b"ignored").unwrap();
        let lens = BTreeMap::from([(0, 40)]);
        let files = open_data_files(tmp.path(), &lens, true).unwrap();
        assert_eq!(
            std::fs::metadata(tmp.path().join("00000000.blk"))
                .unwrap()
                .len(),
            40
        );
        assert_eq!(files.orphans, BTreeSet::from([4]));
        assert!(!files.handles.contains_key(&7));
        assert_eq!(files.next_file, 8);
        assert!(
            tmp.path().join("00000007.blk").exists(),
            "unknown files are never deleted"
        );
    }

    #[test]
    fn committed_file_with_wrong_number_is_a_format_error() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("00000001.blk"), encode_file_header(2)).unwrap();
        let lens = BTreeMap::from([(1, 32)]);
        let err = open_data_files(tmp.path(), &lens, true).err();
        assert!(matches!(err, Some(StoreError::Format { .. })));
    }
}
