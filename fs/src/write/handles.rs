//! Open files and their handles, and the file data path: buffered writes, and reads that
//! overlay stored content, the buffer being flushed in the background (if any) and the current
//! buffer, in that order. Flushing lives in `writeback`.
use super::State;
use super::writeback::{self, Flight, Guard, Spawn};
use crate::FsError;
use crate::attr::{FileKind, Ino, OpenFlags};
use crate::file::{ContentEngine, FileContent, WriteBuffer};
use blockstore::BlockId;
use parking_lot::Condvar;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

/// Recycled buffer allocations kept: one filling while one is in flight.
const SPARES: usize = 2;
/// Smaller allocations are cheap to make anew.
const SPARE_MIN: usize = 1 << 20;
/// Larger ones (scattered writes) are returned to the allocator.
const SPARE_MAX: usize = 64 << 20;

/// An open regular file: writes not yet in blocks and the logical size.
pub(crate) struct OpenFile {
    pub(crate) buf: WriteBuffer,
    pub(crate) size: u64,
    opens: u32,
}

/// Open files by inode and handles by number, updates in flight and their failures.
#[derive(Default)]
pub(crate) struct Files {
    pub(crate) open: HashMap<Ino, OpenFile>,
    handles: HashMap<u64, (Ino, OpenFlags)>,
    next_fh: u64,
    /// Bytes buffered across all files, in-flight buffers included.
    pub(crate) buffered: usize,
    /// At most one content update per inode runs outside the state lock.
    pub(crate) flights: HashMap<Ino, Flight>,
    /// Failures of background updates, reported by the file's next write/flush/fsync.
    pub(crate) errors: HashMap<Ino, FsError>,
    /// Signalled whenever a flight lands.
    pub(crate) landed: Arc<Condvar>,
    /// Threads waiting for a file's flights to end, by inode (`writeback::wait_flight`).
    pub(crate) flush_waiters: HashMap<Ino, u32>,
    /// Allocations of landed flights, reused by the next buffers (see `WriteBuffer::give_spare`).
    spares: Vec<Vec<u8>>,
}

impl Files {
    /// Whether `ino` has an open handle.
    pub(crate) fn is_open(&self, ino: Ino) -> bool {
        self.open.contains_key(&ino)
    }

    /// The logical size of an open file or of one being resized in flight.
    pub(crate) fn size(&self, ino: Ino) -> Option<u64> {
        let open = self.open.get(&ino).map(|f| f.size);
        open.or_else(|| self.flights.get(&ino).map(|f| f.size))
    }

    /// The inode and flags of handle `fh`, checked against `ino`.
    pub(crate) fn handle(&self, ino: Ino, fh: u64) -> Result<OpenFlags, FsError> {
        match self.handles.get(&fh) {
            Some((i, f)) if *i == ino => Ok(*f),
            _ => Err(FsError::BadHandle(fh)),
        }
    }

    /// Inodes with buffered writes or an update in flight.
    pub(crate) fn dirty(&self) -> Vec<Ino> {
        let buffered = self.open.iter().filter(|(_, f)| !f.buf.is_empty());
        let mut v: Vec<Ino> = buffered.map(|(i, _)| *i).collect();
        v.extend(self.flights.keys().filter(|i| !self.open_dirty(**i)));
        v
    }

    fn open_dirty(&self, ino: Ino) -> bool {
        self.open.get(&ino).is_some_and(|f| !f.buf.is_empty())
    }

    /// Keeps the allocation of a landed flight's buffer for the next buffer, if nobody else
    /// holds the buffer and it is worth keeping.
    pub(crate) fn recycle(&mut self, buf: Arc<WriteBuffer>) {
        if let Ok(b) = Arc::try_unwrap(buf) {
            let v = b.into_spare();
            let keep = (SPARE_MIN..=SPARE_MAX).contains(&v.capacity());
            if keep && self.spares.len() < SPARES {
                self.spares.push(v);
            }
        }
    }

    /// A background failure of `ino` not yet reported (reported once).
    pub(crate) fn take_error(&mut self, ino: Ino) -> Result<(), FsError> {
        self.errors.remove(&ino).map_or(Ok(()), Err)
    }
}

