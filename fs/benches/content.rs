//! Content engine throughput: the chunk + encrypt + hash + put pipeline, and reads (sequential
//! 128 KiB, random 4 KiB; cache cold and warm); small appends and overwrites in files of
//! growing size, updated around the change and by the whole-tree rebuild this replaced.
//!
//! Run: `cargo bench -p fossa-fs --bench content -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs, clippy::unwrap_used)]
use blockstore::{BlockStore, StoreOptions};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use fossa_fs::crypto::{VolumeKeys, VolumeSecret};
use fossa_fs::file::{
    AVG_CHUNK, ContentEngine, ContentOptions, FileContent, MAX_CHUNK, MIN_CHUNK, WriteBuffer,
    chunk_lengths,
};
mod common;
use common::rand_bytes;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

const FILE: usize = 64 << 20;

/// User + system CPU time of this process (Linux `/proc/self/stat`, 100 ticks per second).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = after.split(' ').map(|x| x.parse().unwrap_or(0)).collect();
    Duration::from_millis((f[11] + f[12]) * 10)
}

fn engine() -> (TempDir, ContentEngine) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(BlockStore::open(dir.path(), StoreOptions::default()).unwrap());
    let keys = Arc::new(VolumeKeys::derive(&VolumeSecret([3; 32])));
    let opts = ContentOptions {
        cache_bytes: 128 << 20,
        ..ContentOptions::default()
    };
    (
        dir,
        ContentEngine::with_options(store.clone(), store, keys, opts),
    )
}

/// One 4 KiB update (as an `fsync` after each small write makes it) to files of 64 MiB and
/// 1 GiB: an append at the end and an overwrite in the middle. Updated around the change, the
/// cost should not grow with the file; the whole-tree rebuild flattens every leaf each time.
fn small_updates(c: &mut Criterion) {
    let mut g = c.benchmark_group("update_4KiB");
    g.sample_size(20);
    let tail = rand_bytes(4096, 9);
    for (name, size) in [("64MiB", 64usize << 20), ("1GiB", 1 << 30)] {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(BlockStore::open(dir.path(), StoreOptions::default()).unwrap());
        let keys = Arc::new(VolumeKeys::derive(&VolumeSecret([3; 32])));
        let make = |whole_tree_updates| {
            let opts = ContentOptions {
                cache_bytes: 128 << 20,
                whole_tree_updates,
                ..ContentOptions::default()
            };
            ContentEngine::with_options(store.clone(), store.clone(), keys.clone(), opts)
        };
        let (local, whole) = (make(false), make(true));
        // Written as the fs flushes a stream: 16 MiB at a time.
        let mut file = FileContent::default();
        for i in 0..size / (16 << 20) {
            let mut w = WriteBuffer::new();
            w.write(
                (i * (16 << 20)) as u64,
                &rand_bytes(16 << 20, 100 + i as u64),
            );
            file = local
                .update(&file, ((i + 1) * (16 << 20)) as u64, &w)
                .unwrap();
        }
        for (path, e) in [("local", &local), ("whole_tree", &whole)] {
            let mut cur = file;
            g.bench_function(format!("append_to_{name}_{path}"), |b| {
                b.iter(|| {
                    let mut w = WriteBuffer::new();
                    w.write(cur.size, &tail);
                    cur = e.update(&cur, cur.size + 4096, &w).unwrap();
                    black_box(cur.size)
                })
            });
            let mut cur = file;
            let mut k = 0u64;
            g.bench_function(format!("overwrite_in_{name}_{path}"), |b| {
                b.iter(|| {
                    // A different 4 KiB page each time, spread over the file's middle half.
                    k += 1;
                    let at = (size as u64 / 4 + (k * 7_919 * 4096) % (size as u64 / 2)) & !4095;
                    let mut w = WriteBuffer::new();
                    w.write(at, &tail);
                    cur = e.update(&cur, cur.size, &w).unwrap();
                    black_box(cur.size)
                })
            });
        }
    }
    g.finish();
}

fn buffer(data: &[u8], extent: usize) -> WriteBuffer {
    let mut w = WriteBuffer::new();
    for (i, part) in data.chunks(extent).enumerate() {
        w.write((i * extent) as u64, part);
    }
    w
}

