//! Admission on `fossa/dht/1` (docs/protocol.md, "Connections and admission"; docs/swarm.md):
//! the `SwarmHello` exchange on the first stream of a connection, and the framing of DHT
//! messages on a QUIC stream.
use super::{Admission, SwarmId, SwarmTicket, TicketError};
use crate::dht::{Contact, Key, MAX_ADDRS};
use crate::error::LocalError;
use crate::identity::DeviceId;
use crate::proto::code;
use crate::proto::dht::{
    DHT_MINOR, DhtMessage, DhtWireError, SwarmHelloWire, check_dht_len, decode_dht, encode_dht,
};
use crate::tls;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Who may join, as a node sees it: its swarm and how the swarm admits (with its own ticket).
#[derive(Clone, Debug)]
pub struct Gate {
    /// The swarm.
    pub swarm: SwarmId,
    /// Open, or the founder key and this node's ticket.
    pub admission: Admission,
}

/// Why a peer was not admitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotAdmitted {
    /// Its `SwarmHello` names another swarm.
    #[error("another swarm ({0:?})")]
    WrongSwarm(SwarmId),
    /// The swarm needs a ticket and it showed none.
    #[error("no ticket")]
    NoTicket,
    /// Its ticket does not admit it.
    #[error("ticket refused: {0}")]
    Ticket(#[from] TicketError),
}

/// Why a swarm connection could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HelloError {
    /// Connect or hello exchange past the deadline.
    #[error("timed out")]
    Timeout,
    /// The connection could not start.
    #[error(transparent)]
    Connect(#[from] quinn::ConnectError),
    /// The connection failed or was closed.
    #[error(transparent)]
    Connection(#[from] quinn::ConnectionError),
    /// A local failure (TLS configuration).
    #[error(transparent)]
    Local(#[from] LocalError),
    /// The peer is not admitted.
    #[error("not admitted: {0}")]
    NotAdmitted(#[from] NotAdmitted),
    /// The peer broke the protocol.
    #[error("protocol: {0}")]
    Protocol(#[from] DhtFrameError),
}

impl HelloError {
    /// The close code a connection ends with after this error.
    pub(crate) fn close_code(&self) -> u32 {
        match self {
            HelloError::NotAdmitted(_) => code::NOT_ADMITTED,
            HelloError::Protocol(e) if e.is_protocol() => code::PROTOCOL,
            HelloError::Local(_) => code::INTERNAL,
            _ => code::DONE,
        }
    }
}

/// A DHT message could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DhtFrameError {
    /// The bytes break the protocol (length, encoding, bounds).
    #[error(transparent)]
    Wire(#[from] DhtWireError),
    /// A message not allowed there (an answer where a request belongs, a second hello, ...).
    #[error("unexpected message")]
    Unexpected,
    /// The peer's id in `SwarmHello` is not its certificate's.
    #[error("hello names another node")]
    WrongNode,
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

/// Reads one framed DHT message (length checked before anything is allocated).
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

fn own_hello(gate: &Gate, me: Key, listen: SocketAddr) -> DhtMessage {
    let ticket = match &gate.admission {
        Admission::Open => None,
        Admission::Ticket { ticket, .. } => Some(ticket.to_wire()),
    };
    DhtMessage::SwarmHello(SwarmHelloWire {
        minor: DHT_MINOR,
        swarm: gate.swarm.0,
        node: me.0,
        ticket,
        listen: vec![listen],
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Checks a peer's hello against our admission rules; the peer as a contact (the observed
/// address first, then its listen hints).
fn check(
    gate: &Gate,
    conn: &quinn::Connection,
    msg: DhtMessage,
) -> Result<Contact, HelloError> {
    let DhtMessage::SwarmHello(h) = msg else {
        return Err(DhtFrameError::Unexpected.into());
    };
    let cert = tls::peer_device(conn).ok_or(DhtFrameError::WrongNode)?;
    if h.node != cert.0 {
        return Err(DhtFrameError::WrongNode.into());
    }
    if h.swarm != gate.swarm.0 {
        return Err(NotAdmitted::WrongSwarm(SwarmId(h.swarm)).into());
    }
    if let Admission::Ticket { founder, .. } = &gate.admission {
        let wire = h.ticket.ok_or(NotAdmitted::NoTicket)?;
        let ticket = SwarmTicket::from_wire(wire).map_err(NotAdmitted::from)?;
        ticket
            .verify(&gate.swarm, founder, &DeviceId(h.node), unix_now())
            .map_err(NotAdmitted::from)?;
    }
    let mut addrs = vec![conn.remote_address()];
    for a in h.listen {
        if addrs.len() < MAX_ADDRS && !addrs.contains(&a) && !a.ip().is_unspecified() {
            addrs.push(a);
        }
    }
    Ok(Contact {
        id: Key(h.node),
        addrs,
    })
}

/// The dialer's side: open the hello stream, send ours, check theirs.
pub(crate) async fn open(
    conn: &quinn::Connection,
    gate: &Gate,
    me: Key,
    listen: SocketAddr,
) -> Result<Contact, HelloError> {
    let (mut send, mut recv) = conn.open_bi().await?;
    write_dht(&mut send, &own_hello(gate, me, listen)).await?;
    let _ = send.finish();
    let theirs = read_dht(&mut recv).await?;
    check(gate, conn, theirs)
}

/// The listener's side: take the hello stream, check theirs, send ours.
pub(crate) async fn accept(
    conn: &quinn::Connection,
    gate: &Gate,
    me: Key,
    listen: SocketAddr,
) -> Result<Contact, HelloError> {
    let (mut send, mut recv) = conn.accept_bi().await?;
    let theirs = read_dht(&mut recv).await?;
    let peer = check(gate, conn, theirs)?;
    write_dht(&mut send, &own_hello(gate, me, listen)).await?;
    let _ = send.finish();
    Ok(peer)
}
