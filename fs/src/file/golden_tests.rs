//! Golden bytes of the pointer-block payload (`tests/fixtures/format-v1/fs-pointer-block.bin`).
use crate::crypto::BlockRef;
use crate::format::pointer::{Entry, decode_pointer, encode_pointer};
use crate::golden::check;
use blockstore::BlockId;

fn bref(seed: u8) -> BlockRef {
    BlockRef {
        id: BlockId([seed; 32]),
        key: [seed ^ 0xff; 32],
    }
}

#[test]
fn pointer_block() {
    let entries = [
        Entry {
            r: Some(bref(1)),
            len: 65_536,
        },
        Entry::hole(4096),
        Entry {
            r: Some(bref(2)),
            len: 1,
        },
    ];
    let p = encode_pointer(1, &entries);
    check("fs-pointer-block", &p);
    assert_eq!(
        decode_pointer(BlockId([0; 32]), 1, &p).expect("pointer"),
        entries
    );
}
