//! Throughput of `put` (buffered, no commit) and verified `get` (from the page cache).
//!
//! `cargo bench -p fossa-blockstore --bench store -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn
use blockstore::{BlockId, BlockStore, Class, StoreOptions};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const SIZES: [(usize, &str); 3] = [(4 << 10, "4KiB"), (64 << 10, "64KiB"), (1 << 20, "1MiB")];
/// A put store is thrown away (outside the timing) after this many bytes, so the benchmark
/// neither fills the disk nor runs into dirty-page writeback throttling.
const PUT_STORE_BYTES: u64 = 512 << 20;
/// Bytes of blocks the get benchmark reads round-robin.
const GET_SET_BYTES: usize = 256 << 20;

fn fresh() -> (TempDir, BlockStore) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = BlockStore::open(tmp.path(), StoreOptions::default()).expect("open");
    (tmp, store)
}

fn payload(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(151) ^ (i >> 9) as u8)
        .collect()
}

fn bench_put(c: &mut Criterion) {
    let mut group = c.benchmark_group("put");
    for (size, label) in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let mut data = payload(size);
        let mut counter = 0u64;
        let (mut tmp, mut store) = fresh();
        let mut written = 0u64;
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    if written + size as u64 > PUT_STORE_BYTES {
                        // Assigning drops the old store and deletes its directory.
                        (tmp, store) = fresh();
                        written = 0;
                    }
                    let n = left.min((PUT_STORE_BYTES - written) / size as u64).max(1);
                    let start = Instant::now();
                    for _ in 0..n {
                        counter += 1;
                        data[..8].copy_from_slice(&counter.to_le_bytes());
                        store.put(&data, Class::Own).expect("put");
                    }
                    total += start.elapsed();
                    written += n * size as u64;
                    left -= n;
                }
                total
            });
        });
    }
    group.finish();
}

fn bench_get(c: &mut Criterion) {
    let mut group = c.benchmark_group("get");
    for (size, label) in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let (_tmp, store) = fresh();
        let mut data = payload(size);
        let ids: Vec<BlockId> = (0..(GET_SET_BYTES / size) as u64)
            .map(|n| {
                data[..8].copy_from_slice(&n.to_le_bytes());
                store.put(&data, Class::Own).expect("put")
            })
            .collect();
        store.commit().expect("commit");
        let mut i = 0;
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| {
                i = (i + 1) % ids.len();
                store.get(&ids[i]).expect("get")
            });
        });
    }
    group.finish();
}

/// What the hardware gives for the same sizes right now: BLAKE3 alone, and `pwrite`/`pread`
/// of the same bytes without the store. On a shared machine this is the yardstick.
fn bench_baseline(c: &mut Criterion) {
    use std::os::unix::fs::FileExt;
    let mut group = c.benchmark_group("baseline");
    for (size, label) in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let data = payload(size);
        group.bench_function(BenchmarkId::new("blake3", label), |b| {
            b.iter(|| BlockId::of(&data))
        });
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = std::fs::File::create(tmp.path().join("raw")).expect("create");
        let mut at = 0u64;
        group.bench_function(BenchmarkId::new("pwrite", label), |b| {
            b.iter(|| {
                if at + size as u64 > PUT_STORE_BYTES {
                    file.set_len(0).expect("truncate");
                    at = 0;
                }
                file.write_all_at(&data, at).expect("write");
                at += size as u64;
            });
        });
        file.set_len(0).expect("truncate");
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .open(tmp.path().join("raw"))
            .expect("open");
        let blocks = (GET_SET_BYTES / size) as u64;
        for n in 0..blocks {
            file.write_all_at(&data, n * size as u64).expect("write");
        }
        let mut n = 0;
        group.bench_function(BenchmarkId::new("pread", label), |b| {
            b.iter(|| {
                n = (n + 1) % blocks;
                let mut buf = vec![0u8; size];
                file.read_exact_at(&mut buf, n * size as u64).expect("read");
                buf
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_put, bench_get, bench_baseline);
criterion_main!(benches);
