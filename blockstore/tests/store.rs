//! Block store behaviour through the public API only.
#![allow(clippy::unwrap_used)] // tests panic on purpose
use blockstore::{BlockId, BlockStore, Class, StoreError, StoreOptions};
use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

fn opts() -> StoreOptions {
    StoreOptions {
        cache_quota: 1 << 20,
        data_file_size: 1 << 20,
    }
}

fn block(n: u32, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    for (i, b) in v.iter_mut().enumerate() {
        *b = (i as u32)
            .wrapping_mul(31)
            .wrapping_add(n.wrapping_mul(7919)) as u8;
    }
    let k = len.min(4);
    v[..k].copy_from_slice(&n.to_le_bytes()[..k]);
    v
}

fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "blk"))
        .collect();
    v.sort();
    v
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

#[test]
fn round_trip_and_dedup() {
    let tmp = tempfile::tempdir().unwrap();
    let s = BlockStore::open(tmp.path(), opts()).unwrap();
    for len in [0, 1, 4096, 300_000] {
        let data = block(len as u32, len);
        let id = s.put(&data, Class::Own).unwrap();
        assert_eq!(id, BlockId::of(&data));
        assert!(s.has(&id).unwrap());
        assert_eq!(s.get(&id).unwrap(), data);
    }
    let data = block(9, 1000);
    let id = s.put(&data, Class::Cached).unwrap();
    let before = s.stats();
    assert_eq!(s.put(&data, Class::Cached).unwrap(), id);
    assert_eq!(s.stats(), before);
    s.put(&data, Class::Own).unwrap();
    let after = s.stats();
    assert_eq!(
        (after.cached_blocks, after.own_blocks),
        (0, before.own_blocks + 1)
    );
    assert_eq!(after.disk_bytes, before.disk_bytes);
    let missing = BlockId::of(b"nope");
    assert!(matches!(s.get(&missing), Err(StoreError::NotFound(_))));
    assert!(!s.has(&missing).unwrap());
}

#[test]
fn reopen_after_commit_keeps_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    {
        let s = BlockStore::open(tmp.path(), opts()).unwrap();
        for n in 0..50 {
            ids.push((n, s.put(&block(n, 70_000), Class::Own).unwrap()));
        }
        s.pin(&ids[3].1).unwrap();
        s.commit().unwrap();
    }
    let s = BlockStore::open(tmp.path(), opts()).unwrap();
    assert!(
        data_files(tmp.path()).len() > 1,
        "small data_file_size must roll files"
    );
    for (n, id) in &ids {
        assert_eq!(s.get(id).unwrap(), block(*n, 70_000));
    }
    assert_eq!(s.stats().pinned_blocks, 1);
}

#[test]
fn uncommitted_puts_still_buffered_are_gone_after_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let kept = block(1, 5000);
    let lost = block(2, 5000);
    let committed_len;
    {
        let s = BlockStore::open(tmp.path(), opts()).unwrap();
        s.put(&kept, Class::Own).unwrap();
        s.commit().unwrap();
        committed_len = file_len(&data_files(tmp.path())[0]);
        s.put(&lost, Class::Own).unwrap(); // stays in the write buffer: never reaches the OS
    }
    let s = BlockStore::open(tmp.path(), opts()).unwrap();
    assert_eq!(file_len(&data_files(tmp.path())[0]), committed_len);
    assert_eq!(s.get(&BlockId::of(&kept)).unwrap(), kept);
    assert!(!s.has(&BlockId::of(&lost)).unwrap());
    // Writing resumes cleanly after the cut.
    let id = s.put(&lost, Class::Own).unwrap();
    s.commit().unwrap();
    drop(s);
    let s = BlockStore::open(tmp.path(), opts()).unwrap();
    assert_eq!(s.get(&id).unwrap(), lost);
}

#[test]
fn soft_flushed_puts_are_rolled_forward_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let committed = block(1, 5000);
    let soft = [block(2, 5000), block(3, 300_000)];
    {
        let s = BlockStore::open(tmp.path(), opts()).unwrap();
        s.put(&committed, Class::Own).unwrap();
        s.commit().unwrap();
        let ids: Vec<BlockId> = soft.iter().map(|b| s.put(b, Class::Own).unwrap()).collect();
        assert_eq!(s.soft_flush().unwrap(), ids);
        assert!(
            s.soft_flush().unwrap().is_empty(),
            "ids are handed out once"
        );
    }
    let s = BlockStore::open(tmp.path(), opts()).unwrap();
    for b in soft.iter().chain([&committed]) {
        assert_eq!(&s.get(&BlockId::of(b)).unwrap(), b);
    }
    // Appending resumes after the kept records; a commit makes them part of the index.
    let more = block(4, 7000);
    s.put(&more, Class::Own).unwrap();
    s.commit().unwrap();
    drop(s);
    let s = BlockStore::open(tmp.path(), opts()).unwrap();
    for b in soft.iter().chain([&committed, &more]) {
        assert_eq!(&s.get(&BlockId::of(b)).unwrap(), b);
    }
    assert!(s.fsck(false).unwrap().corrupt.is_empty());
}

