//! Golden bytes of one `fossa/dht/1` frame per tag (`tests/fixtures/format-v1/dht-msg-*.bin`):
//! each fixed message encodes to the committed frame and the frame decodes back to it; and
//! the bounds of protocol.md are refused on decode with their typed errors.
use super::dht::*;
use crate::golden::check;

fn contact(seed: u8, addrs: usize) -> ContactWire {
    ContactWire {
        id: [seed; 32],
        addrs: (0..addrs)
            .map(|i| std::net::SocketAddr::from(([127, 0, 0, seed], 4000 + i as u16)))
            .collect(),
    }
}

fn messages() -> Vec<(&'static str, DhtMessage)> {
    // The swarm's golden ticket (swarm::golden_tests), read back from its committed bytes so
    // that this module, below `swarm`, does not import it.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/format-v1/swarm-ticket.bin"
    );
    let bytes = std::fs::read(path).expect("swarm-ticket fixture");
    let ticket: super::swarm::TicketWire = postcard::from_bytes(&bytes).expect("ticket");
    vec![
        (
            "swarm-hello",
            DhtMessage::SwarmHello(SwarmHelloWire {
                minor: DHT_MINOR,
                swarm: [7; 16],
                node: ticket.links[2].node,
                ticket: Some(ticket),
                listen: vec![
                    "127.0.0.3:4433".parse().expect("addr"),
                    "[::1]:4433".parse().expect("addr"),
                ],
            }),
        ),
        ("ping", DhtMessage::Ping(PingWire {})),
        (
            "pong",
            DhtMessage::Pong(PongWire {
                observed: "127.0.0.9:5000".parse().expect("addr"),
            }),
        ),
        (
            "find-node",
            DhtMessage::FindNode(FindNodeWire { target: [1; 32] }),
        ),
        (
            "nodes",
            DhtMessage::Nodes(NodesWire {
                closer: vec![contact(2, 1), contact(3, 4)],
            }),
        ),
        (
            "get-providers",
            DhtMessage::GetProviders(GetProvidersWire { key: [4; 32] }),
        ),
        (
            "providers",
            DhtMessage::Providers(ProvidersWire {
                providers: vec![ProviderRecordWire {
                    node: contact(5, 2),
                    age_s: 3600,
                }],
                closer: vec![contact(6, 1)],
            }),
        ),
        (
            "add-provider",
            DhtMessage::AddProvider(AddProviderWire {
                key: [7; 32],
                addrs: vec!["127.0.0.8:4433".parse().expect("addr")],
            }),
        ),
        (
            "provider-ack",
            DhtMessage::ProviderAck(ProviderAckWire { stored: true }),
        ),
    ]
}

#[test]
fn one_frame_per_dht_tag() {
    let all = messages();
    assert_eq!(all.len() as u32, MAX_DHT_TAG + 1, "every tag has a fixture");
    for (tag, (name, msg)) in all.into_iter().enumerate() {
        let frame = encode_dht(&msg).expect("encode");
        check(&format!("dht-msg-{name}"), &frame);
        assert_eq!(frame[4] as usize, tag, "{name}: tag");
        let mut prefix = [0u8; 4];
        prefix.copy_from_slice(&frame[..4]);
        assert_eq!(check_dht_len(prefix).expect("length"), frame.len() - 4);
        let back = decode_dht(&frame[4..]).expect("decode");
        assert_eq!(back, msg, "{name}");
        assert_eq!(
            encode_dht(&back).expect("encode"),
            frame,
            "{name}: re-encode"
        );
    }
}

/// Encodes without the bound checks, as a hostile peer would.
fn raw(msg: &DhtMessage) -> Vec<u8> {
    postcard::to_allocvec(msg).expect("encode")
}

#[test]
fn bounds_are_refused_on_decode() {
    let too_many = DhtMessage::Nodes(NodesWire {
        closer: (0..21).map(|i| contact(i, 1)).collect(),
    });
    assert_eq!(
        decode_dht(&raw(&too_many)),
        Err(DhtWireError::TooMany {
            what: "closer contacts",
            count: 21,
            max: MAX_CONTACTS
        })
    );
    assert!(
        encode_dht(&too_many).is_err(),
        "we never send what we refuse"
    );
    let no_addr = DhtMessage::Nodes(NodesWire {
        closer: vec![contact(1, 0)],
    });
    assert_eq!(decode_dht(&raw(&no_addr)), Err(DhtWireError::NoAddress));
    let five = DhtMessage::Providers(ProvidersWire {
        providers: vec![ProviderRecordWire {
            node: contact(1, 5),
            age_s: 0,
        }],
        closer: vec![],
    });
    assert_eq!(
        decode_dht(&raw(&five)),
        Err(DhtWireError::TooMany {
            what: "contact addresses",
            count: 5,
            max: MAX_ADDRS
        })
    );
    let providers = DhtMessage::Providers(ProvidersWire {
        providers: (0..21)
            .map(|i| ProviderRecordWire {
                node: contact(i, 1),
                age_s: 0,
            })
            .collect(),
        closer: vec![],
    });
    assert!(matches!(
        decode_dht(&raw(&providers)),
        Err(DhtWireError::TooMany {
            what: "providers",
            ..
        })
    ));
    let listen = DhtMessage::SwarmHello(SwarmHelloWire {
        minor: 0,
        swarm: [0; 16],
        node: [0; 32],
        ticket: None,
        listen: (0..5)
            .map(|i| std::net::SocketAddr::from(([127, 0, 0, 1], i)))
            .collect(),
    });
    assert!(matches!(
        decode_dht(&raw(&listen)),
        Err(DhtWireError::TooMany {
            what: "listen addresses",
            ..
        })
    ));
    let add = DhtMessage::AddProvider(AddProviderWire {
        key: [0; 32],
        addrs: (0..5)
            .map(|i| std::net::SocketAddr::from(([127, 0, 0, 1], i)))
            .collect(),
    });
    assert!(matches!(
        decode_dht(&raw(&add)),
        Err(DhtWireError::TooMany {
            what: "provider addresses",
            ..
        })
    ));
}

