//! The write room: open files, their buffered writes, and the flights that turn buffers into
//! blocks outside the state lock (`writeback`). The volume reaches file data only through the
//! functions re-exported here.
//!
//! [`State`] is what the one state lock guards: the metadata cache and the open files. It
//! dereferences to the metadata cache, so metadata operations read as before
//! (`st.inode(ino)`); open-file bookkeeping is `st.files`.
mod handles;
mod writeback;

pub(crate) use handles::{Files, ReadPlan, open, read, read_missing, size_of, write};
pub(crate) use writeback::{
    Guard, Job, Landing, flush_data, punch_data, spawn_thread, wait_flight,
};

use crate::FsError;
use crate::attr::Ino;
use crate::file::ContentEngine;
use crate::meta::cache::MetaCache;
use std::ops::{Deref, DerefMut};

/// Everything mutable about the volume, behind the one state lock.
pub(crate) struct State {
    meta: MetaCache,
    /// Open files and handles, buffers and flights.
    pub(crate) files: Files,
}

impl State {
    /// State over the metadata cache `meta`, with no file open.
    pub(crate) fn new(meta: MetaCache) -> Self {
        State {
            meta,
            files: Files::default(),
        }
    }
}

impl Deref for State {
    type Target = MetaCache;
    fn deref(&self) -> &MetaCache {
        &self.meta
    }
}

impl DerefMut for State {
    fn deref_mut(&mut self) -> &mut MetaCache {
        &mut self.meta
    }
}

/// Plans a read of `len` bytes at `off` of file `ino` through handle `fh`: what the file holds
/// now (stored content, the buffer in flight, the current buffer). The content I/O then runs
/// outside the state lock ([`read`], [`read_missing`]).
pub(crate) fn plan(
    st: &mut State,
    (ino, fh): (Ino, u64),
    off: u64,
    len: usize,
) -> Result<ReadPlan, FsError> {
    st.files.handle(ino, fh)?;
    handles::plan_read(st, ino, off, len)
}

/// Waits for the file's flight to land and reports (once) a background flush of it that
/// failed; checks handle `fh` first when given.
pub(crate) fn settle(st: &mut Guard<'_>, ino: Ino, fh: Option<u64>) -> Result<(), FsError> {
    if let Some(fh) = fh {
        st.files.handle(ino, fh)?;
    }
    wait_flight(st, ino);
    st.files.take_error(ino)
}

/// The file's data and the metadata reaching it are durable (fsync): tells the change feed.
pub(crate) fn synced(st: &mut State, ino: Ino) {
    st.feed.settled(ino);
}

/// Closes handle `fh` after moving the file's buffer into blocks. True when it was the file's
/// last handle (the file settled: the change feed is told); the caller then reaps an
/// unlinked file.
pub(crate) fn release(
    eng: &ContentEngine,
    st: &mut Guard<'_>,
    ino: Ino,
    fh: u64,
) -> Result<bool, FsError> {
    st.files.handle(ino, fh)?;
    flush_data(eng, st, ino, None)?;
    let last = handles::close(st, ino, fh)?;
    if last {
        st.feed.settled(ino);
    }
    Ok(last)
}
