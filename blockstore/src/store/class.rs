//! Storage classes: what keeps a block in the store (docs/formats/blockstore.md).

/// Storage class of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Our own data: kept until GC finds it unreachable.
    Own,
    /// Someone else's block fetched for reading: LRU-evicted under the cache quota.
    Cached,
}
