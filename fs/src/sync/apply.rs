//! Merging peers' updates into the index and the live tree, in one transaction with the
//! peer's progress.
use super::ApplyReport;
use super::Entry;
use super::entry::open_verified;
use super::index::{Rec, SyncState};
use super::live::{Applier, Outcome};
use super::merge::{Merged, Plan, conflict_copy, plan};
use super::scan::{live_state, matches};
use super::version::{Version, bump, merge};
use crate::FsError;
use crate::core::Core;
use crate::meta::Batch;
use crate::write::State;

/// A verified, opened update and its blob.
pub(crate) type Update = (Entry, Vec<u8>);

/// Checks and opens every blob; bad ones are counted and logged (without names).
pub(crate) fn open_all(
    core: &Core,
    ss: &SyncState,
    blobs: &[Vec<u8>],
    report: &mut ApplyReport,
) -> Vec<Update> {
    let mut out = Vec::with_capacity(blobs.len());
    for b in blobs {
        match open_verified(&core.keys, &ss.cfg, b) {
            Ok(e) => out.push((e, b.clone())),
            Err(why) => {
                report.rejected += 1;
                let dev = b.get(..32).map(hex::encode).unwrap_or_default();
                tracing::warn!(author = %dev, why, "sync update rejected");
            }
        }
    }
    out
}

impl SyncState {
    /// Merges `updates` (already verified) into the index and the tree.
    pub(crate) fn apply(
        &mut self,
        core: &Core,
        st: &mut State,
        updates: Vec<Update>,
        (report, b): (&mut ApplyReport, &mut Batch),
    ) -> Result<(), FsError> {
        st.feed.quiet = true;
        let mut ap = Applier {
            core,
            st,
            report,
            created_dirs: Vec::new(),
            files: Vec::new(),
            displaced: Vec::new(),
            moved: Vec::new(),
        };
        let r = updates
            .into_iter()
            .try_for_each(|u| self.apply_one(&mut ap, u, b));
        self.incomplete.extend(ap.files.drain(..));
        for (p, ino) in ap.moved.drain(..) {
            self.paths.set(p, ino);
        }
        // The tree now matches the index: what the merge changed is not a local change.
        ap.st.feed.quiet = false;
        ap.st.feed.dirty = false;
        ap.st.feed.dirs.clear();
        ap.st.feed.inos.clear();
        ap.report.changed_inodes.sort_unstable();
        ap.report.changed_inodes.dedup();
        r
    }

    fn apply_one(
        &mut self,
        ap: &mut Applier,
        (r, blob): Update,
        b: &mut Batch,
    ) -> Result<(), FsError> {
        let local = self.entries.get(&r.path).map(|x| x.entry.clone());
        let res = match plan(local.as_ref(), &r) {
            Plan::Ignore => {
                ap.report.ignored += 1;
                return Ok(());
            }
            Plan::Adopt => self.adopt(ap, r, blob, local.as_ref(), b),
            Plan::Merge(m) => self.merged(ap, *m, b),
        };
        match res {
            Ok(()) => ap.report.applied += 1,
            Err(e) => {
                ap.report.ignored += 1;
                tracing::warn!(error = %e, "sync update does not fit the local tree");
            }
        }
        // Directories made on the way exist in the tree whatever happened to the update.
        if let Err(e) = self.record_created(ap, b) {
            tracing::warn!(error = %e, "sync: recording created directories failed");
        }
        Ok(())
    }

    fn adopt(
        &mut self,
        ap: &mut Applier,
        r: Entry,
        blob: Vec<u8>,
        local: Option<&Entry>,
        b: &mut Batch,
    ) -> Result<(), FsError> {
        if ap.realize(&r)? == Outcome::Kept {
            let base = merge(
                &r.version,
                &local.map(|l| l.version.clone()).unwrap_or_default(),
            );
            return self.keep_dir(ap, &r, base, b);
        }
        let seq = self.next_seq();
        self.store(
            &ap.core.keys,
            Rec {
                entry: r,
                blob,
                seq,
            },
            b,
        );
        Ok(())
    }

    fn merged(
        &mut self,
        ap: &mut Applier,
        Merged {
            mut state,
            realize,
            copy,
        }: Merged,
        b: &mut Batch,
    ) -> Result<(), FsError> {
        if realize && ap.realize(&state)? == Outcome::Kept {
            let base = state.version.clone();
            return self.keep_dir(ap, &state, base, b);
        }
        if let Some(c) = copy {
            self.make_copy(ap, c, b)?;
        }
        let held = self.entries.get(&state.path).map(|x| &x.entry);
        if !realize && held.is_some_and(|h| h.version == state.version) {
            return Ok(());
        }
        state.author = self.cfg.signer.device();
        let seq = self.next_seq();
        self.store_own(&ap.core.keys, state, seq, b)
    }

    /// A conflict copy: realized and recorded unless the index already holds it.
    fn make_copy(&mut self, ap: &mut Applier, c: Entry, b: &mut Batch) -> Result<(), FsError> {
        if self
            .entries
            .get(&c.path)
            .is_some_and(|x| matches(&x.entry, &c))
        {
            return Ok(());
        }
        ap.realize(&c)?;
        ap.report.conflicts += 1;
        self.record_local(&ap.core.keys, c, b)
    }

    /// `r` would delete or replace a directory that has live children: the directory stays,
    /// as a new local version over `base`; a file or symlink `r` becomes a conflict copy.
    fn keep_dir(
        &mut self,
        ap: &mut Applier,
        r: &Entry,
        base: Version,
        b: &mut Batch,
    ) -> Result<(), FsError> {
        if !r.deleted {
            self.make_copy(ap, conflict_copy(r), b)?;
        }
        self.keep_live(ap, &r.path, base, b)
    }

    /// The live directory at `path` stays, as a new local version over `base`.
    fn keep_live(
        &mut self,
        ap: &mut Applier,
        path: &[u8],
        base: Version,
        b: &mut Batch,
    ) -> Result<(), FsError> {
        let (parent, name) = super::live::split(path);
        let dir = ap.dir_at(parent, false)?.ok_or(FsError::NotFound)?;
        let d = ap
            .core
            .entry(ap.st, dir, name)?
            .1
            .ok_or(FsError::NotFound)?;
        let l = live_state(ap.st, d.ino, path.to_vec())?.ok_or(FsError::NotFound)?;
        let seq = self.next_seq();
        let mut state = l.state;
        state.version = bump(&base, self.me, seq);
        state.author = self.cfg.signer.device();
        self.store_own(&ap.core.keys, state, seq, b)
    }

    /// Index entries for directories created as missing parents.
    fn record_created(&mut self, ap: &mut Applier, b: &mut Batch) -> Result<(), FsError> {
        for path in std::mem::take(&mut ap.displaced) {
            let held = self.entries.get(&path).map(|x| x.entry.clone());
            if let Some(l) = held.filter(|l| !l.deleted) {
                self.make_copy(ap, conflict_copy(&l), b)?;
            }
        }
        for path in std::mem::take(&mut ap.created_dirs) {
            let state = Entry {
                path: path.clone(),
                kind: super::EntryKind::Dir,
                deleted: false,
                perm: 0o755,
                mtime: std::time::SystemTime::UNIX_EPOCH,
                content: Default::default(),
                target: Vec::new(),
                version: Vec::new(),
                author: [0; 32],
                xattrs: Vec::new(),
            };
            self.record_local(&ap.core.keys, state, b)?;
        }
        Ok(())
    }
}
