//! Wire messages of `fossa/dht/1` (docs/protocol.md, "The swarm DHT, version 1"): the
//! postcard structs, their framing (`len (u32 LE) ‖ body`, body ≤ [`MAX_DHT_MESSAGE`]) and the
//! bounds every decoded message keeps (1–4 addresses per contact, ≤ [`MAX_CONTACTS`] contacts,
//! ≤ [`MAX_PROVIDERS`] providers, ≤ 4 listen or provider addresses). A message that decodes
//! from this module is within every bound; the variant index is the tag.
use super::swarm::{MAX_TICKET_LINKS, TicketWire};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Largest DHT message body.
pub(crate) const MAX_DHT_MESSAGE: usize = 64 << 10;
/// Minor version of `fossa/dht/1` we speak (`SwarmHello.minor`).
pub(crate) const DHT_MINOR: u16 = 0;
/// Most contacts in one answer (`K`).
pub(crate) const MAX_CONTACTS: usize = 20;
/// Most provider records in one answer (`K`).
pub(crate) const MAX_PROVIDERS: usize = 20;
/// Most addresses of a contact, a `SwarmHello` or an `AddProvider`.
pub(crate) const MAX_ADDRS: usize = 4;
/// Highest tag version 1 knows (9–31 are reserved for storage duty messages).
pub(crate) const MAX_DHT_TAG: u32 = 8;

/// Every DHT message; the variant index is the tag (table "DHT message tags").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum DhtMessage {
    /// Tag 0: both sides, first on the hello stream.
    SwarmHello(SwarmHelloWire),
    /// Tag 1.
    Ping(PingWire),
    /// Tag 2: answer to `Ping`.
    Pong(PongWire),
    /// Tag 3.
    FindNode(FindNodeWire),
    /// Tag 4: answer to `FindNode`.
    Nodes(NodesWire),
    /// Tag 5.
    GetProviders(GetProvidersWire),
    /// Tag 6: answer to `GetProviders`.
    Providers(ProvidersWire),
    /// Tag 7.
    AddProvider(AddProviderWire),
    /// Tag 8: answer to `AddProvider`.
    ProviderAck(ProviderAckWire),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SwarmHelloWire {
    pub(crate) minor: u16,
    pub(crate) swarm: [u8; 16],
    pub(crate) node: [u8; 32],
    pub(crate) ticket: Option<TicketWire>,
    /// ≤ 4 addresses the sender takes connections on (unsigned hints).
    pub(crate) listen: Vec<SocketAddr>,
}

/// A contact: 1–4 addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContactWire {
    pub(crate) id: [u8; 32],
    pub(crate) addrs: Vec<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProviderRecordWire {
    pub(crate) node: ContactWire,
    /// Seconds since the provider last announced it.
    pub(crate) age_s: u32,
}

