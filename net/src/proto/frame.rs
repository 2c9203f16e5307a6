//! Framing: `len (u32 LE) ‖ postcard body`, `len ≤ MAX_MESSAGE_SIZE`, checked before any
//! allocation.
use super::{Block, MAX_KNOWN_TAG, Message};
use crate::MAX_MESSAGE_SIZE;
use crate::error::{LinkError, NetError, PeerError};

/// Why a message exchange on a stream stopped: a frame refused (the peer's fault), the link,
/// or what the reader made of a good frame (a peer it will not talk to, its replica failing).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("message of {0} bytes exceeds the limit")]
    TooLarge(u64),
    #[error("unknown message tag {0}")]
    UnknownTag(u32),
    #[error("body does not decode")]
    Malformed,
    /// The link broke under the stream.
    #[error("stream: {0}")]
    Link(#[from] LinkError),
    /// A well-formed message that makes us stop talking to the peer (another volume, revoked).
    #[error("{0}")]
    Refused(PeerError),
    /// The local replica failed while handling a message.
    #[error("replica: {0}")]
    Replica(#[from] crate::replica::ReplicaError),
    /// The stream finished cleanly before a new frame started.
    #[error("stream finished")]
    Finished,
}

impl FrameError {
    /// True if the peer broke the protocol (close the connection with PROTOCOL).
    pub(crate) fn is_protocol(&self) -> bool {
        matches!(
            self,
            FrameError::TooLarge(_) | FrameError::UnknownTag(_) | FrameError::Malformed
        )
    }
}

impl From<FrameError> for NetError {
    fn from(e: FrameError) -> Self {
        let violation = |what| NetError::Peer(PeerError::Violation(what));
        match e {
            FrameError::Link(e) => NetError::Link(e),
            FrameError::Refused(e) => NetError::Peer(e),
            FrameError::Replica(e) => NetError::Replica(e),
            FrameError::Finished => NetError::Link(LinkError::StreamEnded),
            FrameError::TooLarge(_) => violation("oversized message"),
            FrameError::UnknownTag(_) => violation("unknown message tag"),
            FrameError::Malformed => violation("malformed or unexpected message"),
        }
    }
}

/// Encodes a message as one frame.
pub(crate) fn encode(msg: &Message) -> Result<Vec<u8>, FrameError> {
    let mut out = postcard::to_extend(msg, vec![0u8; 4]).map_err(|_| FrameError::Malformed)?;
    let len = out.len() - 4;
    if len > MAX_MESSAGE_SIZE {
        return Err(FrameError::TooLarge(len as u64));
    }
    let len32 = u32::try_from(len).map_err(|_| FrameError::TooLarge(len as u64))?;
    out[..4].copy_from_slice(&len32.to_le_bytes());
    Ok(out)
}

/// Checks a frame's length prefix.
pub(crate) fn check_len(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(prefix);
    let len_usize = usize::try_from(len).map_err(|_| FrameError::TooLarge(u64::from(len)))?;
    if len_usize > MAX_MESSAGE_SIZE {
        return Err(FrameError::TooLarge(u64::from(len)));
    }
    Ok(len_usize)
}

/// Decodes a body; a tag above the known range is [`FrameError::UnknownTag`].
pub(crate) fn decode(body: &[u8]) -> Result<Message, FrameError> {
    let (tag, _) = postcard::take_from_bytes::<u32>(body).map_err(|_| FrameError::Malformed)?;
    if tag > MAX_KNOWN_TAG {
        return Err(FrameError::UnknownTag(tag));
    }
    match postcard::take_from_bytes::<Message>(body) {
        Ok((msg, [])) => Ok(msg),
        _ => Err(FrameError::Malformed),
    }
}

/// Reads one frame's body; `Finished` if the stream ended cleanly at a frame boundary.
/// The body is gathered from quinn's chunks into one buffer, never zero-filled first.
async fn read_body(recv: &mut quinn::RecvStream) -> Result<Vec<u8>, FrameError> {
    let mut prefix = [0u8; 4];
    match recv.read_exact(&mut prefix).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Err(FrameError::Finished),
        Err(e) => return Err(FrameError::Link(e.into())),
    }
    let len = check_len(prefix)?;
    let mut body = Vec::with_capacity(len);
    while body.len() < len {
        match recv.read_chunk(len - body.len(), true).await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk.bytes),
            Ok(None) => return Err(FrameError::Link(LinkError::StreamEnded)),
            Err(e) => return Err(FrameError::Link(e.into())),
        }
    }
    Ok(body)
}