#[test]
fn garbage_tail_is_cut_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let data = block(1, 10_000);
    {
        let s = BlockStore::open(tmp.path(), opts()).unwrap();
        s.put(&data, Class::Own).unwrap();
        s.commit().unwrap();
    }
    let path = data_files(tmp.path())[0].clone();
    let len = file_len(&path);
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&[0xAB; 777])
        .unwrap();
    let s = BlockStore::open(tmp.path(), opts()).unwrap();
    assert_eq!(file_len(&path), len);
    assert_eq!(s.get(&BlockId::of(&data)).unwrap(), data);
    assert!(s.fsck(false).unwrap().corrupt.is_empty());
}

#[test]
fn damaged_file_header_is_a_format_error() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let s = BlockStore::open(tmp.path(), opts()).unwrap();
        s.put(&block(1, 100), Class::Own).unwrap();
        s.commit().unwrap();
    }
    let path = data_files(tmp.path())[0].clone();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] = b'X';
    std::fs::write(&path, bytes).unwrap();
    assert!(matches!(
        BlockStore::open(tmp.path(), opts()),
        Err(StoreError::Format { .. })
    ));
}

#[test]
fn flipped_byte_is_corrupt_and_fsck_finds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let good = block(1, 4096);
    let bad = block(2, 4096);
    {
        let s = BlockStore::open(tmp.path(), opts()).unwrap();
        s.put(&good, Class::Own).unwrap();
        s.put(&bad, Class::Own).unwrap();
        s.commit().unwrap();
    }
    // The second record's bytes start after the file header, a record, and a record header.
    let path = data_files(tmp.path())[0].clone();
    let mut bytes = std::fs::read(&path).unwrap();
    let at = 32 + 48 + 4096 + 48 + 100;
    bytes[at] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let s = BlockStore::open(tmp.path(), opts()).unwrap();
    let bad_id = BlockId::of(&bad);
    match s.get(&bad_id) {
        Err(StoreError::Corrupt { id, actual }) => {
            assert_eq!(id, bad_id);
            assert_ne!(actual, bad_id);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(s.get(&BlockId::of(&good)).unwrap(), good);
    let report = s.fsck(false).unwrap();
    assert_eq!(report.corrupt, vec![bad_id]);
    assert_eq!(report.blocks_checked, 2);
    let report = s.fsck(true).unwrap();
    assert_eq!(report.corrupt, vec![bad_id]);
    assert!(!s.has(&bad_id).unwrap());
    assert!(s.fsck(false).unwrap().corrupt.is_empty());
}

#[test]
fn fsck_repair_rebuilds_a_deleted_index() {
    let tmp = tempfile::tempdir().unwrap();
    let mut blocks = Vec::new();
    {
        let s = BlockStore::open(tmp.path(), opts()).unwrap();
        for n in 0..40 {
            let data = block(n, 50_000);
            s.put(&data, Class::Own).unwrap();
            blocks.push(data);
        }
        s.commit().unwrap();
    }
    std::fs::remove_file(tmp.path().join("index.redb")).unwrap();
    assert!(matches!(
        BlockStore::open(tmp.path(), opts()),
        Err(StoreError::IndexDamaged { .. })
    ));
    {
        let (s, moved) = BlockStore::open_rebuilding_index(tmp.path(), opts()).unwrap();
        assert_eq!(moved, None);
        assert!(!s.has(&BlockId::of(&blocks[0])).unwrap());
        let report = s.fsck(true).unwrap();
        assert_eq!(report.repaired, 40);
        assert_eq!(report.rebuilt.len(), 40);
        for data in &blocks {
            assert_eq!(s.get(&BlockId::of(data)).unwrap(), *data);
        }
        // New writes go to a fresh file, never over an adopted one.
        s.put(&block(99, 10), Class::Own).unwrap();
        s.commit().unwrap();
    }
    let s = BlockStore::open(tmp.path(), opts()).unwrap();
    for data in &blocks {
        assert_eq!(s.get(&BlockId::of(data)).unwrap(), *data);
    }
    assert_eq!(s.fsck(true).unwrap().repaired, 0);
}

#[test]
fn a_truncated_index_is_damaged_and_rebuilt_from_the_data_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut blocks = Vec::new();
    {
        let s = BlockStore::open(tmp.path(), opts()).unwrap();
        for n in 0..300 {
            let data = block(n, 10_000);
            s.put(&data, Class::Own).unwrap();
            s.commit().unwrap();
            blocks.push(data);
        }
    }
    let index = tmp.path().join("index.redb");
    let len = file_len(&index);
    OpenOptions::new()
        .write(true)
        .open(&index)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    match BlockStore::open(tmp.path(), opts()) {
        Err(StoreError::IndexDamaged { path, .. }) => assert_eq!(path, index),
        Err(e) => panic!("want IndexDamaged, got {e}"),
        Ok(_) => panic!("a half index opened"),
    }
    let (s, moved) = BlockStore::open_rebuilding_index(tmp.path(), opts()).unwrap();
    assert_eq!(moved, Some(tmp.path().join("index.redb.damaged")));
    let report = s.fsck(true).unwrap();
    assert_eq!(report.rebuilt.len(), 300);
    // The layer above says which blocks are still reachable; the others become cache.
    let unreachable: Vec<BlockId> = blocks[..100].iter().map(|b| BlockId::of(b)).collect();
    assert_eq!(s.make_cached(&unreachable).unwrap(), 100);
    drop(s);
    let s = BlockStore::open(tmp.path(), opts()).unwrap();
    for data in &blocks[100..] {
        assert_eq!(s.get(&BlockId::of(data)).unwrap(), *data);
    }
    assert_eq!(s.stats().own_blocks, 200);
    assert!(s.gc(&HashSet::new()).unwrap().blocks_removed == 200);
}

