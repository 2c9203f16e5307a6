//! Admission on a `fossa/dht/1` connection (docs/protocol.md, "Connections and admission";
//! docs/swarm.md): the `SwarmHello` exchange on the connection's first stream, checked with
//! [`SwarmHello::admit`].
use super::frames::{DhtFrameError, read_dht, write_dht};
use super::{Admission, HelloRefusal, SwarmHello, SwarmId, SwarmMode};
use crate::dht::{Contact, Key, MAX_ADDRS};
use crate::error::LocalError;
use crate::identity::DeviceId;
use crate::proto::code;
use crate::proto::dht::{DHT_MINOR, DhtIncoming, DhtMessage};
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

impl Gate {
    fn mode(&self) -> SwarmMode {
        match &self.admission {
            Admission::Open => SwarmMode::Open,
            Admission::Ticket { founder, .. } => SwarmMode::Controlled { founder: *founder },
        }
    }
}

/// Why a swarm connection could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum HelloError {
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
    /// The peer's hello was refused.
    #[error("not admitted: {0}")]
    Refused(#[from] HelloRefusal),
    /// The peer broke the protocol.
    #[error("protocol: {0}")]
    Protocol(#[from] DhtFrameError),
}

impl HelloError {
    /// The close code a connection ends with after this error.
    pub(crate) fn close_code(&self) -> u32 {
        match self {
            HelloError::Refused(r) => r.close_code(),
            HelloError::Protocol(e) if e.is_protocol() => code::PROTOCOL,
            HelloError::Local(_) => code::INTERNAL,
            _ => code::DONE,
        }
    }

    /// Whether the peer was refused at admission (not a protocol error or a failure).
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(self, HelloError::Refused(r) if r.close_code() == code::NOT_ADMITTED)
    }
}

fn own_hello(gate: &Gate, me: Key, listen: SocketAddr) -> DhtMessage {
    let ticket = match &gate.admission {
        Admission::Open => None,
        Admission::Ticket { ticket, .. } => Some(ticket.clone()),
    };
    let listen = if listen.ip().is_unspecified() {
        Vec::new()
    } else {
        vec![listen]
    };
    DhtMessage::from(&SwarmHello {
        minor: DHT_MINOR,
        swarm: gate.swarm,
        node: DeviceId(me.0),
        ticket,
        listen,
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Checks a peer's hello; the peer as a contact (the observed address first, then its
/// listen hints).
fn check(gate: &Gate, conn: &quinn::Connection, msg: DhtMessage) -> Result<Contact, HelloError> {
    let incoming = DhtIncoming::try_from(msg).map_err(DhtFrameError::from)?;
    let DhtIncoming::Hello(wire) = incoming else {
        return Err(DhtFrameError::Unexpected.into());
    };
    let h = SwarmHello::try_from(wire).map_err(|_| DhtFrameError::BadTicket)?;
    let cert = tls::peer_device(conn).ok_or(DhtFrameError::Unexpected)?;
    h.admit(&gate.swarm, &gate.mode(), &cert, unix_now())?;
    let mut addrs = vec![conn.remote_address()];
    for a in h.listen {
        if addrs.len() < MAX_ADDRS && !addrs.contains(&a) && !a.ip().is_unspecified() {
            addrs.push(a);
        }
    }
    Ok(Contact {
        id: Key(cert.0),
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

/// The listener's side, first half: take the hello stream and check theirs. The caller
/// refuses the peer (close) or calls [`answer`] with the returned stream.
pub(crate) async fn accept(
    conn: &quinn::Connection,
    gate: &Gate,
) -> Result<(quinn::SendStream, Contact), HelloError> {
    let (send, mut recv) = conn.accept_bi().await?;
    let theirs = read_dht(&mut recv).await?;
    Ok((send, check(gate, conn, theirs)?))
}

/// The listener's side, second half: send our hello (the peer is admitted).
pub(crate) async fn answer(
    mut send: quinn::SendStream,
    gate: &Gate,
    me: Key,
    listen: SocketAddr,
) -> Result<(), HelloError> {
    write_dht(&mut send, &own_hello(gate, me, listen)).await?;
    let _ = send.finish();
    Ok(())
}