fn pipeline(c: &mut Criterion) {
    let data = rand_bytes(FILE, 1);
    let mut g = c.benchmark_group("write");
    g.sample_size(10).throughput(Throughput::Bytes(FILE as u64));
    let whole = buffer(&data, FILE);
    g.bench_function("64MiB_from_empty", |b| {
        b.iter_batched(
            engine,
            |(_d, e)| {
                black_box(
                    e.update(&FileContent::default(), FILE as u64, &whole)
                        .unwrap(),
                )
            },
            BatchSize::PerIteration,
        )
    });
    // The same work timed by process CPU time rather than wall time: on a loaded shared
    // machine wall time measures the neighbours; this gives bytes per CPU-second (two free
    // cores at perfect overlap would give up to twice this figure of wall-clock throughput).
    g.bench_function("64MiB_from_empty_cpu_time", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (_d, e) = engine();
                let t0 = cpu_time();
                black_box(
                    e.update(&FileContent::default(), FILE as u64, &whole)
                        .unwrap(),
                );
                total += cpu_time().saturating_sub(t0);
            }
            total
        })
    });
    // Sequential writing as the fs flushes it: four 16 MiB updates appended one by one.
    let parts: Vec<(u64, WriteBuffer)> = data
        .chunks(16 << 20)
        .enumerate()
        .map(|(i, p)| {
            let mut w = WriteBuffer::new();
            w.write((i * (16 << 20)) as u64, p);
            (((i + 1) * (16 << 20)) as u64, w)
        })
        .collect();
    g.bench_function("64MiB_as_16MiB_appends", |b| {
        b.iter_batched(
            engine,
            |(_d, e)| {
                let mut c = FileContent::default();
                for (size, w) in &parts {
                    c = e.update(&c, *size, w).unwrap();
                }
                black_box(c)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn reads(c: &mut Criterion) {
    let (_d, e) = engine();
    let data = rand_bytes(FILE, 2);
    let f = e
        .update(&FileContent::default(), FILE as u64, &buffer(&data, FILE))
        .unwrap();
    let mut g = c.benchmark_group("read");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(FILE as u64));
    let seq = |e: &ContentEngine| {
        for off in (0..FILE).step_by(128 << 10) {
            black_box(e.read(&f, off as u64, 128 << 10).unwrap());
        }
    };
    g.bench_function("seq_128KiB_cold", |b| {
        b.iter(|| {
            e.clear_cache();
            seq(&e)
        })
    });
    g.bench_function("seq_128KiB_warm", |b| b.iter(|| seq(&e)));
    const N: usize = 2048;
    let offs: Vec<u64> = rand_bytes(N * 8, 3)
        .chunks(8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()) % (FILE as u64 - 4096))
        .collect();
    g.throughput(Throughput::Bytes((N * 4096) as u64));
    let random = |e: &ContentEngine| {
        for o in &offs {
            black_box(e.read(&f, *o, 4096).unwrap());
        }
    };
    g.bench_function("random_4KiB_cold", |b| {
        b.iter(|| {
            e.clear_cache();
            random(&e)
        })
    });
    g.bench_function("random_4KiB_warm", |b| b.iter(|| random(&e)));
    g.finish();
}

/// The pipeline's stages alone, single-threaded, to see where write time goes.
fn stages(c: &mut Criterion) {
    let data = rand_bytes(FILE, 4);
    let keys = VolumeKeys::derive(&VolumeSecret([3; 32]));
    let mut g = c.benchmark_group("stage");
    g.sample_size(10).throughput(Throughput::Bytes(FILE as u64));
    g.bench_function("fastcdc_cut", |b| {
        b.iter(|| {
            let cdc = fastcdc::v2020::FastCDC::new(&data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK);
            black_box(cdc.count())
        })
    });
    // fossa's cutter: the same cuts as the crate's (tested in `file::chunker`).
    g.bench_function("fossa_cut", |b| {
        b.iter(|| black_box(chunk_lengths(&data).len()))
    });
    g.bench_function("seal_64KiB_blocks", |b| {
        b.iter(|| {
            for part in data.chunks(64 << 10) {
                black_box(keys.seal_block(part).unwrap());
            }
        })
    });
    g.bench_function("blake3", |b| b.iter(|| black_box(blake3::hash(&data))));
    g.finish();
}

criterion_group!(benches, stages, pipeline, reads, small_updates);
criterion_main!(benches);
