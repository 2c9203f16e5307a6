//! Appending records to the active data file through a buffer.
//!
//! Writes use `pwrite` at explicit offsets so the same `File` handle serves concurrent
//! `pread`s. [`FlushMark`] publishes how much of the active file the OS has, so readers know
//! when a record still sits in the buffer.
use crate::error::io_error;
use crate::format::{
    FILE_HEADER_LEN, RECORD_HEADER_LEN, data_file_name, encode_file_header, encode_record_header,
};
use crate::{BlockId, StoreError};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Records smaller than this are copied into the buffer; larger ones are written directly.
const BUF_CAP: usize = 256 << 10;

/// The active file number and how many of its bytes have been handed to the OS.
///
/// At a roll the old file is flushed completely before `file` changes, so a reader that
/// loads `file` and then `flushed` never sees a too-large value for the record's file.
pub(super) struct FlushMark {
    file: AtomicU32,
    flushed: AtomicU64,
}

impl FlushMark {
    /// A mark for a store without an active file.
    pub(super) fn new() -> Self {
        FlushMark {
            file: AtomicU32::new(u32::MAX),
            flushed: AtomicU64::new(0),
        }
    }

    /// Whether bytes `[.., end)` of `file` may still be in the writer's buffer.
    pub(super) fn maybe_buffered(&self, file: u32, end: u64) -> bool {
        self.file.load(Ordering::SeqCst) == file && self.flushed.load(Ordering::SeqCst) < end
    }

    fn publish(&self, file: u32, flushed: u64) {
        self.file.store(file, Ordering::SeqCst);
        self.flushed.store(flushed, Ordering::SeqCst);
    }
}

/// The active data file.
pub(super) struct Writer {
    file_no: u32,
    path: PathBuf,
    file: Arc<File>,
    buf: Vec<u8>,
    /// Logical end of the file, buffer included.
    len: u64,
    /// Bytes written to the OS.
    flushed: u64,
    /// `flushed` when the last early sync was asked for.
    kicked: u64,
}

/// Opens a data file for reading and writing.
pub(super) fn open_rw(path: &Path, create: bool) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(create)
        .open(path)
        .map_err(|e| io_error(path, e))
}

impl Writer {
    /// Continues an existing file whose valid length is `len`.
    pub(super) fn resume(
        path: PathBuf,
        file_no: u32,
        file: Arc<File>,
        len: u64,
        mark: &FlushMark,
    ) -> Self {
        mark.publish(file_no, len);
        Writer {
            file_no,
            path,
            file,
            buf: Vec::with_capacity(BUF_CAP),
            len,
            flushed: len,
            kicked: len,
        }
    }

    /// Creates data file `file_no` in `data_dir` with its header.
    pub(super) fn create(
        data_dir: &Path,
        file_no: u32,
        mark: &FlushMark,
    ) -> Result<Self, StoreError> {
        let path = data_dir.join(data_file_name(file_no));
        let file = open_rw(&path, true)?;
        if let Err(e) = file.write_all_at(&encode_file_header(file_no), 0) {
            // Leave no half-made file behind; it would only be an orphan.
            let _ = std::fs::remove_file(&path);
            return Err(io_error(&path, e));
        }
        Ok(Self::resume(
            path,
            file_no,
            Arc::new(file),
            FILE_HEADER_LEN,
            mark,
        ))
    }

    /// Number of the file.
    pub(super) fn file_no(&self) -> u32 {
        self.file_no
    }

    /// The file's path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether another [`super::early::EARLY_SYNC_BYTES`] reached the OS since the last time
    /// this said so.
    pub(super) fn early_sync_due(&mut self) -> bool {
        let due = self.flushed >= self.kicked + super::early::EARLY_SYNC_BYTES;
        if due {
            self.kicked = self.flushed;
        }
        due
    }

    /// The shared handle.
    pub(super) fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Logical length, buffered bytes included.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Appends one record and returns its offset. On error nothing of the record is
    /// counted and everything appended before it is kept (still buffered or already handed
    /// to the OS), so a full disk costs only the failed put; a later flush retries.
    pub(super) fn append(
        &mut self,
        id: &BlockId,
        data: &[u8],
        mark: &FlushMark,
    ) -> Result<u64, StoreError> {
        let len = u32::try_from(data.len()).map_err(|_| StoreError::TooLarge(data.len()))?;
        let header = encode_record_header(len, id);
        let offset = self.len;
        let total = header.len() + data.len();
        if self.buf.len() + total > BUF_CAP {
            self.flush(mark)?;
        }
        if total >= BUF_CAP {
            if let Err(e) = self
                .write_direct(&header, offset)
                .and_then(|()| self.write_direct(data, offset + RECORD_HEADER_LEN))
            {
                // Cut the partial record; the bytes before it are complete records.
                let _ = self.file.set_len(offset);
                return Err(e);
            }
            self.flushed = offset + total as u64;
            self.len = self.flushed;
            mark.publish(self.file_no, self.flushed);
        } else {
            self.buf.extend_from_slice(&header);
            self.buf.extend_from_slice(data);
            self.len += total as u64;
        }
        Ok(offset)
    }