/// Logical size of `ino`: stored content plus buffered writes.
pub(crate) fn size_of(st: &mut State, ino: Ino) -> Result<u64, FsError> {
    match st.files.size(ino) {
        Some(s) => Ok(s),
        None => Ok(st.inode(ino)?.stored_size()),
    }
}

/// Opens a handle on regular file `ino`.
pub(crate) fn open(st: &mut State, ino: Ino, flags: OpenFlags) -> Result<u64, FsError> {
    let i = st.inode(ino)?;
    match i.kind {
        FileKind::File => {}
        FileKind::Dir => return Err(FsError::IsDir),
        _ => return Err(FsError::NotSupported),
    }
    let stored = i.content.size;
    let f = &mut st.files;
    let size = f.flights.get(&ino).map_or(stored, |fl| fl.size);
    let of = f.open.entry(ino).or_insert(OpenFile {
        buf: WriteBuffer::new(),
        size,
        opens: 0,
    });
    of.opens += 1;
    f.next_fh += 1;
    f.handles.insert(f.next_fh, (ino, flags));
    Ok(f.next_fh)
}

/// Closes handle `fh`; returns whether it was the file's last. Callers flush first, so no
/// update of `ino` is in flight.
pub(crate) fn close(st: &mut State, ino: Ino, fh: u64) -> Result<bool, FsError> {
    st.files.handle(ino, fh)?;
    st.files.handles.remove(&fh);
    let Some(of) = st.files.open.get_mut(&ino) else {
        return Ok(true);
    };
    of.opens -= 1;
    if of.opens > 0 {
        return Ok(false);
    }
    if let Some(of) = st.files.open.remove(&ino) {
        st.files.buffered -= of.buf.bytes();
    }
    Ok(true)
}

/// Buffers a write (at the end for append handles); starts a background flush when the
/// buffer is due, waiting first for the file's previous one (back-pressure).
pub(crate) fn write(
    st: &mut Guard<'_>,
    (ino, fh): (Ino, u64),
    off: u64,
    data: &[u8],
    limits: (usize, usize),
    spawn: Spawn<'_>,
) -> Result<(), FsError> {
    let flags = st.files.handle(ino, fh)?;
    st.files.take_error(ino)?;
    let f = &mut st.files;
    let of = f.open.get_mut(&ino).ok_or(FsError::BadHandle(fh))?;
    if of.buf.is_empty()
        && !of.buf.has_spare()
        && let Some(v) = f.spares.pop()
    {
        of.buf.give_spare(v);
    }
    let off = if flags.append { of.size } else { off };
    let end = off.checked_add(data.len() as u64).ok_or(FsError::TooBig)?;
    let before = of.buf.bytes();
    of.buf.write(off, data);
    of.size = of.size.max(end);
    let (after, due) = (of.buf.bytes(), writeback::wants_flush(&of.buf, limits));
    st.files.buffered = st.files.buffered + after - before;
    st.inode_mut(ino)?.touch_mtime(SystemTime::now());
    st.feed.writing(ino);
    if due && !runs_ahead(st, ino, limits.0) && writeback::buffer_due(st, ino, limits) {
        writeback::start(st, ino, spawn)?;
    }
    writeback::relieve(st, limits.1, spawn)
}

/// Whether a due buffer may keep filling because the file's previous flight is still running:
/// the writeback thread starts it as soon as that one lands, so the writer goes on instead of
/// idling until then. Up to twice the per-file limit; beyond that the writer waits for the
/// landing (back-pressure), after which the buffer has either taken off or is started here.
/// While another thread waits for the file's flights to end, the writer leaves the buffer to
/// it instead of starting a flight that would keep it waiting.
fn runs_ahead(st: &mut Guard<'_>, ino: Ino, file_limit: usize) -> bool {
    let buffered = |st: &Guard<'_>| st.files.open.get(&ino).map_or(0, |of| of.buf.bytes());
    loop {
        let flying = st.files.flights.contains_key(&ino);
        if flying && buffered(st) < 2 * file_limit {
            return true;
        }
        if !flying && !st.files.flush_waiters.contains_key(&ino) {
            return false;
        }
        let cv = st.files.landed.clone();
        cv.wait(st);
    }
}

/// What a read needs, taken under the state lock so that the content I/O can run without
/// it: the stored content (valid up to `stored_end`), the byte count, and a copy of the
/// buffered writes in range.
pub(crate) struct ReadPlan {
    content: FileContent,
    stored_end: u64,
    off: u64,
    n: usize,
    overlay: WriteBuffer,
}

