//! Where synced inodes are: path → inode and inode → paths (hard links have several), kept
//! by scans and merges so that a scan only looks at what changed.
use crate::attr::Ino;
use std::collections::{BTreeMap, HashMap};

/// The two-way map between paths and inodes of the live tree as last scanned.
#[derive(Default)]
pub(crate) struct PathMap {
    at: BTreeMap<Vec<u8>, Ino>,
    locs: HashMap<Ino, Vec<Vec<u8>>>,
}

impl PathMap {
    /// The inode last seen at `p`.
    pub(crate) fn get(&self, p: &[u8]) -> Option<Ino> {
        self.at.get(p).copied()
    }

    /// The paths `ino` was last seen at.
    pub(crate) fn paths(&self, ino: Ino) -> Vec<Vec<u8>> {
        self.locs.get(&ino).cloned().unwrap_or_default()
    }

    /// Records `ino` (or nothing) at `p`.
    pub(crate) fn set(&mut self, p: Vec<u8>, ino: Option<Ino>) {
        if let Some(old) = self.at.remove(&p)
            && let Some(v) = self.locs.get_mut(&old)
        {
            v.retain(|x| *x != p);
            if v.is_empty() {
                self.locs.remove(&old);
            }
        }
        if let Some(ino) = ino {
            self.locs.entry(ino).or_default().push(p.clone());
            self.at.insert(p, ino);
        }
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.at.clear();
        self.locs.clear();
    }
}

/// The keys of `m` strictly below path `q` (all keys for the root, `q` empty).
pub(crate) fn below<'a, V>(
    m: &'a BTreeMap<Vec<u8>, V>,
    q: &[u8],
) -> Box<dyn Iterator<Item = (&'a Vec<u8>, &'a V)> + 'a> {
    if q.is_empty() {
        return Box::new(m.iter());
    }
    let mut lo = q.to_vec();
    lo.push(b'/');
    let mut hi = q.to_vec();
    hi.push(b'/' + 1);
    Box::new(m.range(lo..hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_prefixes() {
        let mut m = PathMap::default();
        m.set(b"a".to_vec(), Some(5));
        m.set(b"b".to_vec(), Some(5));
        m.set(b"a".to_vec(), Some(6));
        assert_eq!(m.paths(5), vec![b"b".to_vec()]);
        assert_eq!(m.get(b"a"), Some(6));
        m.set(b"b".to_vec(), None);
        assert!(m.paths(5).is_empty());
        let t: BTreeMap<Vec<u8>, ()> = [&b"d"[..], b"d/x", b"d/x/y", b"d0", b"e"]
            .iter()
            .map(|k| (k.to_vec(), ()))
            .collect();
        let keys: Vec<_> = below(&t, b"d").map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, vec![b"d/x".to_vec(), b"d/x/y".to_vec()]);
        assert_eq!(below(&t, b"").count(), 5);
    }
}