#[test]
fn garbage_tags_lengths_and_trailing_bytes_are_refused() {
    assert_eq!(decode_dht(&[9]), Err(DhtWireError::UnknownTag { tag: 9 }));
    assert_eq!(decode_dht(&[31]), Err(DhtWireError::UnknownTag { tag: 31 }));
    assert_eq!(decode_dht(&[]), Err(DhtWireError::Malformed));
    assert_eq!(
        decode_dht(&[3, 1, 2]),
        Err(DhtWireError::Malformed),
        "short FindNode"
    );
    let mut ping = raw(&DhtMessage::Ping(PingWire {}));
    ping.push(0);
    assert_eq!(
        decode_dht(&ping),
        Err(DhtWireError::Malformed),
        "trailing byte"
    );
    let over = (MAX_DHT_MESSAGE as u32 + 1).to_le_bytes();
    assert_eq!(
        check_dht_len(over),
        Err(DhtWireError::TooLarge {
            len: MAX_DHT_MESSAGE as u64 + 1
        })
    );
    assert_eq!(
        check_dht_len((MAX_DHT_MESSAGE as u32).to_le_bytes()),
        Ok(MAX_DHT_MESSAGE)
    );
    // A contact list that claims more entries than the body holds.
    assert_eq!(
        decode_dht(&[4, 0xff, 0xff, 0x03]),
        Err(DhtWireError::Malformed)
    );
}

#[test]
fn the_largest_answers_fit_the_bound() {
    let v6 = |i: u8| std::net::SocketAddr::from(([0xfe80, 0, 0, 0, 0, 0, 0, u16::from(i)], 65535));
    let full = |i: u8| ContactWire {
        id: [i; 32],
        addrs: (0..4).map(|_| v6(i)).collect(),
    };
    let msg = DhtMessage::Providers(ProvidersWire {
        providers: (0..20)
            .map(|i| ProviderRecordWire {
                node: full(i),
                age_s: u32::MAX,
            })
            .collect(),
        closer: (0..20).map(full).collect(),
    });
    let frame = encode_dht(&msg).expect("fits");
    assert!(frame.len() - 4 < MAX_DHT_MESSAGE / 2, "{}", frame.len());
}

#[test]
fn every_frame_converts_to_domain_types_and_back() {
    use crate::dht::{Key, Request, Response};
    for (name, msg) in messages() {
        let frame = encode_dht(&msg).expect("encode");
        let incoming = decode_incoming(&frame[4..]).expect("decode");
        match (&incoming, name) {
            (DhtIncoming::Hello(h), "swarm-hello") => {
                assert!(h.ticket.is_some(), "the golden hello carries a ticket");
            }
            (DhtIncoming::Request(Request::FindNode { target }), "find-node") => {
                assert_eq!(*target, Key([1; 32]));
            }
            (DhtIncoming::Response(Response::Providers { providers, closer }), "providers") => {
                assert_eq!(providers[0].age_s, 3600);
                assert_eq!(providers[0].node.addrs.len(), 2);
                assert_eq!(closer[0].id, Key([6; 32]));
            }
            (DhtIncoming::Request(_) | DhtIncoming::Response(_), _) => {}
            (other, name) => panic!("{name}: {other:?}"),
        }
        assert_eq!(DhtMessage::from(&incoming), msg, "{name}");
    }
    // A domain answer the core would never make (a contact without an address) is refused
    // on the way in, whoever built it.
    let bad = DhtMessage::from(&Response::Nodes {
        closer: vec![crate::dht::Contact {
            id: Key([1; 32]),
            addrs: vec![],
        }],
    });
    assert_eq!(
        DhtIncoming::try_from(bad.clone()),
        Err(DhtWireError::NoAddress)
    );
    assert_eq!(encode_dht(&bad), Err(DhtWireError::NoAddress));
}
