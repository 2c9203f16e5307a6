//! The change feed: what changed in the tree since the last sync scan, and the hook that is
//! told about it. The metadata cache records every change here (under the state lock); the
//! write path reports files being written and settled; sync reads and clears the feed when
//! it scans and silences it while it merges peers' updates. Nothing here knows about sync's
//! index.
use crate::attr::Ino;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// Called (cheaply, must not block) after local changes that a scan should pick up.
pub type ChangeHook = Arc<dyn Fn() + Send + Sync>;

/// Changes since the last scan. Directories and inodes are tracked only while a hook is set
/// (sync is on); `dirty` always.
#[derive(Default)]
pub(crate) struct ChangeFeed {
    /// Whether the tree changed since the last scan.
    pub(crate) dirty: bool,
    /// Directories whose entries changed since the last scan.
    pub(crate) dirs: HashSet<Ino>,
    /// Inodes whose attributes, content or target changed since the last scan.
    pub(crate) inos: HashSet<Ino>,
    /// Files being written (and when a scan first deferred them): their in-between states are
    /// not announced until fsync, the last close, or `SYNC_HOLD_MAX` (sync/scan.rs).
    pub(crate) hold: HashMap<Ino, Option<Instant>>,
    /// Suppresses the hook while sync applies peers' updates.
    pub(crate) quiet: bool,
    /// Told about local changes (set by `SyncHandle::enable`).
    pub(crate) hook: Option<ChangeHook>,
}

impl ChangeFeed {
    /// Notes a change of the tree (an entry of `dir`, or inode `ino`) and tells the hook.
    pub(crate) fn changed(&mut self, dir: Option<Ino>, ino: Option<Ino>) {
        self.dirty = true;
        let Some(h) = &self.hook else { return };
        if !self.quiet {
            h();
        }
        self.dirs.extend(dir);
        self.inos.extend(ino);
    }

    /// File `ino` is being written: its state is in between until it settles.
    pub(crate) fn writing(&mut self, ino: Ino) {
        self.hold.entry(ino).or_insert(None);
    }

    /// File `ino` settled (fsync, last close): a hold on it ends and it is scanned.
    pub(crate) fn settled(&mut self, ino: Ino) {
        if self.hold.remove(&ino).is_some() {
            self.changed(None, Some(ino));
        }
    }
}