    fn write_direct(&self, bytes: &[u8], at: u64) -> Result<(), StoreError> {
        self.file
            .write_all_at(bytes, at)
            .map_err(|e| io_error(&self.path, e))
    }

    /// The bytes at `offset..offset + len` if they are still in the buffer.
    pub(super) fn buffered(&self, offset: u64, len: u32) -> Option<&[u8]> {
        let start = usize::try_from(offset.checked_sub(self.flushed)?).ok()?;
        self.buf.get(start..start.checked_add(len as usize)?)
    }

    /// Hands buffered bytes to the OS. On failure the buffer is kept whole: its records stay
    /// readable and the next flush rewrites them at the same offsets.
    pub(super) fn flush(&mut self, mark: &FlushMark) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.write_direct(&self.buf, self.flushed)?;
        self.flushed = self.len;
        self.buf.clear();
        mark.publish(self.file_no, self.flushed);
        Ok(())
    }

    /// Flushes and fsyncs.
    pub(super) fn sync(&mut self, mark: &FlushMark) -> Result<(), StoreError> {
        self.flush(mark)?;
        self.file.sync_data().map_err(|e| io_error(&self.path, e))
    }

    /// Drops everything past `len` (a rollback to the last commit).
    pub(super) fn truncate(&mut self, len: u64, mark: &FlushMark) -> Result<(), StoreError> {
        self.buf.clear();
        self.len = len;
        self.flushed = len;
        mark.publish(self.file_no, len);
        self.file.set_len(len).map_err(|e| io_error(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{decode_file_header, decode_record_header};

    #[test]
    fn small_records_are_buffered_large_ones_written_through() {
        let tmp = tempfile::tempdir().unwrap();
        let mark = FlushMark::new();
        let mut w = Writer::create(tmp.path(), 3, &mark).unwrap();
        let small = vec![7u8; 1000];
        let at = w.append(&BlockId::of(&small), &small, &mark).unwrap();
        assert_eq!(at, FILE_HEADER_LEN);
        assert!(mark.maybe_buffered(3, at + RECORD_HEADER_LEN + 1000));
        let big = vec![9u8; BUF_CAP];
        let at2 = w.append(&BlockId::of(&big), &big, &mark).unwrap();
        assert_eq!(at2, at + RECORD_HEADER_LEN + 1000);
        assert!(!mark.maybe_buffered(3, w.len()));
        let bytes = std::fs::read(tmp.path().join("00000003.blk")).unwrap();
        assert_eq!(bytes.len() as u64, w.len());
        let mut fh = [0u8; FILE_HEADER_LEN as usize];
        fh.copy_from_slice(&bytes[..32]);
        assert_eq!(decode_file_header(&fh), Ok(3));
        let mut rh = [0u8; RECORD_HEADER_LEN as usize];
        rh.copy_from_slice(&bytes[at2 as usize..at2 as usize + 48]);
        assert_eq!(decode_record_header(&rh).unwrap().id, BlockId::of(&big));
    }

    #[test]
    fn truncate_drops_buffer_and_tail() {
        let tmp = tempfile::tempdir().unwrap();
        let mark = FlushMark::new();
        let mut w = Writer::create(tmp.path(), 0, &mark).unwrap();
        let data = vec![1u8; 100];
        w.append(&BlockId::of(&data), &data, &mark).unwrap();
        w.sync(&mark).unwrap();
        let keep = w.len();
        w.append(&BlockId::of(b"x"), b"x", &mark).unwrap();
        w.truncate(keep, &mark).unwrap();
        w.flush(&mark).unwrap();
        assert_eq!(
            std::fs::metadata(tmp.path().join("00000000.blk"))
                .unwrap()
                .len(),
            keep
        );
        assert!(
            Writer::create(tmp.path(), 0, &mark).is_err(),
            "never overwrite a file"
        );
    }
}
