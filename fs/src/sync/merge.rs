//! The merge rules (docs/protocol.md, "Merge rules") and conflict copy names.
use super::live::split;
use super::scan::join;
use super::version::{Order, compare, device_display, merge};
use super::{Entry, EntryKind};
use crate::format::sync::encode_entry;
use crate::ns::dir::NAME_MAX;

/// What to do with a received entry.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Rule 1: known or dominated.
    Ignore,
    /// Rule 2 (or no local entry): adopt it as received.
    Adopt,
    /// Rules 3–5: `state` (merged version) replaces the local entry, re-signed by this
    /// device; `realize` if the tree must change; `copy` is the loser's conflict copy.
    Merge(Box<Merged>),
}

/// The result of merging concurrent versions.
#[derive(Debug)]
pub(crate) struct Merged {
    /// The merged state (merged version vector).
    pub(crate) state: Entry,
    /// The tree must change to match `state`.
    pub(crate) realize: bool,
    /// The loser's conflict copy.
    pub(crate) copy: Option<Entry>,
}

/// Applies the merge rules to received `r` and local `l`.
pub(crate) fn plan(l: Option<&Entry>, r: &Entry) -> Plan {
    let Some(l) = l else { return Plan::Adopt };
    match compare(&r.version, &l.version) {
        Order::Equal if l.same_state(r) => Plan::Ignore,
        Order::Less => Plan::Ignore,
        Order::Greater => Plan::Adopt,
        // Equal versions with different states come from different merges that reached the
        // same vector: resolved like concurrent ones, so every device picks the same state.
        Order::Concurrent | Order::Equal => concurrent(l, r),
    }
}

fn concurrent(l: &Entry, r: &Entry) -> Plan {
    let version = merge(&l.version, &r.version);
    let (winner, loser, realize) = if l.same_content(r) {
        // Content is equal; the attributes follow rule 5's order so every device agrees.
        if r_wins(l, r) {
            (r, None, true)
        } else {
            (l, None, false)
        }
    } else if l.deleted != r.deleted {
        if l.deleted {
            (r, None, true)
        } else {
            (l, None, false)
        }
    } else if r_wins(l, r) {
        (r, Some(l), true)
    } else {
        (l, Some(r), false)
    };
    let state = Entry {
        version,
        ..winner.clone()
    };
    let copy = loser
        .filter(|x| x.kind != EntryKind::Dir)
        .map(conflict_copy);
    Plan::Merge(Box::new(Merged {
        state,
        realize,
        copy,
    }))
}

/// Rule 5: a directory beats a file; then the later mtime; then the greater author; then
/// (a total order, so that every device picks the same winner) the greater encoding.
fn r_wins(l: &Entry, r: &Entry) -> bool {
    let key = |e: &Entry| (e.kind == EntryKind::Dir, e.mtime, e.author, encode_entry(e));
    key(r) > key(l)
}

/// The loser `e` as a new entry at its conflict copy path (version left empty).
pub(crate) fn conflict_copy(e: &Entry) -> Entry {
    Entry {
        path: conflict_path(e),
        version: Vec::new(),
        ..e.clone()
    }
}

/// `NAME.sync-conflict-YYYYMMDD-HHMMSS-SHORT.EXT` next to `e`'s path (time = its mtime in
/// UTC, SHORT = 7 characters of its author's display form); the stem is shortened if the
/// name would exceed 255 bytes.
pub(crate) fn conflict_path(e: &Entry) -> Vec<u8> {
    let (parent, name) = split(&e.path);
    let (stem, ext) = match name.iter().rposition(|b| *b == b'.') {
        Some(k) if k > 0 => (&name[..k], &name[k..]),
        _ => (name, &b""[..]),
    };
    let (y, mo, d, h, mi, s) = crate::civil::utc_civil(e.mtime);
    let short: String = device_display(&e.author).chars().take(7).collect();
    let tail = format!(".sync-conflict-{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{short}");
    let room = NAME_MAX.saturating_sub(tail.len() + ext.len());
    let mut n = stem[..stem.len().min(room)].to_vec();
    n.extend_from_slice(tail.as_bytes());
    n.extend_from_slice(ext);
    join(parent, &n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::FileContent;
    use std::time::{Duration, UNIX_EPOCH};

    fn e(path: &str, mtime: u64, author: u8, version: Vec<(u64, u64)>) -> Entry {
        Entry {
            path: path.as_bytes().to_vec(),
            kind: EntryKind::File,
            deleted: false,
            perm: 0o644,
            mtime: UNIX_EPOCH + Duration::from_secs(mtime),
            content: FileContent {
                size: u64::from(author),
                root: None,
            },
            target: Vec::new(),
            version,
            author: [author; 32],
            xattrs: Vec::new(),
        }
    }

    #[test]
    fn conflict_names_depend_on_the_loser_only() {
        // 2026-11-23 19:31:20 UTC.
        let x = e("d/report.txt", 1_795_462_280, 0, vec![(1, 1)]);
        assert_eq!(
            String::from_utf8(conflict_path(&x)).unwrap(),
            "d/report.sync-conflict-20261123-193120-AAAAAAA.txt"
        );
        let y = e(".bashrc", 0, 0, vec![(1, 1)]);
        let p = String::from_utf8(conflict_path(&y)).unwrap();
        assert_eq!(p, ".bashrc.sync-conflict-19700101-000000-AAAAAAA");
    }

    #[test]
    fn rules() {
        let a = e("f", 10, 1, vec![(1, 1)]);
        let b = e("f", 20, 2, vec![(2, 1)]);
        assert!(matches!(plan(None, &a), Plan::Adopt));
        assert!(matches!(plan(Some(&a), &a), Plan::Ignore));
        let newer = e("f", 5, 1, vec![(1, 2)]);
        assert!(matches!(plan(Some(&a), &newer), Plan::Adopt));
        assert!(matches!(plan(Some(&newer), &a), Plan::Ignore));
        let Plan::Merge(m) = plan(Some(&a), &b) else {
            panic!("concurrent")
        };
        assert!(m.realize);
        assert_eq!(m.state.author, b.author);
        assert_eq!(m.state.version, vec![(1, 1), (2, 1)]);
        assert_eq!(m.copy.unwrap().content, a.content);
        let dead = Entry {
            deleted: true,
            ..b.clone()
        };
        let Plan::Merge(m) = plan(Some(&a), &dead) else {
            panic!("concurrent")
        };
        assert!(!m.realize && m.copy.is_none() && !m.state.deleted);
    }
}
