//! Open files and their handles, and the file data path: buffered writes, reads that overlay
//! the buffer on stored content, flushes of the buffer into blocks.
use crate::FsError;
use crate::attr::{FileKind, Ino, OpenFlags};
use crate::cache::State;
use crate::file::{ContentEngine, FileContent, WriteBuffer};
use std::collections::HashMap;
use std::time::SystemTime;

/// An open regular file: writes not yet in blocks and the logical size.
struct OpenFile {
    buf: WriteBuffer,
    size: u64,
    opens: u32,
}

/// Open files by inode and handles by number.
#[derive(Default)]
pub(crate) struct Files {
    open: HashMap<Ino, OpenFile>,
    handles: HashMap<u64, (Ino, OpenFlags)>,
    next_fh: u64,
    /// Bytes buffered across all files.
    buffered: usize,
}

impl Files {
    /// Whether `ino` has an open handle.
    pub(crate) fn is_open(&self, ino: Ino) -> bool {
        self.open.contains_key(&ino)
    }

    /// The logical size of an open file.
    pub(crate) fn size(&self, ino: Ino) -> Option<u64> {
        self.open.get(&ino).map(|f| f.size)
    }

    /// The inode and flags of handle `fh`, checked against `ino`.
    pub(crate) fn handle(&self, ino: Ino, fh: u64) -> Result<OpenFlags, FsError> {
        match self.handles.get(&fh) {
            Some((i, f)) if *i == ino => Ok(*f),
            _ => Err(FsError::BadHandle(fh)),
        }
    }

    /// Inodes with buffered writes.
    pub(crate) fn dirty(&self) -> Vec<Ino> {
        self.open
            .iter()
            .filter(|(_, f)| !f.buf.is_empty())
            .map(|(i, _)| *i)
            .collect()
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
    let size = i.content.size;
    let f = &mut st.files;
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

/// Closes handle `fh`; returns whether it was the file's last.
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

/// Moves the buffered writes of `ino` into blocks, resizing to `new_size` if given.
pub(crate) fn flush_data(
    eng: &ContentEngine,
    st: &mut State,
    ino: Ino,
    new_size: Option<u64>,
) -> Result<(), FsError> {
    let c = st.inode(ino)?.content;
    let empty = WriteBuffer::new();
    let (buf, size) = match st.files.open.get(&ino) {
        Some(of) => (&of.buf, new_size.unwrap_or(of.size)),
        None => (&empty, new_size.unwrap_or(c.size)),
    };
    if buf.is_empty() && size == c.size {
        return Ok(());
    }
    let nc = eng.update(&c, size, buf)?;
    if let Some(of) = st.files.open.get_mut(&ino) {
        st.files.buffered -= of.buf.bytes();
        of.buf = WriteBuffer::new();
        of.size = size;
    }
    st.inode_mut(ino)?.content = nc;
    Ok(())
}

/// Buffers a write; returns the offset written at (the end for append handles).
pub(crate) fn write(
    eng: &ContentEngine,
    st: &mut State,
    (ino, fh): (Ino, u64),
    off: u64,
    data: &[u8],
    limits: (usize, usize),
) -> Result<(), FsError> {
    let flags = st.files.handle(ino, fh)?;
    let of = st.files.open.get_mut(&ino).ok_or(FsError::BadHandle(fh))?;
    let off = if flags.append { of.size } else { off };
    let end = off.checked_add(data.len() as u64).ok_or(FsError::TooBig)?;
    let before = of.buf.bytes();
    of.buf.write(off, data);
    of.size = of.size.max(end);
    let (after, size) = (of.buf.bytes(), of.size);
    st.files.buffered = st.files.buffered + after - before;
    st.inode_mut(ino)?.touch_mtime(SystemTime::now());
    if after > limits.0 {
        flush_data(eng, st, ino, Some(size))?;
    }
    if st.files.buffered > limits.1 {
        for i in st.files.dirty() {
            flush_data(eng, st, i, None)?;
        }
    }
    Ok(())
}

/// What a read needs, taken under the state lock so that the content I/O can run without
/// it: the stored content, the byte count, and a copy of the buffered writes in range.
pub(crate) struct ReadPlan {
    content: FileContent,
    off: u64,
    n: usize,
    overlay: WriteBuffer,
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
    if let Some(of) = st.files.open.get(&ino) {
        for (o, d) in of.buf.extents() {
            let (from, to) = (o.max(off), (o + d.len() as u64).min(end));
            if from < to {
                overlay.write(from, &d[(from - o) as usize..(to - o) as usize]);
            }
        }
    }
    Ok(ReadPlan {
        content,
        off,
        n,
        overlay,
    })
}

/// Carries out a planned read (holes and the unstored tail read as zeros).
pub(crate) fn read(eng: &ContentEngine, p: &ReadPlan) -> Result<Vec<u8>, FsError> {
    if p.n == 0 {
        return Ok(Vec::new());
    }
    let mut out = eng.read(&p.content, p.off, p.n)?;
    out.resize(p.n, 0);
    p.overlay.overlay(p.off, &mut out);
    Ok(out)
}