#[test]
fn gc_removes_unreachable_and_compaction_shrinks_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let s = BlockStore::open(tmp.path(), opts()).unwrap();
    let ids: Vec<BlockId> = (0..60)
        .map(|n| s.put(&block(n, 60_000), Class::Own).unwrap())
        .collect();
    let cached = s.put(&block(1000, 1000), Class::Cached).unwrap();
    s.commit().unwrap();
    let pinned = ids[1];
    s.pin(&pinned).unwrap();
    let live: HashSet<BlockId> = ids.iter().step_by(10).copied().collect();
    let before = s.stats().disk_bytes;
    let stats = s.gc(&live).unwrap();
    assert_eq!(stats.blocks_removed, 60 - 6 - 1);
    assert_eq!(stats.bytes_removed, 53 * 60_000);
    assert!(stats.bytes_reclaimed > 0);
    let after = s.stats().disk_bytes;
    assert!(after < before / 2, "disk {before} -> {after}");
    for (n, id) in ids.iter().enumerate() {
        let keep = live.contains(id) || *id == pinned;
        assert_eq!(s.has(id).unwrap(), keep, "block {n}");
        if keep {
            assert_eq!(s.get(id).unwrap(), block(n as u32, 60_000));
        }
    }
    assert!(
        s.has(&cached).unwrap(),
        "gc leaves cached blocks to the cache"
    );
    drop(s);
    let s = BlockStore::open(tmp.path(), opts()).unwrap();
    assert_eq!(s.get(&pinned).unwrap(), block(1, 60_000));
    assert!(!s.has(&ids[2]).unwrap());
    let report = s.fsck(false).unwrap();
    assert!(report.corrupt.is_empty() && report.dangling.is_empty());
}

#[test]
fn gc_compacts_the_active_data_file() {
    // One big data file, as in a volume's first GiB: everything sits in the active file.
    let big = StoreOptions {
        cache_quota: 1 << 20,
        data_file_size: 1 << 30,
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = BlockStore::open(tmp.path(), big.clone()).unwrap();
    let ids: Vec<BlockId> = (0..300)
        .map(|n| s.put(&block(n, 100_000), Class::Own).unwrap())
        .collect();
    s.commit().unwrap();
    assert_eq!(data_files(tmp.path()).len(), 1);
    let live: HashSet<BlockId> = ids.iter().step_by(30).copied().collect();
    let before = s.stats().disk_bytes;
    let stats = s.gc(&live).unwrap();
    assert_eq!(stats.blocks_removed, 290);
    let after = s.stats().disk_bytes;
    let on_disk: u64 = data_files(tmp.path()).iter().map(|p| file_len(p)).sum();
    assert_eq!(on_disk, after);
    assert!(
        after < before / 10,
        "disk {before} -> {after}, reclaimed {}",
        stats.bytes_reclaimed
    );
    assert!(stats.bytes_reclaimed >= before - after);
    // Writes go on after the active file was sealed and compacted.
    let later = s.put(&block(5000, 1000), Class::Own).unwrap();
    s.commit().unwrap();
    drop(s);
    let s = BlockStore::open(tmp.path(), big).unwrap();
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(s.has(id).unwrap(), live.contains(id), "block {n}");
        if live.contains(id) {
            assert_eq!(s.get(id).unwrap(), block(n as u32, 100_000));
        }
    }
    assert_eq!(s.get(&later).unwrap(), block(5000, 1000));
    let report = s.fsck(false).unwrap();
    assert!(report.corrupt.is_empty() && report.dangling.is_empty());
}

