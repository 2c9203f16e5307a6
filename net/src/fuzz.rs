//! Entry points for the fuzz targets (`fuzz/`) and their corpus replay test: each takes
//! arbitrary bytes, runs one decoder of bytes from a peer or from disk, and panics only when
//! a property fails (a decoded value that does not encode back to itself, two decoders of the
//! same bytes that disagree, a bound not kept). Errors are the expected answer to bad bytes.
//! Not an API.
use crate::proto::frame::{self, block_view, check_len};
use crate::proto::{Block, Message};
use crate::{DeviceKey, InviteCode, MAX_MESSAGE_SIZE, MemberRecord, Members, Role};

/// Every target of this crate, by the name of its corpus directory under `fuzz/corpus/`.
pub const TARGETS: &[blockstore::fuzz::Target] = &[
    ("frame", frame),
    ("invite_code", invite_code),
    ("members_file", members_file),
    ("dht_message", dht_message),
];

/// One frame as read from a stream: `len (u32 LE) ‖ body`. The body decodes as every
/// message does; a `Block` body also through the copy-free reader, which must agree.
pub fn frame(data: &[u8]) {
    let Some((prefix, body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let Ok(len) = check_len(*prefix) else {
        return;
    };
    assert!(len <= MAX_MESSAGE_SIZE);
    let body = &body[..len.min(body.len())];
    let decoded = frame::decode(body);
    if let Ok((id, range)) = block_view(body) {
        let data = range.map(|r| body[r].to_vec());
        assert_eq!(
            decoded.as_ref().ok(),
            Some(&Message::Block(Block { id, data }))
        );
    }
    let Ok(msg) = decoded else { return };
    if let Message::HasResult(b) | Message::Dropped(b) = &msg {
        let n = b.bits.len() * 8;
        assert!(b.unpack(n).is_some_and(|v| v.len() == n));
    }
    let again = frame::encode(&msg).ok();
    let back = again.as_deref().and_then(|f| frame::decode(&f[4..]).ok());
    assert_eq!(back.as_ref(), Some(&msg));
}

/// One `fossa/dht/1` frame: a body that decodes keeps every bound of protocol.md, encodes to
/// bytes that decode to the same message, and goes through the domain types
/// (`dht::Request`/`Response`, `SwarmHello`) and back unchanged.
pub fn dht_message(data: &[u8]) {
    use crate::proto::dht;
    let Some((prefix, body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let Ok(len) = dht::check_dht_len(*prefix) else {
        return;
    };
    assert!(len <= dht::MAX_DHT_MESSAGE);
    let body = &body[..len.min(body.len())];
    let Ok(msg) = dht::decode_dht(body) else {
        assert!(dht::decode_incoming(body).is_err());
        return;
    };
    assert!(msg.check().is_ok());
    // postcard accepts over-long varints, so the bytes may differ; the message may not.
    let frame = dht::encode_dht(&msg).ok();
    let back = frame.as_deref().and_then(|f| dht::decode_dht(&f[4..]).ok());
    assert_eq!(back.as_ref(), Some(&msg), "re-encodes to the same message");
    // Through the domain types and back: the same message.
    let Ok(incoming) = dht::decode_incoming(body) else {
        return;
    };
    assert_eq!(dht::DhtMessage::from(&incoming), msg, "domain round trip");
}

/// A printable invitation code.
pub fn invite_code(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(code) = InviteCode::decode(s) {
        assert_eq!(InviteCode::decode(&code.encode()).ok(), Some(code));
    }
}

/// The member list file (`DATA/members`).
pub fn members_file(data: &[u8]) {
    let Ok(m) = Members::from_bytes(SEED_VOLUME, data) else {
        return;
    };
    let bytes = m.to_bytes().ok();
    let again = bytes.and_then(|b| Members::from_bytes(SEED_VOLUME, &b).ok());
    assert_eq!(again.map(|a| a.signed()), Some(m.signed()));
}

const SEED_VOLUME: [u8; 16] = [9; 16];

/// Valid inputs to start each target's corpus from, by target name.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(key) = DeviceKey::generate() {
        let m = Members::new(SEED_VOLUME);
        let rec = MemberRecord {
            device: key.id(),
            public_key: key.public_key(),
            name: "laptop".into(),
            added_by: key.id(),
            revoked: false,
            role: Role::Device,
            addrs: vec![std::net::SocketAddr::from(([127, 0, 0, 1], 4242))],
        };
        if m.add_own(&key, rec).is_ok()
            && let Ok(b) = m.to_bytes()
        {
            let msg = Message::Members(crate::proto::MembersMsg {
                records: m.signed().iter().map(|s| s.to_wire()).collect(),
            });
            out.extend(frame::encode(&msg).ok().map(|f| ("frame", f)));
            out.push(("members_file", b));
        }
    }
    let block = Message::Block(Block {
        id: [7; 32],
        data: Some(vec![1, 2, 3]),
    });
    out.extend(frame::encode(&block).ok().map(|f| ("frame", f)));
    for role in [Role::Device, Role::Keeper] {
        let code = InviteCode {
            role,
            volume: SEED_VOLUME,
            secret: [1; 32],
            wrapped: match role {
                Role::Device => vec![5; 61],
                Role::Keeper => vec![],
            },
            inviter: crate::DeviceId([2; 32]),
            addrs: vec![std::net::SocketAddr::from(([127, 0, 0, 2], 4433))],
            expiry: 1_800_000_000,
        };
        out.push(("invite_code", code.encode().into_bytes()));
    }
    out.extend(dht_seeds().into_iter().map(|f| ("dht_message", f)));
    out
}

/// One frame of each kind of DHT message, for the `dht_message` corpus.
fn dht_seeds() -> Vec<Vec<u8>> {
    use crate::proto::dht::*;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 2], 4433));
    let contact = ContactWire {
        id: [3; 32],
        addrs: vec![addr],
    };
    let mut msgs = vec![
        DhtMessage::Ping(PingWire {}),
        DhtMessage::Pong(PongWire { observed: addr }),
        DhtMessage::FindNode(FindNodeWire { target: [1; 32] }),
        DhtMessage::Nodes(NodesWire {
            closer: vec![contact.clone()],
        }),
        DhtMessage::GetProviders(GetProvidersWire { key: [2; 32] }),
        DhtMessage::Providers(ProvidersWire {
            providers: vec![ProviderRecordWire {
                node: contact.clone(),
                age_s: 60,
            }],
            closer: vec![contact],
        }),
        DhtMessage::AddProvider(AddProviderWire {
            key: [2; 32],
            addrs: vec![addr],
        }),
        DhtMessage::ProviderAck(ProviderAckWire { stored: false }),
    ];
    if let Ok(key) = DeviceKey::generate() {
        let swarm = crate::swarm::SwarmId([4; 16]);
        let ticket = crate::swarm::SwarmTicket::found(&key, swarm, 1_800_000_000);
        msgs.push(DhtMessage::SwarmHello(SwarmHelloWire {
            minor: DHT_MINOR,
            swarm: swarm.0,
            node: key.id().0,
            ticket: Some(ticket.to_wire()),
            listen: vec![addr],
        }));
    }
    msgs.iter().filter_map(|m| encode_dht(m).ok()).collect()
}
