//! Content engine tests over a real `BlockStore` in a temporary directory.
#![allow(clippy::unwrap_used)] // In tests a panic is the failure report.
use super::*;
use crate::crypto::VolumeSecret;
use crate::format::pointer;
use blockstore::{StoreError, StoreOptions};
use proptest::prelude::*;
use std::collections::HashSet;
use tempfile::TempDir;

struct Env {
    _dir: TempDir,
    store: Arc<BlockStore>,
    eng: ContentEngine,
}

fn env_with(opts: ContentOptions) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(BlockStore::open(dir.path(), StoreOptions::default()).unwrap());
    let keys = Arc::new(VolumeKeys::derive(&VolumeSecret([7; 32])));
    let eng = ContentEngine::with_options(store.clone(), store.clone(), keys, opts);
    Env {
        _dir: dir,
        store,
        eng,
    }
}

fn env() -> Env {
    env_with(ContentOptions::default())
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub(super) fn rand_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `n` cases, or `PROPTEST_CASES` when set: `ProptestConfig::with_cases` alone would ignore
/// it, and a long run would silently run the short default.
fn cases(n: u32) -> ProptestConfig {
    let set = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok());
    ProptestConfig::with_cases(set.unwrap_or(n))
}

/// An engine with fan-out 4, so that files of a few MiB have trees several levels deep.
fn small_fanout_env() -> Env {
    env_with(ContentOptions {
        max_fanout: 4,
        ..ContentOptions::default()
    })
}

fn write(e: &Env, c: &FileContent, off: u64, data: &[u8]) -> FileContent {
    let mut w = WriteBuffer::new();
    w.write(off, data);
    let size = c.size.max(off + data.len() as u64);
    e.eng.update(c, size, &w).unwrap()
}

fn resize(e: &Env, c: &FileContent, size: u64) -> FileContent {
    e.eng.update(c, size, &WriteBuffer::new()).unwrap()
}

fn read_all(e: &Env, c: &FileContent) -> Vec<u8> {
    e.eng.read(c, 0, usize::MAX).unwrap()
}

/// The tree an update built must be the one its leaves make from scratch: taking over old
/// pointer blocks may not change it.
fn assert_canonical(e: &Env, c: &FileContent) {
    let (root, height) = ContentEngine::root_entry(c).unwrap();
    let mut leaves = Vec::new();
    let mut none = tree::OldTree::default();
    e.eng
        .collect_leaves((&root, height, None), &mut leaves, &mut none)
        .unwrap();
    let n = leaves.len();
    let fresh = e
        .eng
        .build(leaves, vec![None; n], &tree::OldTree::default());
    assert_eq!(
        fresh.unwrap(),
        c.root,
        "the update's tree differs from its leaves' own"
    );
}

fn pointers_sealed(e: &Env) -> u64 {
    e.eng
        .pointers_sealed
        .load(std::sync::atomic::Ordering::Relaxed)
}

fn blocks(e: &Env) -> u64 {
    e.store.stats().own_blocks
}

const SIZES: &[usize] = &[
    0,
    1,
    4095,
    4096,
    16 * 1024 - 1,
    16 * 1024,
    16 * 1024 + 1,
    64 * 1024 - 1,
    64 * 1024,
    64 * 1024 + 1,
    256 * 1024 - 1,
    256 * 1024,
    256 * 1024 + 1,
    (1 << 20) + 7,
    (10 << 20) + 3,
];

#[test]
fn boundary_sizes_round_trip() {
    let e = env();
    for (i, &n) in SIZES.iter().enumerate() {
        let data = rand_bytes(n, i as u64);
        let c = write(&e, &FileContent::default(), 0, &data);
        assert_eq!(c.size, n as u64);
        assert_eq!(read_all(&e, &c), data, "size {n}");
        for off in [0, n / 3, n.saturating_sub(1), n, n + 10] {
            let got = e.eng.read(&c, off as u64, 4096).unwrap();
            let want = &data[off.min(n)..(off + 4096).min(n)];
            assert_eq!(got, want, "size {n} off {off}");
        }
        let enc = {
            let mut v = Vec::new();
            c.encode(&mut v);
            v
        };
        assert_eq!(FileContent::decode(&enc).unwrap(), c);
    }
}