#[test]
fn cache_quota_evicts_lru_cached_only() {
    let tmp = tempfile::tempdir().unwrap();
    let o = StoreOptions {
        cache_quota: 10_000,
        data_file_size: 1 << 20,
    };
    let s = BlockStore::open(tmp.path(), o.clone()).unwrap();
    let own = s.put(&block(0, 8000), Class::Own).unwrap();
    let pinned = s.put(&block(1, 4000), Class::Cached).unwrap();
    s.pin(&pinned).unwrap();
    let a = s.put(&block(2, 4000), Class::Cached).unwrap();
    let b = s.put(&block(3, 4000), Class::Cached).unwrap();
    assert!(s.has(&a).unwrap() && s.has(&b).unwrap());
    let c = s.put(&block(4, 4000), Class::Cached).unwrap();
    assert!(!s.has(&a).unwrap(), "least recently used goes first");
    assert!(s.has(&b).unwrap() && s.has(&c).unwrap());
    s.get(&b).unwrap(); // b is now most recently used
    let d = s.put(&block(5, 4000), Class::Cached).unwrap();
    assert!(!s.has(&c).unwrap());
    assert!(s.has(&b).unwrap() && s.has(&d).unwrap());
    assert!(s.has(&own).unwrap() && s.has(&pinned).unwrap());
    let st = s.stats();
    assert!(
        st.cached_bytes <= 10_000 + 4000,
        "pinned is outside the quota: {st:?}"
    );
    s.commit().unwrap();
    drop(s);
    let s = BlockStore::open(tmp.path(), o).unwrap();
    assert!(!s.has(&a).unwrap() && !s.has(&c).unwrap());
    assert!(s.has(&own).unwrap() && s.has(&pinned).unwrap() && s.has(&b).unwrap());
}

#[test]
fn concurrent_readers_and_a_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let s = BlockStore::open(
        tmp.path(),
        StoreOptions {
            cache_quota: 1 << 30,
            data_file_size: 256 << 10,
        },
    )
    .unwrap();
    let first: Vec<BlockId> = (0..20)
        .map(|n| s.put(&block(n, 3000), Class::Own).unwrap())
        .collect();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for n in 20..400 {
                let id = s.put(&block(n, 3000), Class::Own).unwrap();
                assert_eq!(s.get(&id).unwrap(), block(n, 3000));
                if n % 50 == 0 {
                    s.commit().unwrap();
                }
            }
        });
        for _ in 0..2 {
            scope.spawn(|| {
                for _ in 0..50 {
                    for (n, id) in first.iter().enumerate() {
                        assert_eq!(s.get(id).unwrap(), block(n as u32, 3000));
                    }
                }
            });
        }
    });
}

#[test]
fn put_batch_matches_put() {
    let tmp = tempfile::tempdir().unwrap();
    let s = BlockStore::open(tmp.path(), opts()).unwrap();
    let blocks: Vec<Vec<u8>> = (0..10).map(|n| block(n, 1000 * n as usize)).collect();
    let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
    let ids = s.put_batch(&refs, Class::Own).unwrap();
    assert_eq!(
        ids,
        blocks.iter().map(|b| BlockId::of(b)).collect::<Vec<_>>()
    );
    let again = s.put_batch(&refs[..3], Class::Own).unwrap();
    assert_eq!(again, ids[..3]);
    s.commit().unwrap();
    drop(s);
    let s = BlockStore::open(tmp.path(), opts()).unwrap();
    for (id, data) in ids.iter().zip(&blocks) {
        assert_eq!(s.get(id).unwrap(), *data);
    }
    let huge = vec![0u8; blockstore::MAX_BLOCK_LEN + 1];
    assert!(matches!(
        s.put(&huge, Class::Own),
        Err(StoreError::TooLarge(_))
    ));
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<BlockStore>();
}
