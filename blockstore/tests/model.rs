//! Random put/get/commit/reopen/gc sequences against a HashMap model. An uncommitted block
//! may survive a reopen (roll-forward of intact records), but is never wrong.
#![allow(clippy::unwrap_used)] // tests panic on purpose
use blockstore::{BlockId, BlockStore, Class, StoreError, StoreOptions};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::Path;

const SIZES: [usize; 6] = [0, 1, 100, 5000, 70_000, 300_000];

fn block(key: u8) -> Vec<u8> {
    // Distinct keys must give distinct blocks: only key 0 is the empty block.
    let len = match SIZES[key as usize % SIZES.len()] {
        0 if key != 0 => 1,
        len => len,
    };
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13) ^ key)
        .collect::<Vec<u8>>()
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8),
    Get(u8),
    Commit,
    Reopen,
    Gc(u32),
    Pin(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..24).prop_map(Op::Put),
        4 => (0u8..24).prop_map(Op::Get),
        2 => Just(Op::Commit),
        1 => Just(Op::Reopen),
        1 => any::<u32>().prop_map(Op::Gc),
        1 => (0u8..24).prop_map(Op::Pin),
    ]
}

fn open(dir: &Path) -> BlockStore {
    let o = StoreOptions {
        cache_quota: 1 << 30,
        data_file_size: 256 << 10,
    };
    BlockStore::open(dir, o).unwrap()
}

#[derive(Default)]
struct Model {
    committed: HashMap<u8, Vec<u8>>,
    pending: HashMap<u8, Vec<u8>>,
    /// Pins that reached the index.
    pins: HashSet<u8>,
    /// Pins since the last commit: lost on reopen.
    pending_pins: HashSet<u8>,
}

impl Model {
    fn get(&self, k: u8) -> Option<&Vec<u8>> {
        self.committed.get(&k).or_else(|| self.pending.get(&k))
    }

    fn commit(&mut self) {
        self.committed.extend(self.pending.drain());
        self.pins.extend(self.pending_pins.drain());
    }
}

fn run(ops: Vec<Op>) {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = open(tmp.path());
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Put(k) => {
                let data = block(k);
                assert_eq!(store.put(&data, Class::Own).unwrap(), BlockId::of(&data));
                if model.get(k).is_none() {
                    model.pending.insert(k, data);
                }
            }
            Op::Get(k) => match (model.get(k), store.get(&BlockId::of(&block(k)))) {
                (Some(want), Ok(got)) => assert_eq!(&got, want),
                (None, Err(StoreError::NotFound(_))) => {}
                (want, got) => panic!("key {k}: model {:?}, store {got:?}", want.map(Vec::len)),
            },
            Op::Commit => {
                store.commit().unwrap();
                model.commit();
            }
            Op::Reopen => {
                drop(store);
                store = open(tmp.path());
                // Uncommitted blocks that reached the OS are rolled forward (intact records
                // past the committed length); the others are gone. Either way, unpinned.
                model
                    .pending
                    .retain(|_, data| store.has(&BlockId::of(data)).unwrap());
                model.pending_pins.clear();
            }
            Op::Pin(k) => match (model.get(k).is_some(), store.pin(&BlockId::of(&block(k)))) {
                (true, Ok(())) => {
                    model.pending_pins.insert(k);
                }
                (false, Err(StoreError::NotFound(_))) => {}
                (want, got) => panic!("pin {k}: model has it {want}, store {got:?}"),
            },
            Op::Gc(mask) => {
                let live: HashSet<BlockId> = (0u8..24)
                    .filter(|k| mask & (1 << k) != 0)
                    .map(|k| BlockId::of(&block(k)))
                    .collect();
                store.gc(&live).unwrap();
                model.commit();
                let pins = model.pins.clone();
                model
                    .committed
                    .retain(|k, _| mask & (1 << k) != 0 || pins.contains(k));
            }
        }
    }
    drop(store);
    let store = open(tmp.path());
    for k in 0u8..24 {
        let has = store.has(&BlockId::of(&block(k))).unwrap();
        if !model.pending.contains_key(&k) {
            assert_eq!(has, model.committed.contains_key(&k), "block {k}");
        }
    }
    assert_eq!(store.stats().pinned_blocks, model.pins.len() as u64);
    let report = store.fsck(false).unwrap();
    assert!(
        report.corrupt.is_empty() && report.dangling.is_empty(),
        "{report:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn store_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