#[test]
fn truncate_down_and_up_makes_holes() {
    let e = env();
    let data = rand_bytes(300_000, 1);
    let c = write(&e, &FileContent::default(), 0, &data);
    let c = resize(&e, &c, 100_005);
    assert_eq!(read_all(&e, &c), &data[..100_005]);
    let before = e.store.stats();
    let c = resize(&e, &c, 10 << 20);
    let after = e.store.stats();
    // Only the pointer block that now lists the hole is new; the hole itself stores nothing.
    assert!(after.own_blocks - before.own_blocks <= 1);
    assert!(after.own_bytes - before.own_bytes < 1024);
    let got = read_all(&e, &c);
    assert_eq!(&got[..100_005], &data[..100_005]);
    assert!(got[100_005..].iter().all(|b| *b == 0));
    // A file that is one big hole has no blocks at all.
    let n = blocks(&e);
    let h = resize(&e, &FileContent::default(), 1 << 40);
    assert_eq!(h.root, None);
    assert_eq!(blocks(&e), n);
    assert_eq!(e.eng.read(&h, 123 << 30, 10).unwrap(), vec![0; 10]);
    // One byte deep in a sparse file materializes one chunk (plus pointers), not the hole.
    let s = write(&e, &h, 1 << 39, b"x");
    assert!(blocks(&e) - n <= 3);
    assert_eq!(e.eng.read(&s, (1 << 39) - 1, 3).unwrap(), b"\0x\0");
    assert_eq!(resize(&e, &s, 0), FileContent::default());
}

#[test]
fn insertion_rewrites_few_chunks() {
    let e = env();
    let data = rand_bytes(8 << 20, 2);
    let c = write(&e, &FileContent::default(), 0, &data);
    let mut new = data[..5000].to_vec();
    new.extend_from_slice(&rand_bytes(100, 3));
    new.extend_from_slice(&data[5000..]);
    let n = blocks(&e);
    let c2 = write(&e, &c, 5000, &new[5000..]);
    let added = blocks(&e) - n;
    let depth = c2.root.map_or(0, |r| r.depth) as u64;
    assert!(added <= 4 + depth, "{added} new blocks at depth {depth}");
    assert_eq!(read_all(&e, &c2), new);
}

#[test]
fn append_rechunks_only_the_last_chunk() {
    let e = env();
    let data = rand_bytes(2 << 20, 10);
    let c = write(&e, &FileContent::default(), 0, &data);
    let mut last = None;
    e.eng.visit_blocks(&c, &mut |id| last = Some(id)).unwrap();
    let n = blocks(&e);
    let c2 = write(&e, &c, data.len() as u64, b"tail");
    // The old last chunk re-cut with the tail (1 or 2 chunks) plus the new pointer root.
    assert!(blocks(&e) - n <= 3);
    let mut still = false;
    e.eng
        .visit_blocks(&c2, &mut |id| still |= Some(id) == last)
        .unwrap();
    assert!(!still, "the old last chunk was replaced");
    assert_eq!(
        e.eng.read(&c2, data.len() as u64 - 2, 10).unwrap(),
        [&data[data.len() - 2..], b"tail"].concat()
    );
}

#[test]
fn appends_dedupe_with_one_shot_write() {
    let e = env();
    let data = rand_bytes(3 << 20, 4);
    let one = write(&e, &FileContent::default(), 0, &data);
    let mut c = FileContent::default();
    let mut off = 0;
    for (i, step) in [1usize, 70_000, 500_000, 4096, 1 << 20]
        .iter()
        .cycle()
        .enumerate()
    {
        if off >= data.len() {
            break;
        }
        let end = (off + step + i).min(data.len());
        c = write(&e, &c, off as u64, &data[off..end]);
        off = end;
    }
    assert_eq!(c, one);
}

