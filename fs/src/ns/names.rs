//! Naming inodes by path in messages (the log, `fsck`): a walk of the live directory tree
//! from the root. Only for reports of problems, which are rare: the walk reads every
//! directory (from the cache or the metadata database), it keeps no index.
use crate::attr::{FileKind, Ino, ROOT_INO};
use crate::core::Core;
use crate::error::FsError;
use std::collections::{HashMap, HashSet};

impl Core {
    /// A path (`/`-joined, no leading `/`) of every inode the live tree reaches: the first one
    /// found for a hard-linked file.
    pub(crate) fn paths_by_ino(&self) -> HashMap<Ino, Vec<u8>> {
        self.walk_names(|_| false)
    }

    /// A path of `ino` in the live tree, if it has one (an unlinked open file has none).
    pub(crate) fn path_of(&self, ino: Ino) -> Option<Vec<u8>> {
        self.walk_names(|found| found == ino).remove(&ino)
    }

    /// Walks directories depth first, naming each inode; stops early once `done(ino)`
    /// holds for an inode just named.
    fn walk_names(&self, done: impl Fn(Ino) -> bool) -> HashMap<Ino, Vec<u8>> {
        let mut names: HashMap<Ino, Vec<u8>> = HashMap::new();
        let mut seen = HashSet::from([ROOT_INO]);
        let mut queue = vec![(ROOT_INO, Vec::new())];
        while let Some((dir, path)) = queue.pop() {
            // A directory that cannot be read names nothing below it (fsck reports it).
            let entries: Vec<(Vec<u8>, Ino, FileKind)> = {
                let mut st = self.st.lock();
                st.dir(dir).map_or_else(
                    |_| Vec::new(),
                    |d| {
                        d.values()
                            .map(|d| (d.name.clone(), d.ino, d.kind))
                            .collect()
                    },
                )
            };
            for (name, ino, kind) in entries {
                let mut p = path.clone();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(&name);
                names.entry(ino).or_insert_with(|| p.clone());
                if done(ino) {
                    return names;
                }
                if kind == FileKind::Dir && seen.insert(ino) {
                    queue.push((ino, p));
                }
            }
        }
        names
    }
}

impl Core {
    /// Logs a read that failed for a missing or corrupt block with the file's path (the
    /// block id alone does not tell the user which file is damaged).
    pub(crate) fn log_bad_read(&self, ino: Ino, offset: u64, e: &FsError) {
        use blockstore::StoreError;
        if matches!(
            e,
            FsError::Store(
                StoreError::Corrupt { .. }
                    | StoreError::NotFound(_)
                    | StoreError::Unavailable { .. }
            ) | FsError::BadBlock(_)
        ) {
            let path = self
                .path_of(ino)
                .map_or_else(|| "(unlinked)".to_owned(), |p| shown(&p));
            tracing::error!(path, ino, offset, error = %e, "read failed: file content damaged or unavailable");
        }
    }
}

/// `path` for a message: lossy UTF-8 with a leading `/`.
pub(crate) fn shown(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path))
}
