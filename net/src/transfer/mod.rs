//! Block streams (docs/protocol.md, "Block streams"): [`Transfer`] serves `GetBlocks` from
//! what this node holds (`serve.rs`) and fetches blocks from peers, every received block
//! checked against its id (`fetch.rs`). It owns the fetch state (the round-robin cursor, the
//! blocks in flight); the connection table, the local blocks and the rate limits are handed
//! to it.
mod fetch;
mod serve;

use crate::backend::Local;
use crate::error::FetchError;
use crate::limit::Rates;
use crate::links::Links;
use crate::proto::{FrameError, GetBlocks};
use blockstore::BlockId;
use fetch::InFlight;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

/// Room for the message envelope around a block's bytes.
pub(crate) const BLOCK_ENVELOPE: usize = 64;

/// The block-moving part of a node: serves `GetBlocks`, fetches from peers.
pub(crate) struct Transfer {
    links: Arc<Links>,
    local: Arc<Local>,
    rates: Arc<Rates>,
    /// Spreads requests over the peers that may have a block.
    rr: AtomicUsize,
    /// Blocks some fetch is asking peers for now, with who else waits for them: a second
    /// fetch of the same block waits for the first instead of moving its bytes again.
    fetching: Arc<InFlight>,
}

/// Where a fetch hands each block it has checked against its id, as soon as it arrives.
pub type BlockSink = Arc<dyn Fn(BlockId, bytes::Bytes) + Send + Sync>;

impl Transfer {
    pub(crate) fn new(links: Arc<Links>, local: Arc<Local>, rates: Arc<Rates>) -> Self {
        Transfer {
            links,
            local,
            rates,
            rr: AtomicUsize::new(0),
            fetching: Arc::default(),
        }
    }

    /// Answers one `GetBlocks` on `send` (the blocks in order, an absent one for each not
    /// held), then finishes the stream.
    pub(crate) async fn serve_get(
        &self,
        req: GetBlocks,
        send: &mut quinn::SendStream,
    ) -> Result<(), FrameError> {
        serve::serve_get(&self.local, &self.rates.send, req, send).await
    }

    /// Fetches `ids` from connected peers within `deadline`, handing each block to `sink`
    /// once, as it arrives; the ids that could not be fetched, with why. An id another call
    /// is already getting is not asked for twice: this call waits for that one's bytes (and
    /// fails the id if that call gives up on it).
    pub(crate) async fn fetch_each(
        &self,
        ids: &[BlockId],
        deadline: Duration,
        sink: BlockSink,
    ) -> Vec<(BlockId, FetchError)> {
        fetch::fetch_each(self, ids, deadline, sink).await
    }

    /// Fetches `ids`: the results in the order of `ids`.
    pub(crate) async fn fetch(
        &self,
        ids: &[BlockId],
        deadline: Duration,
    ) -> Vec<(BlockId, Result<Vec<u8>, FetchError>)> {
        fetch::fetch(self, ids, deadline).await
    }
}
