//! The write room: open files, their buffered writes, and the flights that turn buffers into
//! blocks outside the state lock (`writeback`). The volume reaches file data only through the
//! functions re-exported here.
//!
//! [`State`] is what the one state lock guards: the metadata cache and the open files. It
//! dereferences to the metadata cache, so metadata operations read as before
//! (`st.inode(ino)`); open-file bookkeeping is `st.files`.
mod handles;
mod writeback;

pub(crate) use handles::{Files, close, open, plan_read, read, read_missing, size_of, write};
pub(crate) use writeback::{Job, Landing, flush_data, punch_data, spawn_thread, wait_flight};

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
