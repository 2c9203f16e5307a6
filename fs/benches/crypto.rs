//! AEAD throughput of the convergent block construction: `seal_block` / `open_block` on 64 KiB
//! and 256 KiB plaintexts (the time includes the BLAKE3 key derivation and check).
//!
//! Run: `cargo bench -p fossa-fs --bench crypto -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs, clippy::unwrap_used)]
use blockstore::BlockId;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fossa_fs::crypto::{BlockRef, VolumeKeys, VolumeSecret};
mod common;
use common::rand_bytes;
use std::hint::black_box;

fn blocks(c: &mut Criterion) {
    let keys = VolumeKeys::derive(&VolumeSecret([7; 32]));
    let mut g = c.benchmark_group("block");
    for kib in [64usize, 256] {
        let p = rand_bytes(kib << 10, kib as u64);
        g.throughput(Throughput::Bytes(p.len() as u64));
        g.bench_function(format!("seal_{kib}KiB"), |b| {
            b.iter(|| keys.seal_block(black_box(&p)).unwrap())
        });
        let (key, sealed) = keys.seal_block(&p).unwrap();
        let r = BlockRef {
            id: BlockId::of(&sealed),
            key,
        };
        g.bench_function(format!("open_{kib}KiB"), |b| {
            b.iter(|| keys.open_block(&r, black_box(&sealed)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, blocks);
criterion_main!(benches);