/// No fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PingWire {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PongWire {
    /// The source address the answerer saw.
    pub(crate) observed: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FindNodeWire {
    pub(crate) target: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodesWire {
    pub(crate) closer: Vec<ContactWire>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GetProvidersWire {
    pub(crate) key: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProvidersWire {
    pub(crate) providers: Vec<ProviderRecordWire>,
    pub(crate) closer: Vec<ContactWire>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AddProviderWire {
    pub(crate) key: [u8; 32],
    /// ≤ 4 addresses (empty: the receiver records the connection's source address).
    pub(crate) addrs: Vec<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProviderAckWire {
    pub(crate) stored: bool,
}

/// Why DHT bytes were refused; every variant is a protocol violation of the sender
/// (`PROTOCOL`: close, drop from the table, refuse the id for 10 minutes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum DhtWireError {
    /// A body over [`MAX_DHT_MESSAGE`] (from the length prefix, before any allocation).
    #[error("DHT message of {len} bytes exceeds {max}", max = MAX_DHT_MESSAGE)]
    TooLarge {
        /// The announced or encoded length.
        len: u64,
    },
    /// A tag version 1 does not know.
    #[error("unknown DHT message tag {tag}")]
    UnknownTag {
        /// The tag.
        tag: u32,
    },
    /// The body does not decode, or bytes are left after it.
    #[error("DHT message body does not decode")]
    Malformed,
    /// A list over its bound.
    #[error("{what}: {count} entries, at most {max}")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// Entries found.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// A contact with no address.
    #[error("a contact without an address")]
    NoAddress,
    /// A message that this codec cannot put into a domain value (e.g. a ticket of an
    /// unbounded chain).
    #[error("invalid field: {what}")]
    Invalid {
        /// What is wrong.
        what: &'static str,
    },
}

fn bound(what: &'static str, count: usize, max: usize) -> Result<(), DhtWireError> {
    if count > max {
        return Err(DhtWireError::TooMany { what, count, max });
    }
    Ok(())
}

impl ContactWire {
    fn check(&self) -> Result<(), DhtWireError> {
        if self.addrs.is_empty() {
            return Err(DhtWireError::NoAddress);
        }
        bound("contact addresses", self.addrs.len(), MAX_ADDRS)
    }
}

fn check_contacts(what: &'static str, cs: &[ContactWire]) -> Result<(), DhtWireError> {
    bound(what, cs.len(), MAX_CONTACTS)?;
    cs.iter().try_for_each(ContactWire::check)
}

impl DhtMessage {
    /// Checks every bound of protocol.md; decoding calls it, and so does encoding (we never
    /// send what we would refuse).
    pub(crate) fn check(&self) -> Result<(), DhtWireError> {
        match self {
            DhtMessage::SwarmHello(h) => {
                bound("listen addresses", h.listen.len(), MAX_ADDRS)?;
                if let Some(t) = &h.ticket {
                    bound("ticket links", t.links.len(), MAX_TICKET_LINKS)?;
                    if t.links.iter().any(|l| l.sig.len() != 64) {
                        return Err(DhtWireError::Invalid {
                            what: "ticket signature length",
                        });
                    }
                }
                Ok(())
            }
            DhtMessage::Nodes(n) => check_contacts("closer contacts", &n.closer),
            DhtMessage::Providers(p) => {
                bound("providers", p.providers.len(), MAX_PROVIDERS)?;
                p.providers.iter().try_for_each(|r| r.node.check())?;
                check_contacts("closer contacts", &p.closer)
            }
            DhtMessage::AddProvider(a) => bound("provider addresses", a.addrs.len(), MAX_ADDRS),
            DhtMessage::Ping(_)
            | DhtMessage::Pong(_)
            | DhtMessage::FindNode(_)
            | DhtMessage::GetProviders(_)
            | DhtMessage::ProviderAck(_) => Ok(()),
        }
    }
}

/// Encodes a message as one frame (`len ‖ body`), checking its bounds first.
pub(crate) fn encode_dht(msg: &DhtMessage) -> Result<Vec<u8>, DhtWireError> {
    msg.check()?;
    let mut out = postcard::to_extend(msg, vec![0u8; 4]).map_err(|_| DhtWireError::Malformed)?;
    let len = out.len() - 4;
    if len > MAX_DHT_MESSAGE {
        return Err(DhtWireError::TooLarge { len: len as u64 });
    }
    // len ≤ 64 KiB fits a u32.
    out[..4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(out)
}

/// Checks a frame's length prefix before anything is allocated.
pub(crate) fn check_dht_len(prefix: [u8; 4]) -> Result<usize, DhtWireError> {
    let len = u32::from_le_bytes(prefix);
    match usize::try_from(len) {
        Ok(n) if n <= MAX_DHT_MESSAGE => Ok(n),
        _ => Err(DhtWireError::TooLarge {
            len: u64::from(len),
        }),
    }
}

/// Decodes a body: known tag, whole body, every bound.
pub(crate) fn decode_dht(body: &[u8]) -> Result<DhtMessage, DhtWireError> {
    if body.len() > MAX_DHT_MESSAGE {
        return Err(DhtWireError::TooLarge {
            len: body.len() as u64,
        });
    }
    let (tag, _) = postcard::take_from_bytes::<u32>(body).map_err(|_| DhtWireError::Malformed)?;
    if tag > MAX_DHT_TAG {
        return Err(DhtWireError::UnknownTag { tag });
    }
    let msg = match postcard::take_from_bytes::<DhtMessage>(body) {
        Ok((msg, [])) => msg,
        _ => return Err(DhtWireError::Malformed),
    };
    msg.check()?;
    Ok(msg)
}

// Conversions to and from the core's domain types (`crate::dht`); the hello's are the
// swarm's (`swarm::hello`), which sits above this module.

use crate::dht::{Contact, Key, ProviderRecord, Request, Response};

impl From<&Contact> for ContactWire {
    fn from(c: &Contact) -> Self {
        ContactWire {
            id: c.id.0,
            addrs: c.addrs.clone(),
        }
    }
}

impl TryFrom<ContactWire> for Contact {
    type Error = DhtWireError;
    fn try_from(w: ContactWire) -> Result<Self, DhtWireError> {
        w.check()?;
        Ok(Contact {
            id: Key(w.id),
            addrs: w.addrs,
        })
    }
}

fn contacts_to_wire(cs: &[Contact]) -> Vec<ContactWire> {
    cs.iter().map(ContactWire::from).collect()
}

fn contacts_from_wire(
    what: &'static str,
    cs: Vec<ContactWire>,
) -> Result<Vec<Contact>, DhtWireError> {
    bound(what, cs.len(), MAX_CONTACTS)?;
    cs.into_iter().map(Contact::try_from).collect()
}

/// A decoded DHT message in domain terms: what the transport hands to the admission check
/// (`Hello`) or to the core (`Request`, `Response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DhtIncoming {
    Hello(SwarmHelloWire),
    Request(Request),
    Response(Response),
}

impl From<&Request> for DhtMessage {
    fn from(r: &Request) -> Self {
        match r {
            Request::Ping => DhtMessage::Ping(PingWire {}),
            Request::FindNode { target } => DhtMessage::FindNode(FindNodeWire { target: target.0 }),
            Request::GetProviders { key } => {
                DhtMessage::GetProviders(GetProvidersWire { key: key.0 })
            }
            Request::AddProvider { key, addrs } => DhtMessage::AddProvider(AddProviderWire {
                key: key.0,
                addrs: addrs.clone(),
            }),
        }
    }
}

impl From<&Response> for DhtMessage {
    fn from(r: &Response) -> Self {
        match r {
            Response::Pong { observed } => DhtMessage::Pong(PongWire {
                observed: *observed,
            }),
            Response::Nodes { closer } => DhtMessage::Nodes(NodesWire {
                closer: contacts_to_wire(closer),
            }),
            Response::Providers { providers, closer } => DhtMessage::Providers(ProvidersWire {
                providers: providers
                    .iter()
                    .map(|p| ProviderRecordWire {
                        node: ContactWire::from(&p.node),
                        age_s: p.age_s,
                    })
                    .collect(),
                closer: contacts_to_wire(closer),
            }),
            Response::ProviderAck { stored } => {
                DhtMessage::ProviderAck(ProviderAckWire { stored: *stored })
            }
        }
    }
}

impl TryFrom<DhtMessage> for DhtIncoming {
    type Error = DhtWireError;
    /// Checks every bound again (a message built by hand, not decoded, is held to them too).
    fn try_from(m: DhtMessage) -> Result<Self, DhtWireError> {
        m.check()?;
        Ok(match m {
            DhtMessage::SwarmHello(h) => DhtIncoming::Hello(h),
            DhtMessage::Ping(_) => DhtIncoming::Request(Request::Ping),
            DhtMessage::FindNode(f) => DhtIncoming::Request(Request::FindNode {
                target: Key(f.target),
            }),
            DhtMessage::GetProviders(g) => {
                DhtIncoming::Request(Request::GetProviders { key: Key(g.key) })
            }
            DhtMessage::AddProvider(a) => DhtIncoming::Request(Request::AddProvider {
                key: Key(a.key),
                addrs: a.addrs,
            }),
            DhtMessage::Pong(p) => DhtIncoming::Response(Response::Pong {
                observed: p.observed,
            }),
            DhtMessage::Nodes(n) => DhtIncoming::Response(Response::Nodes {
                closer: contacts_from_wire("closer contacts", n.closer)?,
            }),
            DhtMessage::Providers(p) => DhtIncoming::Response(Response::Providers {
                providers: p
                    .providers
                    .into_iter()
                    .map(|r| {
                        Ok(ProviderRecord {
                            node: Contact::try_from(r.node)?,
                            age_s: r.age_s,
                        })
                    })
                    .collect::<Result<_, DhtWireError>>()?,
                closer: contacts_from_wire("closer contacts", p.closer)?,
            }),
            DhtMessage::ProviderAck(a) => {
                DhtIncoming::Response(Response::ProviderAck { stored: a.stored })
            }
        })
    }
}

impl From<&DhtIncoming> for DhtMessage {
    fn from(m: &DhtIncoming) -> Self {
        match m {
            DhtIncoming::Hello(h) => DhtMessage::SwarmHello(h.clone()),
            DhtIncoming::Request(r) => DhtMessage::from(r),
            DhtIncoming::Response(r) => DhtMessage::from(r),
        }
    }
}

/// Decodes a body straight into domain terms.
pub(crate) fn decode_incoming(body: &[u8]) -> Result<DhtIncoming, DhtWireError> {
    DhtIncoming::try_from(decode_dht(body)?)
}
