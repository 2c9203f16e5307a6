//! Swarm nodes over real QUIC on 127.0.0.1: admission, lookups, and hostile peers.
use super::admit::{self, Gate};
use super::frames::write_dht;
use super::{Admission, SwarmConfig, SwarmId, SwarmNode, SwarmTicket};
use crate::dht::{self, Key};
use crate::identity::DeviceKey;
use crate::proto::code;
use crate::proto::dht::{DhtMessage, PongWire};
use crate::{ALPN_DHT, tls};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DEADLINE: Duration = Duration::from_secs(30);

fn in_a_year() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + 365 * 86_400
}

/// A founder key and its swarm's founder ticket.
struct Swarm {
    id: SwarmId,
    founder: DeviceKey,
    root: SwarmTicket,
}

impl Swarm {
    fn new() -> Swarm {
        let founder = DeviceKey::generate().unwrap();
        let id = SwarmId::random().unwrap();
        let root = SwarmTicket::found(&founder, id, in_a_year());
        Swarm { id, founder, root }
    }
    fn gate_for(&self, node: &DeviceKey) -> Gate {
        let ticket = if node.id() == self.founder.id() {
            self.root.clone()
        } else {
            self.root
                .issue(&self.founder, node.id(), false, in_a_year())
                .unwrap()
        };
        Gate {
            swarm: self.id,
            admission: Admission::Ticket {
                founder: self.founder.public_key(),
                ticket,
            },
        }
    }
}

fn config(gate: Gate, bootstrap: Vec<SocketAddr>) -> SwarmConfig {
    SwarmConfig {
        gate,
        listen: "127.0.0.1:0".parse().unwrap(),
        bootstrap,
        dht: dht::Config::default(),
        max_connections: 64,
        idle_close: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(5),
        seed: 7,
    }
}

async fn wait_for(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let until = tokio::time::Instant::now() + DEADLINE;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The founder's node and `n` admitted nodes bootstrapped from it.
fn swarm_of(s: &Swarm, n: usize) -> Vec<SwarmNode> {
    let key = DeviceKey::from_pkcs8(s.founder.pkcs8()).unwrap();
    let first = SwarmNode::start(Arc::new(key), config(s.gate_for(&s.founder), vec![])).unwrap();
    let boot = first.local_addr().unwrap();
    let mut nodes = vec![first];
    for _ in 0..n {
        let k = DeviceKey::generate().unwrap();
        let gate = s.gate_for(&k);
        nodes.push(SwarmNode::start(Arc::new(k), config(gate, vec![boot])).unwrap());
    }
    nodes
}

async fn contacts(n: &SwarmNode) -> usize {
    n.status().await.unwrap().dht.contacts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admitted_nodes_find_each_other_and_look_each_other_up() {
    let s = Swarm::new();
    let nodes = swarm_of(&s, 3);
    for n in &nodes {
        wait_for("every node to know the other three", async || {
            contacts(n).await == 3
        })
        .await;
    }
    let target = nodes[2].id();
    let r = nodes[3].find_node(target).await.unwrap();
    assert_eq!(r.closest.first().map(|c| c.id), Some(target), "{r:?}");
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_from_another_founder_is_refused() {
    let s = Swarm::new();
    let nodes = swarm_of(&s, 1);
    let boot = nodes[0].local_addr().unwrap();
    // Same swarm id, but a chain rooted at a key that is not the founder's.
    let forger = DeviceKey::generate().unwrap();
    let fake_root = SwarmTicket::found(&forger, s.id, in_a_year());
    let k = DeviceKey::generate().unwrap();
    let gate = Gate {
        swarm: s.id,
        admission: Admission::Ticket {
            founder: forger.public_key(),
            ticket: fake_root
                .issue(&forger, k.id(), false, in_a_year())
                .unwrap(),
        },
    };
    let stranger = SwarmNode::start(Arc::new(k), config(gate, vec![boot])).unwrap();
    wait_for("the founder to refuse the forged ticket", async || {
        nodes[0].status().await.unwrap().refused >= 1
    })
    .await;
    assert_eq!(contacts(&stranger).await, 0);
    assert_eq!(contacts(&nodes[0]).await, 1, "only the admitted node");
    stranger.shutdown().await;
    for n in nodes {
        n.shutdown().await;
    }
}

/// An admitted connection to `to`, made by hand, for sending what a node never would.
async fn raw_peer(s: &Swarm, to: &SwarmNode) -> quinn::Connection {
    let k = DeviceKey::generate().unwrap();
    raw_peer_as(s, to, &k).await.unwrap()
}

/// [`raw_peer`] with a given key; the hello's error if it is refused.
async fn raw_peer_as(
    s: &Swarm,
    to: &SwarmNode,
    k: &DeviceKey,
) -> Result<quinn::Connection, admit::HelloError> {
    let gate = s.gate_for(k);
    let ep = tls::quic_endpoint("127.0.0.1:0".parse().unwrap(), None).unwrap();
    let pin = crate::identity::DeviceId(to.id().0);
    let cfg = tls::client_config(k, Some(pin), None, ALPN_DHT).unwrap();
    let conn = ep
        .connect_with(cfg, to.local_addr().unwrap(), "fossa")
        .unwrap()
        .await
        .unwrap();
    let me = Key(k.id().0);
    admit::open(&conn, &gate, me, ep.local_addr().unwrap()).await?;
    Ok(conn)
}

async fn closed_with_protocol(conn: &quinn::Connection) -> bool {
    matches!(
        tokio::time::timeout(DEADLINE, conn.closed()).await,
        Ok(quinn::ConnectionError::ApplicationClosed(c)) if c.error_code == code::PROTOCOL.into()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_and_unsolicited_messages_cut_the_sender_off() {
    let s = Swarm::new();
    let nodes = swarm_of(&s, 2);
    for n in &nodes {
        wait_for("the swarm to settle", async || contacts(n).await == 2).await;
    }
    let victim = &nodes[0];
    // Bytes that do not decode.
    let offender = DeviceKey::generate().unwrap();
    let conn = raw_peer_as(&s, victim, &offender).await.unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(&[5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    let _ = send.finish();
    assert!(
        closed_with_protocol(&conn).await,
        "garbage: {:?}",
        conn.close_reason()
    );
    // The offender is banned: its next connection is refused at admission.
    let again = raw_peer_as(&s, victim, &offender).await;
    assert!(again.is_err(), "a banned id was admitted again");
    // A length over the bound, before any body.
    let conn = raw_peer(&s, victim).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(&(1u32 << 20).to_le_bytes()).await.unwrap();
    assert!(
        closed_with_protocol(&conn).await,
        "oversized: {:?}",
        conn.close_reason()
    );
    // An answer nobody asked for, where a request belongs.
    let conn = raw_peer(&s, victim).await;
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let pong = DhtMessage::Pong(PongWire {
        observed: "127.0.0.1:1".parse().unwrap(),
    });
    write_dht(&mut send, &pong).await.unwrap();
    let _ = send.finish();
    assert!(
        closed_with_protocol(&conn).await,
        "unsolicited: {:?}",
        conn.close_reason()
    );

    let st = victim.status().await.unwrap();
    assert_eq!(st.protocol_errors, 3, "{st:?}");
    // The honest nodes still work with it.
    let r = nodes[1].find_node(nodes[2].id()).await.unwrap();
    assert_eq!(r.closest.first().map(|c| c.id), Some(nodes[2].id()));
    assert_eq!(
        contacts(victim).await,
        2,
        "the hostile peers are not in the table"
    );
    for n in nodes {
        n.shutdown().await;
    }
}
