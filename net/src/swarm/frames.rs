//! DHT messages on a QUIC stream: `len (u32 LE) ‖ body`, the length checked against
//! `MAX_DHT_MESSAGE` before anything is allocated (docs/protocol.md, "Messages").
use crate::proto::dht::{DhtMessage, DhtWireError, check_dht_len, decode_dht, encode_dht};

/// A DHT message could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum DhtFrameError {
    /// The bytes break the protocol (length, encoding, bounds).
    #[error(transparent)]
    Wire(#[from] DhtWireError),
    /// A message not allowed there (an answer where a request belongs, a request or a hello
    /// where an answer belongs, an answer of the wrong kind).
    #[error("unexpected message")]
    Unexpected,
    /// A hello whose ticket does not decode.
    #[error("malformed ticket")]
    BadTicket,
    /// The stream ended early or failed.
    #[error("stream: {0}")]
    Stream(String),
}

impl DhtFrameError {
    /// Whether the peer is to blame (close with `PROTOCOL` and ban).
    pub(crate) fn is_protocol(&self) -> bool {
        !matches!(self, DhtFrameError::Stream(_))
    }
}

/// Reads one framed DHT message.
pub(crate) async fn read_dht(recv: &mut quinn::RecvStream) -> Result<DhtMessage, DhtFrameError> {
    let mut prefix = [0u8; 4];
    recv.read_exact(&mut prefix)
        .await
        .map_err(|e| DhtFrameError::Stream(e.to_string()))?;
    let len = check_dht_len(prefix)?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body)
        .await
        .map_err(|e| DhtFrameError::Stream(e.to_string()))?;
    Ok(decode_dht(&body)?)
}

/// Writes one framed DHT message.
pub(crate) async fn write_dht(
    send: &mut quinn::SendStream,
    msg: &DhtMessage,
) -> Result<(), DhtFrameError> {
    let framed = encode_dht(msg)?;
    send.write_all(&framed)
        .await
        .map_err(|e| DhtFrameError::Stream(e.to_string()))
}