/// Reads one frame; `Finished` if the stream ended cleanly at a frame boundary.
pub(crate) async fn read_msg(recv: &mut quinn::RecvStream) -> Result<Message, FrameError> {
    decode(&read_body(recv).await?)
}

/// A `Block` body seen in place: its data borrows the frame.
#[derive(serde::Deserialize)]
struct BlockView<'a> {
    id: [u8; 32],
    #[serde(borrow)]
    data: Option<&'a [u8]>,
}

/// Tag of `Message::Block`.
const BLOCK_TAG: u32 = 5;

/// Chunks taken from quinn per call: each call locks the connection once, and a 64 KiB block
/// arrives in about fifty chunks.
const CHUNKS_PER_READ: usize = 32;

/// Reads consecutive `Block` frames from a response stream. It takes many of quinn's chunks per
/// call and keeps what goes past a frame for the next one; a frame's body is gathered into one
/// buffer (never zero-filled first) and its data handed out without a second copy.
pub(crate) struct BlockFrames<'a> {
    recv: &'a mut quinn::RecvStream,
    spare: std::collections::VecDeque<bytes::Bytes>,
    chunks: Vec<bytes::Bytes>,
}

impl<'a> BlockFrames<'a> {
    pub(crate) fn new(recv: &'a mut quinn::RecvStream) -> Self {
        BlockFrames {
            recv,
            spare: std::collections::VecDeque::new(),
            chunks: vec![bytes::Bytes::new(); CHUNKS_PER_READ],
        }
    }

    /// More data into `spare`; false at the end of the stream.
    async fn fill(&mut self) -> Result<bool, FrameError> {
        match self.recv.read_chunks(&mut self.chunks).await {
            Ok(Some(n)) => {
                for c in &mut self.chunks[..n] {
                    self.spare.push_back(std::mem::take(c));
                }
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(FrameError::Link(e.into())),
        }
    }

    /// Appends the next `n` bytes of the stream to `out`; `Ok(false)` if the stream ended
    /// before any of them came.
    async fn take(&mut self, n: usize, out: &mut Vec<u8>) -> Result<bool, FrameError> {
        let start = out.len();
        while out.len() - start < n {
            let Some(front) = self.spare.front_mut() else {
                if !self.fill().await? {
                    return match out.len() == start {
                        true => Ok(false),
                        false => Err(FrameError::Link(LinkError::StreamEnded)),
                    };
                }
                continue;
            };
            let k = front.len().min(n - (out.len() - start));
            out.extend_from_slice(&front.split_to(k));
            if front.is_empty() {
                self.spare.pop_front();
            }
        }
        Ok(true)
    }

    /// The next `Block` frame: the same bytes [`read_msg`] accepts as a `Block`, anything else
    /// refused like an unexpected message; `Finished` at a clean end of the stream.
    pub(crate) async fn next(&mut self) -> Result<([u8; 32], Option<bytes::Bytes>), FrameError> {
        let mut prefix = Vec::with_capacity(4);
        if !self.take(4, &mut prefix).await? {
            return Err(FrameError::Finished);
        }
        let mut four = [0u8; 4];
        four.copy_from_slice(&prefix);
        let len = check_len(four)?;
        let mut body = Vec::with_capacity(len);
        if !self.take(len, &mut body).await? {
            return Err(FrameError::Link(LinkError::StreamEnded));
        }
        let (id, range) = block_view(&body)?;
        let data = range.map(|r| bytes::Bytes::from(body).slice(r));
        Ok((id, data))
    }
}

/// The id of a `Block` body and where its data lies in it.
pub(crate) fn block_view(
    body: &[u8],
) -> Result<([u8; 32], Option<std::ops::Range<usize>>), FrameError> {
    let (tag, rest) = postcard::take_from_bytes::<u32>(body).map_err(|_| FrameError::Malformed)?;
    if tag > MAX_KNOWN_TAG {
        return Err(FrameError::UnknownTag(tag));
    }
    if tag != BLOCK_TAG {
        return Err(FrameError::Malformed);
    }
    match postcard::take_from_bytes::<BlockView<'_>>(rest) {
        Ok((view, [])) => {
            let range = view.data.map(|d| {
                let start = d.as_ptr() as usize - body.as_ptr() as usize;
                start..start + d.len()
            });
            Ok((view.id, range))
        }
        _ => Err(FrameError::Malformed),
    }
}