#[test]
fn deep_tree_round_trip_and_visit() {
    // No cache either: correctness must not depend on it.
    let e = env_with(ContentOptions {
        max_fanout: 4,
        cache_bytes: 0,
        ..ContentOptions::default()
    });
    let mut model = rand_bytes(3 << 20, 5);
    let mut c = write(&e, &FileContent::default(), 0, &model);
    assert!(c.root.unwrap().depth >= 2, "{:?}", c.root);
    for i in 0..8u64 {
        let off = (i * 390_001) % model.len() as u64;
        let d = rand_bytes(1000 + i as usize * 20_000, 100 + i);
        let end = off as usize + d.len();
        if end > model.len() {
            model.resize(end, 0);
        }
        model[off as usize..end].copy_from_slice(&d);
        c = write(&e, &c, off, &d);
        assert_eq!(read_all(&e, &c), model);
    }
    // In a fresh store, the visited blocks are exactly the live ones.
    let f = small_fanout_env();
    let c = write(&f, &FileContent::default(), 0, &model);
    let mut seen = HashSet::new();
    f.eng
        .visit_blocks(&c, &mut |id| {
            seen.insert(id);
        })
        .unwrap();
    assert_eq!(seen.len() as u64, blocks(&f));
}

#[test]
fn reads_hit_the_cache() {
    let e = env();
    let data = rand_bytes(1 << 20, 6);
    let c = write(&e, &FileContent::default(), 0, &data);
    e.eng.clear_cache();
    for off in (0..data.len()).step_by(4096) {
        let got = e.eng.read(&c, off as u64, 4096).unwrap();
        assert_eq!(got, &data[off..off + 4096]);
    }
    assert!(e.eng.cache_bytes() >= data.len());
}

/// A source that corrupts or withholds one block.
struct Evil {
    inner: Arc<BlockStore>,
    target: BlockId,
    flip: bool,
}

impl BlockSource for Evil {
    fn get_block(&self, id: &BlockId) -> Result<Vec<u8>, StoreError> {
        let mut b = self.inner.get(id)?;
        if *id == self.target {
            if !self.flip {
                let actual = BlockId::of(b"other");
                return Err(StoreError::Corrupt { id: *id, actual });
            }
            let last = b.len() - 1;
            b[last] ^= 1;
        }
        Ok(b)
    }
}

#[test]
fn corrupt_blocks_are_errors_not_data() {
    let e = env();
    let data = rand_bytes(1 << 20, 7);
    let c = write(&e, &FileContent::default(), 0, &data);
    let mut ids = Vec::new();
    e.eng.visit_blocks(&c, &mut |id| ids.push(id)).unwrap();
    let keys = Arc::new(VolumeKeys::derive(&VolumeSecret([7; 32])));
    // The root pointer block, then the first chunk (which truncating to 5 bytes must read).
    for target in [ids[0], ids[1]] {
        for flip in [true, false] {
            let src = Arc::new(Evil {
                inner: e.store.clone(),
                target,
                flip,
            });
            let eng = ContentEngine::new(e.store.clone(), src, keys.clone());
            let err = eng.read(&c, 0, usize::MAX).unwrap_err();
            match (flip, err) {
                (true, FsError::BadBlock(id)) => assert_eq!(id, target),
                (false, FsError::Store(StoreError::Corrupt { id, .. })) => assert_eq!(id, target),
                (_, other) => panic!("unexpected {other:?}"),
            }
            assert!(eng.update(&c, 5, &WriteBuffer::new()).is_err());
        }
    }
}

#[test]
fn malformed_pointer_blocks_are_bad_blocks() {
    let e = env();
    let data = rand_bytes(100_000, 8);
    let chunk = e.eng.put_blob(BlockKind::Data, &data).unwrap();
    let entry = pointer::Entry {
        r: Some(chunk),
        len: data.len() as u64,
    };
    let good = pointer::encode_pointer(1, &[entry]);
    let mut wrong_sum = good.clone();
    let l = wrong_sum.len();
    wrong_sum[l - 8] ^= 1;
    let cases = [wrong_sum, good[..good.len() - 3].to_vec(), vec![1, 1, 0, 0]];
    for p in cases {
        let r = e.eng.put_blob(BlockKind::Pointer, &p).unwrap();
        let root = Some(TreeRoot { block: r, depth: 1 });
        let c = FileContent {
            size: data.len() as u64,
            root,
        };
        assert!(matches!(e.eng.read(&c, 0, 10), Err(FsError::BadBlock(id)) if id == r.id));
    }
    // A data chunk where a pointer is expected, and a size that disagrees with the chunk.
    let c = FileContent {
        size: 5,
        root: Some(TreeRoot {
            block: chunk,
            depth: 1,
        }),
    };
    assert!(matches!(e.eng.read(&c, 0, 10), Err(FsError::BadBlock(_))));
    let c = FileContent {
        size: 5,
        root: Some(TreeRoot {
            block: chunk,
            depth: 0,
        }),
    };
    assert!(matches!(e.eng.read(&c, 0, 10), Err(FsError::BadBlock(_))));
}

