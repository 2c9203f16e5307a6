//! Admission on `fossa/dht/1` (docs/protocol.md, "Connections and admission"): the
//! `SwarmHello` each side sends first, and the receiver's check of it.
use super::{SwarmId, SwarmTicket, TicketError};
use crate::DeviceId;
use crate::proto::dht::{DhtMessage, SwarmHelloWire};
use std::net::SocketAddr;

/// How this node's swarm admits peers (from its swarm configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwarmMode {
    /// Any node that knows the swarm id.
    Open,
    /// A ticket rooted at this founder key (Ed25519 public key) is required.
    Controlled {
        /// The founder key.
        founder: [u8; 32],
    },
}

/// The first message of each side of a `fossa/dht/1` connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmHello {
    /// Minor version of `fossa/dht/1`.
    pub minor: u16,
    /// The sender's swarm.
    pub swarm: SwarmId,
    /// The sender's node id (must be its certificate's).
    pub node: DeviceId,
    /// The sender's ticket (required unless the swarm is open).
    pub ticket: Option<SwarmTicket>,
    /// Addresses the sender takes connections on (≤ 4, unsigned hints).
    pub listen: Vec<SocketAddr>,
}

/// Why a `SwarmHello` is refused, with the close code it calls for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HelloRefusal {
    /// The peer is in another swarm.
    #[error("peer is in swarm {got}, not {expected}")]
    WrongSwarm {
        /// Ours.
        expected: SwarmId,
        /// Theirs.
        got: SwarmId,
    },
    /// `node` is not the id of the peer's certificate (a protocol violation).
    #[error("hello names node {claimed}, the certificate is {cert}")]
    NodeMismatch {
        /// The certificate's id.
        cert: DeviceId,
        /// The id in the hello.
        claimed: DeviceId,
    },
    /// No ticket, in a controlled swarm.
    #[error("no ticket (this swarm admits nodes by ticket)")]
    NoTicket,
    /// The ticket does not admit the peer.
    #[error("ticket refused: {0}")]
    Ticket(#[from] TicketError),
}

impl HelloRefusal {
    /// The QUIC close code: `PROTOCOL` for a hello that lies about its node, `NOT_ADMITTED`
    /// for everything else.
    pub fn close_code(&self) -> u32 {
        match self {
            HelloRefusal::NodeMismatch { .. } => crate::proto::code::PROTOCOL,
            _ => crate::proto::code::NOT_ADMITTED,
        }
    }
}

impl From<&SwarmHello> for DhtMessage {
    fn from(h: &SwarmHello) -> Self {
        DhtMessage::SwarmHello(SwarmHelloWire {
            minor: h.minor,
            swarm: h.swarm.0,
            node: h.node.0,
            ticket: h.ticket.as_ref().map(SwarmTicket::to_wire),
            listen: h.listen.clone(),
        })
    }
}

impl TryFrom<SwarmHelloWire> for SwarmHello {
    type Error = TicketError;
    /// The wire hello in domain terms (its bounds were checked when it was decoded).
    fn try_from(h: SwarmHelloWire) -> Result<Self, TicketError> {
        Ok(SwarmHello {
            minor: h.minor,
            swarm: SwarmId(h.swarm),
            node: DeviceId(h.node),
            ticket: h.ticket.map(SwarmTicket::from_wire).transpose()?,
            listen: h.listen,
        })
    }
}

impl SwarmHello {
    /// The receiver's check: same swarm, the certificate's node, and (unless open) a ticket
    /// that admits that node at `now` (Unix seconds).
    pub fn admit(
        &self,
        swarm: &SwarmId,
        mode: &SwarmMode,
        cert: &DeviceId,
        now: u64,
    ) -> Result<(), HelloRefusal> {
        if self.swarm != *swarm {
            return Err(HelloRefusal::WrongSwarm {
                expected: *swarm,
                got: self.swarm,
            });
        }
        if self.node != *cert {
            return Err(HelloRefusal::NodeMismatch {
                cert: *cert,
                claimed: self.node,
            });
        }
        match mode {
            SwarmMode::Open => Ok(()),
            SwarmMode::Controlled { founder } => {
                let ticket = self.ticket.as_ref().ok_or(HelloRefusal::NoTicket)?;
                Ok(ticket.verify(swarm, founder, cert, now)?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::test_keys::key;

    const NOW: u64 = 1_800_000_000;
    const SWARM: SwarmId = SwarmId([7; 16]);

    fn hello(node: DeviceId, ticket: Option<SwarmTicket>) -> SwarmHello {
        SwarmHello {
            minor: 0,
            swarm: SWARM,
            node,
            ticket,
            listen: vec![],
        }
    }

    #[test]
    fn a_node_outside_the_swarm_is_not_admitted_without_a_ticket() {
        let (f, n, outsider) = (key(1), key(3), key(9));
        let mode = SwarmMode::Controlled {
            founder: f.public_key(),
        };
        let t = SwarmTicket::found(&f, SWARM, NOW + 100)
            .issue(&f, n.id(), false, NOW + 100)
            .unwrap();
        assert_eq!(
            hello(n.id(), Some(t.clone())).admit(&SWARM, &mode, &n.id(), NOW),
            Ok(())
        );
        let none = hello(outsider.id(), None).admit(&SWARM, &mode, &outsider.id(), NOW);
        assert_eq!(none, Err(HelloRefusal::NoTicket));
        assert_eq!(
            none.unwrap_err().close_code(),
            crate::proto::code::NOT_ADMITTED
        );
        // Someone else's ticket, presented by the outsider under its own certificate.
        let stolen =
            hello(outsider.id(), Some(t.clone())).admit(&SWARM, &mode, &outsider.id(), NOW);
        assert!(matches!(
            stolen,
            Err(HelloRefusal::Ticket(TicketError::WrongNode { .. }))
        ));
        // Claiming the ticket holder's id over the outsider's certificate.
        let lie = hello(n.id(), Some(t)).admit(&SWARM, &mode, &outsider.id(), NOW);
        assert!(matches!(lie, Err(HelloRefusal::NodeMismatch { .. })));
        assert_eq!(lie.unwrap_err().close_code(), crate::proto::code::PROTOCOL);
        // A self-made founder ticket of another key.
        let own = SwarmTicket::found(&outsider, SWARM, NOW + 100);
        assert_eq!(
            hello(outsider.id(), Some(own)).admit(&SWARM, &mode, &outsider.id(), NOW),
            Err(HelloRefusal::Ticket(TicketError::NotFounder))
        );
    }

    #[test]
    fn open_swarms_check_only_swarm_and_node() {
        let n = key(3);
        let other = SwarmId([8; 16]);
        assert_eq!(
            hello(n.id(), None).admit(&SWARM, &SwarmMode::Open, &n.id(), NOW),
            Ok(())
        );
        assert_eq!(
            hello(n.id(), None).admit(&other, &SwarmMode::Open, &n.id(), NOW),
            Err(HelloRefusal::WrongSwarm {
                expected: other,
                got: SWARM
            })
        );
    }
}