/// Writes one frame.
pub(crate) async fn write_msg(
    send: &mut quinn::SendStream,
    msg: &Message,
) -> Result<(), FrameError> {
    let frame = encode(msg)?;
    send.write_all(&frame)
        .await
        .map_err(|e| FrameError::Link(e.into()))
}

/// Writes a `Block` frame without copying its bytes: the header is encoded, the data handed
/// to quinn as its own chunk. The frame is byte for byte what [`write_msg`] would send.
pub(crate) async fn write_block(
    send: &mut quinn::SendStream,
    id: [u8; 32],
    data: Option<Vec<u8>>,
) -> Result<(), FrameError> {
    let (head, data) = block_frame(id, data)?;
    let mut chunks = [bytes::Bytes::from(head), bytes::Bytes::from(data)];
    send.write_all_chunks(&mut chunks)
        .await
        .map_err(|e| FrameError::Link(e.into()))
}

/// A `Block` frame as (header, data): the header is the frame of the message with empty data,
/// less the data's length byte, plus the real length.
fn block_frame(id: [u8; 32], data: Option<Vec<u8>>) -> Result<(Vec<u8>, Vec<u8>), FrameError> {
    let Some(data) = data else {
        return Ok((
            encode(&Message::Block(Block { id, data: None }))?,
            Vec::new(),
        ));
    };
    let empty = Message::Block(Block {
        id,
        data: Some(Vec::new()),
    });
    let mut head = postcard::to_extend(&empty, vec![0u8; 4]).map_err(|_| FrameError::Malformed)?;
    head.pop(); // The varint 0 of the empty data.
    let len = u32::try_from(data.len()).map_err(|_| FrameError::TooLarge(data.len() as u64))?;
    head = postcard::to_extend(&len, head).map_err(|_| FrameError::Malformed)?;
    let body = head.len() - 4 + data.len();
    if body > MAX_MESSAGE_SIZE {
        return Err(FrameError::TooLarge(body as u64));
    }
    let body32 = u32::try_from(body).map_err(|_| FrameError::TooLarge(body as u64))?;
    head[..4].copy_from_slice(&body32.to_le_bytes());
    Ok((head, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{GetBlocks, Want};

    #[test]
    fn block_frames_without_copies_are_ordinary_frames() {
        for n in [0usize, 1, 127, 128, 16_383, 16_384, 70_000, 300_000] {
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let msg = Message::Block(Block {
                id: [5; 32],
                data: Some(data.clone()),
            });
            let (head, tail) = block_frame([5; 32], Some(data)).unwrap();
            assert_eq!([head, tail].concat(), encode(&msg).unwrap(), "size {n}");
        }
        let none = Message::Block(Block {
            id: [5; 32],
            data: None,
        });
        let (head, tail) = block_frame([5; 32], None).unwrap();
        assert_eq!((head, tail), (encode(&none).unwrap(), Vec::new()));
    }

    #[test]
    fn block_views_agree_with_decode() {
        for data in [
            None,
            Some(vec![]),
            Some(vec![7u8; 1]),
            Some(vec![9u8; 70_000]),
        ] {
            let msg = Message::Block(Block {
                id: [3; 32],
                data: data.clone(),
            });
            let f = encode(&msg).unwrap();
            let (id, range) = block_view(&f[4..]).unwrap();
            assert_eq!(id, [3; 32]);
            assert_eq!(range.map(|r| f[4..][r].to_vec()), data);
        }
        let want = encode(&Message::Want(Want {
            index_id: 1,
            after: 2,
        }))
        .unwrap();
        assert!(matches!(block_view(&want[4..]), Err(FrameError::Malformed)));
        assert!(matches!(block_view(&[18]), Err(FrameError::UnknownTag(18))));
        let mut long = encode(&Message::Block(Block {
            id: [3; 32],
            data: Some(vec![1, 2]),
        }))
        .unwrap();
        long.push(0);
        assert!(matches!(block_view(&long[4..]), Err(FrameError::Malformed)));
        assert!(matches!(
            block_view(&long[4..long.len() - 3]),
            Err(FrameError::Malformed)
        ));
    }

    #[test]
    fn round_trip() {
        let m = Message::Want(Want {
            index_id: 7,
            after: 42,
        });
        let f = encode(&m).unwrap();
        let len = check_len(f[..4].try_into().unwrap()).unwrap();
        assert_eq!(len, f.len() - 4);
        assert_eq!(decode(&f[4..]).unwrap(), m);
        // Tag is the variant index.
        assert_eq!(f[4], 2);
    }

    #[test]
    fn rejects_oversized_length() {
        let too_big = u32::try_from(MAX_MESSAGE_SIZE + 1).unwrap().to_le_bytes();
        assert!(matches!(check_len(too_big), Err(FrameError::TooLarge(_))));
        assert!(matches!(check_len([0xff; 4]), Err(FrameError::TooLarge(_))));
        let ok = u32::try_from(MAX_MESSAGE_SIZE).unwrap().to_le_bytes();
        assert_eq!(check_len(ok).unwrap(), MAX_MESSAGE_SIZE);
        let huge = Message::GetBlocks(GetBlocks {
            ids: vec![[0; 32]; MAX_MESSAGE_SIZE / 32 + 1],
        });
        assert!(matches!(encode(&huge), Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn rejects_unknown_tag_and_garbage() {
        assert!(matches!(decode(&[18]), Err(FrameError::UnknownTag(18))));
        assert!(matches!(
            decode(&[23, 1, 2]),
            Err(FrameError::UnknownTag(23))
        ));
        assert!(matches!(decode(&[]), Err(FrameError::Malformed)));
        assert!(matches!(decode(&[0, 0]), Err(FrameError::Malformed)));
        // Trailing bytes after a valid message.
        let mut f = encode(&Message::Want(Want {
            index_id: 1,
            after: 2,
        }))
        .unwrap();
        f.push(0);
        assert!(matches!(decode(&f[4..]), Err(FrameError::Malformed)));
    }

    #[test]
    fn keep_tags_follow_the_sync_tags() {
        use crate::proto::{Bitmap, IdList};
        let f = encode(&Message::HasBlocks(IdList { ids: vec![] })).unwrap();
        assert_eq!(f[4], 10);
        let f = encode(&Message::Dropped(Bitmap { bits: vec![] })).unwrap();
        assert_eq!(f[4], 15);
        let f = encode(&Message::JoinConfirm(crate::proto::JoinConfirm {})).unwrap();
        assert_eq!(&f[..], &[1, 0, 0, 0, 16]);
        let f = encode(&Message::JoinDone(crate::proto::JoinDone {
            members: vec![],
        }))
        .unwrap();
        assert_eq!(&f[4..], &[17, 0]);
        let b = Bitmap::pack(&[true, false, false, true, false, false, false, false, true]);
        assert_eq!(b.bits, vec![0b1001, 1]);
        assert!(b.unpack(9).unwrap()[8]);
        assert!(b.unpack(17).is_none());
    }
}