#[derive(Debug, Clone)]
enum Op {
    Write(u64, usize, u64),
    Resize(u64),
    /// Punch a hole of `len` bytes at `off` (clipped to the size).
    Punch(u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..700_000, 1usize..150_000, any::<u64>()).prop_map(|(o, l, s)| Op::Write(o, l, s)),
        1 => (0u64..800_000).prop_map(Op::Resize),
        2 => (0u64..700_000, 1u64..400_000).prop_map(|(o, l)| Op::Punch(o, l)),
    ]
}

#[test]
fn appending_to_a_large_file_seals_only_its_right_edge() {
    let e = small_fanout_env();
    let data = rand_bytes(8 << 20, 5);
    let mut c = write(&e, &FileContent::default(), 0, &data);
    let whole = pointers_sealed(&e);
    let mut end = data.len() as u64;
    for seed in 0..4 {
        let before = pointers_sealed(&e);
        c = write(&e, &c, end, &rand_bytes(100_000, seed));
        end += 100_000;
        let sealed = pointers_sealed(&e) - before;
        let depth = u64::from(c.root.unwrap().depth);
        assert!(
            sealed <= 3 * depth,
            "an append sealed {sealed} pointer blocks (tree depth {depth}, {whole} in all)"
        );
        assert_canonical(&e, &c);
    }
}