/// Copies the bytes of `buf` within `from..to` into `out`.
fn copy_range(buf: &WriteBuffer, from: u64, to: u64, out: &mut WriteBuffer) {
    for (o, d) in buf.extents() {
        let (a, b) = (o.max(from), (o + d.len() as u64).min(to));
        if a < b {
            out.write(a, &d[(a - o) as usize..(b - o) as usize]);
        }
    }
}

/// Plans a read of up to `len` bytes at `off`.
pub(crate) fn plan_read(
    st: &mut State,
    ino: Ino,
    off: u64,
    len: usize,
) -> Result<ReadPlan, FsError> {
    let size = size_of(st, ino)?;
    let n = (len as u64).min(size.saturating_sub(off)) as usize;
    let content = st.inode(ino)?.content;
    let mut overlay = WriteBuffer::new();
    let end = off + n as u64;
    let mut stored_end = content.size;
    // Older bytes first: the in-flight buffer (which also fixes the size the stored content
    // is being cut to), then the current buffer.
    if let Some(fl) = st.files.flights.get(&ino) {
        stored_end = stored_end.min(fl.size);
        copy_range(&fl.buf, off, end.min(fl.size), &mut overlay);
    }
    if let Some(of) = st.files.open.get(&ino) {
        copy_range(&of.buf, off, end, &mut overlay);
    }
    Ok(ReadPlan {
        content,
        stored_end,
        off,
        n,
        overlay,
    })
}

/// Blocks the planned read needs that are not at hand (see `ContentEngine::missing_for_read`).
pub(crate) fn read_missing(eng: &ContentEngine, p: &ReadPlan) -> Result<Vec<BlockId>, FsError> {
    let stored = (p.n as u64).min(p.stored_end.saturating_sub(p.off)) as usize;
    eng.missing_for_read(&p.content, p.off, stored)
}

/// Carries out a planned read (holes and the unstored tail read as zeros).
pub(crate) fn read(eng: &ContentEngine, p: &ReadPlan) -> Result<Vec<u8>, FsError> {
    if p.n == 0 {
        return Ok(Vec::new());
    }
    let stored = (p.n as u64).min(p.stored_end.saturating_sub(p.off)) as usize;
    let mut out = match stored {
        0 => Vec::new(),
        _ => eng.read(&p.content, p.off, stored)?,
    };
    out.resize(p.n, 0);
    p.overlay.overlay(p.off, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn landed_buffers_lend_their_allocation_to_the_next() {
        let mut f = Files::default();
        let mut b = WriteBuffer::new();
        b.write(0, &vec![1; 2 << 20]);
        f.recycle(Arc::new(b));
        assert_eq!(f.spares.len(), 1);
        // A buffer a reader still holds is left alone; tiny ones are not kept.
        let held = Arc::new(WriteBuffer::new());
        f.recycle(held.clone());
        let mut tiny = WriteBuffer::new();
        tiny.write(0, &[1; 10]);
        f.recycle(Arc::new(tiny));
        assert_eq!(f.spares.len(), 1);
        let mut next = WriteBuffer::new();
        next.give_spare(f.spares.pop().unwrap());
        assert!(next.has_spare());
        next.write(5, &[2; 10]);
        assert!(!next.has_spare(), "the new extent took the spare");
        let mut out = [0u8; 20];
        next.overlay(0, &mut out);
        assert_eq!(out, [[0; 5], [2; 5], [2; 5], [0; 5]].concat()[..]);
        assert!(next.into_spare().capacity() >= 2 << 20);
    }

    #[test]
    fn merge_under_keeps_newer_bytes_on_top() {
        let mut older = WriteBuffer::new();
        older.write(0, &[1; 10]);
        older.write(20, &[1; 10]);
        let mut newer = WriteBuffer::new();
        newer.write(5, &[2; 20]);
        newer.merge_under(&older);
        let mut out = [0u8; 30];
        newer.overlay(0, &mut out);
        let want: Vec<u8> = [[1; 5], [2; 5], [2; 5], [2; 5], [2; 5], [1; 5]].concat();
        assert_eq!(out.to_vec(), want);
        assert_eq!(newer.bytes(), 30);
        assert_eq!(newer.extent_count(), 1);
    }
}