fn full_updates(e: &Env) -> u64 {
    e.eng
        .full_updates
        .load(std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn appends_rebuild_only_the_right_edge() {
    let e = small_fanout_env();
    let mut model = rand_bytes(8 << 20, 11);
    let mut c = write(&e, &FileContent::default(), 0, &model);
    assert!(c.root.unwrap().depth >= 4, "{:?}", c.root);
    // Appends of every size, and writes into the last chunk: none flattens the old tree.
    for (i, len) in [1usize, 100_000, 70_000, 3 << 20, 17]
        .into_iter()
        .enumerate()
    {
        let before = full_updates(&e);
        let tail = i % 2 == 1;
        let off = if tail { model.len() - 5 } else { model.len() };
        let d = rand_bytes(len, 40 + i as u64);
        model.resize(model.len().max(off + len), 0);
        model[off..off + len].copy_from_slice(&d);
        c = write(&e, &c, off as u64, &d);
        assert_eq!(full_updates(&e), before, "write {i} took the general path");
        assert_eq!(read_all(&e, &c), model);
        assert_canonical(&e, &c);
    }
    // A truncation takes the general path (so the count above means something).
    let before = full_updates(&e);
    model.truncate(model.len() - 1);
    c = resize(&e, &c, model.len() as u64);
    assert_eq!(full_updates(&e), before + 1);
    assert_eq!(read_all(&e, &c), model);
    assert_canonical(&e, &c);
}

/// A preallocated file (`fallocate` grows it with a hole) filled from the start: the hole
/// after the written data is not in the way of the right-edge path, so no fill flattens
/// the tree. Before, each one did, and filling was quadratic in the file's size.
#[test]
fn filling_a_preallocated_file_rebuilds_only_the_right_edge() {
    let e = small_fanout_env();
    let size = 12usize << 20;
    let mut model = vec![0u8; size];
    let mut c = resize(&e, &FileContent::default(), size as u64);
    // The first write goes into a file that is all hole: it has no edge to keep.
    let first = rand_bytes(3 << 20, 60);
    model[..first.len()].copy_from_slice(&first);
    c = write(&e, &c, 0, &first);
    assert!(c.root.unwrap().depth >= 3, "{:?}", c.root);
    let mut off = first.len();
    let before = full_updates(&e);
    for (i, len) in [1usize, 70_000, 1 << 20, 3 << 20, 100_000, 17]
        .into_iter()
        .enumerate()
    {
        let d = rand_bytes(len, 61 + i as u64);
        model[off..off + len].copy_from_slice(&d);
        c = write(&e, &c, off as u64, &d);
        off += len;
        assert_eq!(c.size, size as u64);
        assert_eq!(full_updates(&e), before, "fill {i} took the general path");
        assert_eq!(read_all(&e, &c), model);
        assert_canonical(&e, &c);
    }
    // Writing the rest ends the hole; then the file is whole data.
    let d = rand_bytes(size - off, 70);
    model[off..].copy_from_slice(&d);
    c = write(&e, &c, off as u64, &d);
    assert_eq!(full_updates(&e), before);
    assert_eq!(read_all(&e, &c), model);
    assert_canonical(&e, &c);
}

#[test]
fn overwrites_update_only_around_the_window() {
    let e = small_fanout_env();
    let mut model = rand_bytes(8 << 20, 13);
    let mut c = write(&e, &FileContent::default(), 0, &model);
    let before = full_updates(&e);
    // At the start, in the middle, across chunks, and two writes in one update.
    let writes: [&[(usize, usize)]; 5] = [
        &[(0, 10)],
        &[(4 << 20, 4096)],
        &[(3 << 20, 700_000)],
        &[(1 << 20, 1), (6 << 20, 50_000)],
        &[((8 << 20) - 300_000, 200_000)],
    ];
    for (i, ws) in writes.iter().enumerate() {
        let mut w = WriteBuffer::new();
        for (j, &(off, len)) in ws.iter().enumerate() {
            let d = rand_bytes(len, 60 + (i * 4 + j) as u64);
            model[off..off + len].copy_from_slice(&d);
            w.write(off as u64, &d);
        }
        c = e.eng.update(&c, c.size, &w).unwrap();
        assert_eq!(read_all(&e, &c), model, "write {i}");
        assert_canonical(&e, &c);
    }
    assert_eq!(
        full_updates(&e),
        before,
        "an overwrite took the general path"
    );
}

proptest! {
    #![proptest_config(cases(24))]
    /// Overwrites that keep the size (the window path) keep the content and the canonical
    /// tree, several writes per update included.
    #[test]
    fn overwrites_match_model(
        init in 1usize..3_000_000,
        ops in prop::collection::vec(prop::collection::vec((any::<u32>(), 1usize..120_000, any::<u64>()), 1..4), 1..6),
    ) {
        let e = small_fanout_env();
        let mut model = rand_bytes(init, 14);
        let mut c = write(&e, &FileContent::default(), 0, &model);
        for ws in ops {
            let mut w = WriteBuffer::new();
            for (at, len, seed) in ws {
                let off = at as usize % model.len();
                let len = len.min(model.len() - off);
                let d = rand_bytes(len, seed);
                model[off..off + len].copy_from_slice(&d);
                w.write(off as u64, &d);
            }
            c = e.eng.update(&c, c.size, &w).unwrap();
            prop_assert!(read_all(&e, &c) == model);
            assert_canonical(&e, &c);
        }
    }
}

#[derive(Debug, Clone)]
enum Tail {
    /// Append `len` bytes after a gap of `gap` zeros.
    Append(usize, usize, u64),
    /// Overwrite `len` bytes starting `back` bytes before the end.
    Overwrite(usize, usize, u64),
    /// Grow by `n` zeros.
    Grow(usize),
    /// Punch a hole of `len` bytes starting `back` bytes before the end.
    Punch(usize, usize),
    /// Write `len` bytes where the written data ends (filling a grown file, as a
    /// preallocated one is filled).
    Fill(usize, u64),
}

fn tail_op() -> impl Strategy<Value = Tail> {
    prop_oneof![
        4 => (0usize..300_000, prop_oneof![Just(0usize), 1usize..200_000], any::<u64>())
            .prop_map(|(l, g, s)| Tail::Append(l + 1, g, s)),
        2 => (1usize..100_000, 1usize..150_000, any::<u64>()).prop_map(|(b, l, s)| Tail::Overwrite(b, l, s)),
        1 => (1usize..300_000).prop_map(Tail::Grow),
        2 => (1usize..200_000, any::<u64>()).prop_map(|(l, s)| Tail::Fill(l, s)),
        1 => (1usize..400_000, 1usize..300_000).prop_map(|(b, l)| Tail::Punch(b, l)),
    ]
}

proptest! {
    #![proptest_config(cases(24))]
    /// Updates near the end (the right-edge path, also past a trailing hole, and the general
    /// one once a hole lies before the edge) keep the content and the canonical tree.
    #[test]
    fn tail_ops_match_model(init in 1usize..2_000_000, ops in prop::collection::vec(tail_op(), 1..8)) {
        let e = small_fanout_env();
        let mut model = rand_bytes(init, 12);
        let mut c = write(&e, &FileContent::default(), 0, &model);
        // End of the bytes written so far (a grow leaves it where it is).
        let mut written = model.len();
        for op in ops {
            let (off, d) = match op {
                Tail::Append(len, gap, seed) => (model.len() + gap, rand_bytes(len, seed)),
                Tail::Overwrite(back, len, seed) => {
                    (model.len().saturating_sub(back), rand_bytes(len, seed))
                }
                Tail::Fill(len, seed) => (written, rand_bytes(len, seed)),
                Tail::Grow(n) => {
                    model.resize(model.len() + n, 0);
                    c = resize(&e, &c, model.len() as u64);
                    (model.len(), Vec::new())
                }
                Tail::Punch(back, len) => {
                    let off = model.len().saturating_sub(back) as u64;
                    punch_model(&mut model, off, len as u64);
                    c = e.eng.punch(&c, off, off + len as u64).unwrap();
                    (model.len(), Vec::new())
                }
            };
            if !d.is_empty() {
                model.resize(model.len().max(off + d.len()), 0);
                model[off..off + d.len()].copy_from_slice(&d);
                c = write(&e, &c, off as u64, &d);
                written = written.max(off + d.len());
            }
            prop_assert_eq!(c.size, model.len() as u64);
            prop_assert!(read_all(&e, &c) == model);
            assert_canonical(&e, &c);
        }
    }
}

proptest! {
    #![proptest_config(cases(24))]
    #[test]
    fn random_ops_match_model(init in 0usize..600_000, ops in prop::collection::vec(op(), 1..6)) {
        let e = small_fanout_env();
        let mut model = rand_bytes(init, 9);
        let mut c = write(&e, &FileContent::default(), 0, &model);
        for op in ops {
            match op {
                Op::Write(off, len, seed) => {
                    let d = rand_bytes(len, seed);
                    let end = off as usize + len;
                    if end > model.len() {
                        model.resize(end, 0);
                    }
                    model[off as usize..end].copy_from_slice(&d);
                    c = write(&e, &c, off, &d);
                }
                Op::Resize(n) => {
                    model.resize(n as usize, 0);
                    c = resize(&e, &c, n);
                }
                Op::Punch(off, len) => {
                    punch_model(&mut model, off, len);
                    c = e.eng.punch(&c, off, off + len).unwrap();
                }
            }
            prop_assert_eq!(c.size, model.len() as u64);
            prop_assert!(read_all(&e, &c) == model);
            assert_canonical(&e, &c);
        }
    }
}

proptest! {
    #![proptest_config(cases(64))]
    #[test]
    fn write_buffer_matches_model(
        writes in prop::collection::vec((0u64..5000, 1usize..900, any::<u8>()), 1..40),
        cut in 0u64..6000,
    ) {
        let mut w = WriteBuffer::new();
        let mut model: Vec<Option<u8>> = vec![None; 6000];
        for (off, len, b) in &writes {
            w.write(*off, &vec![*b; *len]);
            model[*off as usize..*off as usize + len].fill(Some(*b));
        }
        w.truncate(cut);
        model[cut as usize..].fill(None);
        let mut got = vec![0u8; 6000];
        w.overlay(0, &mut got);
        let want: Vec<u8> = model.iter().map(|x| x.unwrap_or(0)).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(w.bytes(), model.iter().filter(|x| x.is_some()).count());
        for a in (0..5950).step_by(97) {
            let inside = model[a..a + 50].iter().all(|x| x.is_some());
            prop_assert_eq!(w.covering(a as u64, a as u64 + 50).is_some(), inside);
        }
        let mut last_end = None;
        for (o, d) in w.extents() {
            // Extents never overlap or touch (touching ones merge).
            prop_assert!(last_end.is_none_or(|e| e < o));
            last_end = Some(o + d.len() as u64);
        }
    }
}

/// What a punch of `len` bytes at `off` does to a file's bytes: zeros, clipped to the size.
fn punch_model(model: &mut [u8], off: u64, len: u64) {
    let n = model.len() as u64;
    let (a, b) = (off.min(n) as usize, off.saturating_add(len).min(n) as usize);
    model[a..b].fill(0);
}

/// The file's leaves with their start offsets.
fn leaves_at(e: &Env, c: &FileContent) -> Vec<(u64, pointer::Entry)> {
    let (root, height) = ContentEngine::root_entry(c).unwrap();
    let mut v = Vec::new();
    e.eng
        .collect_leaves((&root, height, None), &mut v, &mut tree::OldTree::default())
        .unwrap();
    let mut at = 0;
    v.into_iter()
        .map(|l| {
            at += l.len;
            (at - l.len, l)
        })
        .collect()
}

#[test]
fn punched_range_is_one_hole_and_stores_nothing() {
    for e in [env(), small_fanout_env()] {
        let model0 = rand_bytes(3_000_000, 21);
        let c0 = write(&e, &FileContent::default(), 0, &model0);
        for (a, b) in [
            (300_001, 1_700_003),
            (0, 65_536),
            (2_999_000, 3_000_000),
            (5, 9),
        ] {
            let mut model = model0.clone();
            punch_model(&mut model, a, b - a);
            let c = e.eng.punch(&c0, a, b).unwrap();
            assert_eq!(c.size, c0.size);
            assert!(read_all(&e, &c) == model, "punch {a}..{b}");
            assert_canonical(&e, &c);
            let leaves = leaves_at(&e, &c);
            // Exactly `a..b` is a hole (its neighbours are random data): nothing stored there.
            let holes: Vec<(u64, u64)> = leaves
                .iter()
                .filter(|(_, l)| l.r.is_none())
                .map(|(o, l)| (*o, o + l.len))
                .collect();
            assert_eq!(holes, vec![(a, b)]);
        }
        // Punching all of it leaves no tree at all; past the end changes nothing.
        let all = e.eng.punch(&c0, 0, u64::MAX).unwrap();
        assert_eq!(
            all,
            FileContent {
                size: c0.size,
                root: None
            }
        );
        assert_eq!(e.eng.punch(&c0, c0.size, c0.size + 10).unwrap(), c0);
    }
}

#[test]
fn writes_after_a_punch_take_the_general_path_and_stay_right() {
    let e = small_fanout_env();
    let mut model = rand_bytes(2_000_000, 22);
    let mut c = write(&e, &FileContent::default(), 0, &model);
    punch_model(&mut model, 100_000, 500_000);
    c = e.eng.punch(&c, 100_000, 600_000).unwrap();
    // An overwrite in the middle (the window path bails on the hole), one across the hole's
    // edge, and an append (the right edge has a hole before it).
    for (off, len, seed) in [
        (1_200_000, 70_000, 1),
        (550_000, 100_000, 2),
        (2_000_000, 300_000, 3),
    ] {
        let d = rand_bytes(len, seed);
        model.resize(model.len().max(off + len), 0);
        model[off..off + len].copy_from_slice(&d);
        c = write(&e, &c, off as u64, &d);
        assert!(read_all(&e, &c) == model);
        assert_canonical(&e, &c);
    }
}

/// Reads `c` in `step`-byte requests from `from` to the end, checking each against `model`.
fn read_seq(e: &Env, c: &FileContent, model: &[u8], from: usize, step: usize) {
    let mut off = from;
    while off < model.len() {
        let got = e.eng.read(c, off as u64, step).unwrap();
        let end = (off + step).min(model.len());
        assert_eq!(got, &model[off..end], "read at {off}");
        off = end;
    }
}

/// Waits until read-ahead jobs are done (the pool has nothing in flight).
fn settle(e: &Env) {
    for _ in 0..500 {
        if e.eng.fetch.idle() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

#[test]
fn read_ahead_serves_right_data_sequential_random_and_after_overwrites() {
    let e = env_with(ContentOptions {
        cache_bytes: 8 << 20,
        ..ContentOptions::default()
    });
    let mut model = rand_bytes(12 << 20, 11);
    let mut c = write(&e, &FileContent::default(), 0, &model);
    e.eng.clear_cache();
    read_seq(&e, &c, &model, 0, 128 << 10);
    settle(&e);
    assert!(e.eng.cache_bytes() <= 8 << 20, "cache bound");
    // Random order: read-ahead may trigger on near-sequential pairs, never with wrong bytes.
    let offs = rand_bytes(64, 5);
    for (i, b) in offs.iter().enumerate() {
        let off = (*b as usize * 47_111 + i * 4096) % model.len();
        let got = e.eng.read(&c, off as u64, 200_000).unwrap();
        assert_eq!(got, &model[off..(off + 200_000).min(model.len())]);
    }
    // Overwrites interleaved with a sequential scan: each new root is read whole.
    for round in 0..4u64 {
        let off = (round as usize * 3_000_017) % (model.len() - 300_000);
        let patch = rand_bytes(300_000, 100 + round);
        model[off..off + patch.len()].copy_from_slice(&patch);
        let old = c;
        c = write(&e, &c, off as u64, &patch);
        assert_ne!(old.root, c.root);
        read_seq(&e, &c, &model, off.saturating_sub(1 << 20), 1 << 20);
        read_seq(&e, &c, &model, 0, 128 << 10);
    }
    settle(&e);
    assert!(e.eng.cache_bytes() <= 8 << 20, "cache bound");
}

#[test]
fn read_ahead_stays_within_a_tiny_cache() {
    let e = env_with(ContentOptions {
        cache_bytes: 1 << 20,
        ..ContentOptions::default()
    });
    let model = rand_bytes(6 << 20, 3);
    let c = write(&e, &FileContent::default(), 0, &model);
    e.eng.clear_cache();
    read_seq(&e, &c, &model, 0, 64 << 10);
    settle(&e);
    assert!(e.eng.cache_bytes() <= 1 << 20);
}

/// A source over a `local` store backed by `remote`, counting the asks that go remote.
struct Layered {
    local: Arc<BlockStore>,
    remote: Arc<BlockStore>,
    remote_asks: std::sync::atomic::AtomicUsize,
}

impl BlockSource for Layered {
    fn get_block(&self, id: &BlockId) -> Result<Vec<u8>, StoreError> {
        if self.local.has(id)? {
            return self.local.get(id);
        }
        self.remote_asks
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.remote.get(id)
    }
}

#[test]
fn missing_for_read_names_blocks_level_by_level_and_never_asks_remote() {
    let e = small_fanout_env();
    let model = rand_bytes(4 << 20, 21);
    let c = write(&e, &FileContent::default(), 0, &model);
    let dir = tempfile::tempdir().unwrap();
    let local = Arc::new(BlockStore::open(dir.path(), StoreOptions::default()).unwrap());
    let src = Arc::new(Layered {
        local: local.clone(),
        remote: e.store.clone(),
        remote_asks: Default::default(),
    });
    let keys = Arc::new(VolumeKeys::derive(&VolumeSecret([7; 32])));
    let eng = ContentEngine::new(local.clone(), src.clone(), keys);
    let (off, len) = (1 << 20, 1 << 20);
    let mut rounds = 0;
    loop {
        let missing = eng.missing_for_read(&c, off, len).unwrap();
        if missing.is_empty() {
            break;
        }
        rounds += 1;
        for id in missing {
            assert!(!local.has(&id).unwrap(), "{id} listed but local");
            local.put(&e.store.get(&id).unwrap(), Class::Own).unwrap();
        }
    }
    assert!(
        rounds >= 2,
        "a tree several levels deep took {rounds} rounds"
    );
    // Sequential reads of what is local schedule read-ahead past it: the pool must skip the
    // chunks that are not local rather than ask the source for them.
    for at in (off..off + len as u64).step_by(256 << 10) {
        let got = eng.read(&c, at, 256 << 10).unwrap();
        assert_eq!(got, &model[at as usize..at as usize + (256 << 10)]);
    }
    for _ in 0..500 {
        if eng.fetch.idle() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let asks = src.remote_asks.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(asks, 0, "reads of local blocks asked the remote source");
    assert!(!eng.missing_for_read(&c, 3 << 20, 4096).unwrap().is_empty());
    assert!(eng.missing_for_read(&c, 8 << 20, 4096).unwrap().is_empty());
}
