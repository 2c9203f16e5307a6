//! Real QUIC on 127.0.0.1: sessions, sync, block fetches, pinning, protocol errors, joining.
#![allow(clippy::unwrap_used)] // tests panic on purpose
mod common;

use blockstore::BlockId;
use common::*;
use fossa_net::{
    ALPN, DeviceKey, FetchError, InviteCode, InviteError, LinkError, Members, NetError, Node,
    NodeConfig, PendingInvite, join, raw_client_config,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sync_both_ways_push_live_and_resume() {
    init_tracing();
    let (ka, kb) = (key(), key());
    let base = members_of(&[&ka, &kb]);
    let (fa, fb) = (FakeReplica::new(11), FakeReplica::new(22));
    for u in [b"a1", b"a2", b"a3"] {
        fa.add_update(u);
    }
    for u in [b"b1", b"b2"] {
        fb.add_update(u);
    }
    let a = start("a", &ka, copy_of(&base), fa.clone(), vec![]).await;
    let b = start("b", &kb, copy_of(&base), fb.clone(), vec![a.local_addr()]).await;

    // Both directions.
    wait_until("initial sync", LIMIT, || {
        fb.received_from(&ka.id()).len() == 3 && fa.received_from(&kb.id()).len() == 2
    })
    .await;
    assert_eq!(
        fb.received_from(&ka.id()),
        vec![b"a1".to_vec(), b"a2".to_vec(), b"a3".to_vec()]
    );
    assert_eq!(
        fa.received_from(&kb.id()),
        vec![b"b1".to_vec(), b"b2".to_vec()]
    );
    assert_eq!(fb.progress.lock()[&ka.id()], (11, 3));
    wait_until("sessions", LIMIT, || {
        a.connected() == vec![kb.id()] && b.connected() == vec![ka.id()]
    })
    .await;

    // Live push.
    fa.add_update(b"a4");
    a.notify_local_change();
    wait_until("live push a→b", LIMIT, || {
        fb.received_from(&ka.id()).len() == 4
    })
    .await;
    fb.add_update(b"b3");
    b.notify_local_change();
    wait_until("live push b→a", LIMIT, || {
        fa.received_from(&kb.id()).len() == 3
    })
    .await;
    let stats = a.stats();
    assert!(stats.bytes_sent > 0 && stats.bytes_received > 0);

    // Resume: b restarts with its saved progress; only newer updates come.
    b.shutdown().await;
    wait_until("a sees b gone", LIMIT, || a.connected().is_empty()).await;
    fa.add_update(b"a5");
    fa.add_update(b"a6");
    let applied_before = fb.applied.lock().len();
    let a_applied_before = fa.applied.lock().len();
    let b2 = start("b", &kb, copy_of(&base), fb.clone(), vec![a.local_addr()]).await;
    wait_until("resume", LIMIT, || fb.received_from(&ka.id()).len() == 6).await;
    let after_restart: Vec<Vec<u8>> = fb.applied.lock()[applied_before..]
        .iter()
        .flat_map(|x| x.updates.clone())
        .collect();
    assert_eq!(after_restart, vec![b"a5".to_vec(), b"a6".to_vec()]);
    wait_until("sessions again", LIMIT, || a.connected() == vec![kb.id()]).await;
    // a was up to date with b: nothing re-sent.
    assert_eq!(fa.applied.lock().len(), a_applied_before);
    // Stats include closed connections.
    assert!(a.stats().bytes_sent >= stats.bytes_sent);
    b2.shutdown().await;
    a.shutdown().await;
}

/// Two fetches of the same blocks at once (a read on demand while the pull asks for them):
/// each block crosses the wire once, and both callers get its bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fetches_of_a_block_move_it_once() {
    init_tracing();
    let (ka, kb) = (key(), key());
    let base = members_of(&[&ka, &kb]);
    let (fa, fb) = (FakeReplica::new(1), FakeReplica::new(2));
    let blocks: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 5000]).collect();
    let ids: Vec<BlockId> = blocks.iter().map(|d| fb.add_block(d)).collect();
    let b = start("b", &kb, copy_of(&base), fb.clone(), vec![]).await;
    let a = start("a", &ka, copy_of(&base), fa.clone(), vec![b.local_addr()]).await;
    wait_until("a connected to b", LIMIT, || a.connected().len() == 1).await;
    // Slow answers keep the first fetch in flight while the second starts.
    *fb.block_delay.lock() = Some(Duration::from_millis(100));
    let t = Duration::from_secs(10);
    let (first, second) = bounded(LIMIT, async {
        tokio::join!(a.fetch_blocks(&ids, t), a.fetch_blocks(&ids[2..], t))
    })
    .await;
    for (got, want) in [(&first, &blocks[..]), (&second, &blocks[2..])] {
        assert_eq!(got.len(), want.len());
        for ((id, r), data) in got.iter().zip(want) {
            assert_eq!(r.as_ref().unwrap(), data, "block {id}");
        }
    }
    assert_eq!(
        fb.served.load(Ordering::SeqCst),
        ids.len(),
        "each block served once"
    );
    // Once done, a block is fetched again when asked again.
    *fb.block_delay.lock() = None;
    let again = a.fetch_blocks(&ids[..1], t).await;
    assert!(again[0].1.is_ok());
    assert_eq!(fb.served.load(Ordering::SeqCst), ids.len() + 1);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_blocks_verifies_and_avoids_a_lying_peer() {
    init_tracing();
    let (ka, kb, kc) = (key(), key(), key());
    let base = members_of(&[&ka, &kb, &kc]);
    let (fa, fb, fc) = (
        FakeReplica::new(1),
        FakeReplica::new(2),
        FakeReplica::new(3),
    );
    let blocks: Vec<Vec<u8>> = (0..16u8).map(|i| vec![i; 1000 + usize::from(i)]).collect();
    let ids: Vec<BlockId> = blocks.iter().map(|d| fb.add_block(d)).collect();
    for id in &ids {
        fc.lie_about.lock().insert(*id);
    }
    let b = start("b", &kb, copy_of(&base), fb.clone(), vec![]).await;
    let c = start("c", &kc, copy_of(&base), fc.clone(), vec![]).await;
    let a = start(
        "a",
        &ka,
        copy_of(&base),
        fa.clone(),
        vec![b.local_addr(), c.local_addr()],
    )
    .await;
    wait_until("a connected to b and c", LIMIT, || a.connected().len() == 2).await;

    let got = bounded(LIMIT, a.fetch_blocks(&ids, Duration::from_secs(5))).await;
    assert_eq!(got.len(), ids.len());
    for ((id, r), data) in got.iter().zip(&blocks) {
        assert_eq!(r.as_ref().unwrap(), data, "block {id}");
    }
    assert!(
        fc.lies_told.load(Ordering::SeqCst) > 0,
        "the liar was asked at least once"
    );

    // Nobody has it: an error, well within the deadline.
    let missing = BlockId::of(b"nobody has this");
    let t = Instant::now();
    let got = a.fetch_blocks(&[missing], Duration::from_secs(2)).await;
    assert!(matches!(got[0].1, Err(FetchError::NotFound)));
    assert!(t.elapsed() < Duration::from_secs(3));

    // Peers that do not answer in time: the deadline holds.
    *fb.block_delay.lock() = Some(Duration::from_secs(3));
    *fc.block_delay.lock() = Some(Duration::from_secs(3));
    let t = Instant::now();
    let got = a.fetch_blocks(&ids[..2], Duration::from_millis(300)).await;
    assert!(
        got.iter()
            .all(|(_, r)| matches!(r, Err(FetchError::Timeout)))
    );
    assert!(t.elapsed() < Duration::from_millis(300) + Duration::from_millis(700));
    *fb.block_delay.lock() = None;
    *fc.block_delay.lock() = None;

    for n in [a, b, c] {
        n.shutdown().await;
    }
}

/// The three ways a fetch fails are told apart: no peer, a peer that sent wrong bytes (named),
/// and a deadline (the last is checked in `fetch_blocks_verifies_and_avoids_a_lying_peer`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_names_the_peer_that_sent_wrong_bytes_and_no_peers_is_its_own_error() {
    init_tracing();
    let (ka, kc) = (key(), key());
    let base = members_of(&[&ka, &kc]);
    let (fa, fc) = (FakeReplica::new(1), FakeReplica::new(3));
    let id = BlockId::of(b"only a liar answers for this");
    fc.lie_about.lock().insert(id);
    let a = start("a", &ka, copy_of(&base), fa.clone(), vec![]).await;
    let alone = a.fetch_blocks(&[id], Duration::from_secs(2)).await;
    let e = alone[0].1.as_ref().unwrap_err();
    assert!(e.is_no_peers() && !e.is_timeout(), "{e}");

    let c = start("c", &kc, copy_of(&base), fc.clone(), vec![a.local_addr()]).await;
    wait_until("a connected to c", LIMIT, || a.connected().len() == 1).await;
    let got = bounded(LIMIT, a.fetch_blocks(&[id], Duration::from_secs(5))).await;
    let e = got[0].1.as_ref().unwrap_err();
    assert_eq!(*e, FetchError::BadBytes { peer: kc.id() });
    assert_eq!(e.bad_peer(), Some(kc.id()));
    assert!(!e.is_timeout() && !e.is_no_peers());
    assert!(fc.lies_told.load(Ordering::SeqCst) > 0);
    a.shutdown().await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_revoked_and_wrong_devices_are_refused() {
    init_tracing();
    let (ka, kb, kx) = (key(), key(), key());
    let base = members_of(&[&ka, &kb]);
    let fa = FakeReplica::new(1);
    fa.add_update(b"secret update");
    let secret_block = fa.add_block(b"secret block");
    let members_a = copy_of(&base);
    let a = start("a", &ka, members_a.clone(), fa.clone(), vec![]).await;

    // Unknown device: x believes it is a member (its own list says so), a does not.
    let x_list = members_of(&[&ka, &kb, &kx]);
    let fx = FakeReplica::new(9);
    fx.add_block(b"x block");
    let x = start("x", &kx, copy_of(&x_list), fx.clone(), vec![]).await;
    let r = bounded(LIMIT, x.connect(a.local_addr())).await;
    assert!(r.is_err(), "unknown device connected: {r:?}");

    // Revoked device.
    members_a.revoke(&ka, &kb.id()).unwrap();
    let fb = FakeReplica::new(2);
    let b = start("b", &kb, copy_of(&base), fb.clone(), vec![]).await;
    let r = bounded(LIMIT, b.connect(a.local_addr())).await;
    assert!(r.is_err(), "revoked device connected: {r:?}");
    // Nor can the revoked device be reached by a.
    let r = bounded(LIMIT, a.connect(b.local_addr())).await;
    assert!(r.is_err(), "a reached a revoked device: {r:?}");

    // Expecting b, reaching a: the client's pin fails the handshake.
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let cfg = raw_client_config(&kb, kx.id(), ALPN).unwrap();
    let r = bounded(
        LIMIT,
        endpoint.connect_with(cfg, a.local_addr(), "fossa").unwrap(),
    )
    .await;
    assert!(r.is_err(), "pinned client accepted the wrong server");

    // Nothing moved.
    assert!(a.connected().is_empty() && x.connected().is_empty() && b.connected().is_empty());
    assert!(fx.applied.lock().is_empty() && fb.applied.lock().is_empty());
    assert!(fa.applied.lock().is_empty());
    let got = x
        .fetch_blocks(&[secret_block], Duration::from_millis(500))
        .await;
    assert!(got[0].1.is_err());

    for n in [a, b, x] {
        n.shutdown().await;
    }
}

/// Opens a raw member connection to `node`, sends `bytes` on the control stream and returns
/// the close code the node answers with.
async fn raw_send(
    key: &DeviceKey,
    server: fossa_net::DeviceId,
    addr: std::net::SocketAddr,
    bytes: &[u8],
) -> u64 {
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let cfg = raw_client_config(key, server, ALPN).unwrap();
    let conn = bounded(LIMIT, endpoint.connect_with(cfg, addr, "fossa").unwrap())
        .await
        .unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    let reason = bounded(LIMIT, conn.closed()).await;
    match reason {
        quinn::ConnectionError::ApplicationClosed(c) => c.error_code.into_inner(),
        other => panic!("unexpected close: {other:?}"),
    }
}

/// A member connection that completes the opening exchange by hand (empty name, member list
/// and position), then sends `bytes` on a second stream (a block stream).
async fn raw_block_stream(
    key: &DeviceKey,
    server: fossa_net::DeviceId,
    addr: std::net::SocketAddr,
    bytes: &[u8],
) -> u64 {
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let cfg = raw_client_config(key, server, ALPN).unwrap();
    let conn = bounded(LIMIT, endpoint.connect_with(cfg, addr, "fossa").unwrap())
        .await
        .unwrap();
    let (mut control, mut control_recv) = conn.open_bi().await.unwrap();
    let mut hello = vec![0u8, 0]; // tag Hello, minor 0
    hello.extend_from_slice(&VOL);
    hello.extend_from_slice(&key.id().0);
    hello.extend_from_slice(&[0, 0, 0]); // name "", index_id 0, seq 0
    let mut opening = u32::try_from(hello.len()).unwrap().to_le_bytes().to_vec();
    opening.extend_from_slice(&hello);
    opening.extend_from_slice(&[2, 0, 0, 0, 1, 0]); // Members { records: [] }
    opening.extend_from_slice(&[3, 0, 0, 0, 2, 0, 0]); // Want { 0, 0 }
    control.write_all(&opening).await.unwrap();
    // The node's Hello shows that it accepted us.
    let mut first = [0u8; 5];
    bounded(LIMIT, control_recv.read_exact(&mut first))
        .await
        .unwrap();
    assert_eq!(first[4], 0, "Hello tag");
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    match bounded(LIMIT, conn.closed()).await {
        quinn::ConnectionError::ApplicationClosed(c) => c.error_code.into_inner(),
        other => panic!("unexpected close: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_messages_close_only_that_connection() {
    init_tracing();
    let (ka, kb, km) = (key(), key(), key());
    let base = members_of(&[&ka, &kb, &km]);
    let fa = FakeReplica::new(1);
    fa.add_update(b"u1");
    let a = start("a", &ka, copy_of(&base), fa.clone(), vec![]).await;

    // Body that does not decode (an unterminated varint tag).
    let code = raw_send(
        &km,
        ka.id(),
        a.local_addr(),
        &[3, 0, 0, 0, 0xff, 0xff, 0xff],
    )
    .await;
    assert_eq!(code, 1, "PROTOCOL");
    // Unknown tag.
    let code = raw_send(&km, ka.id(), a.local_addr(), &[1, 0, 0, 0, 12]).await;
    assert_eq!(code, 1, "PROTOCOL");
    // Length prefix above MAX_MESSAGE_SIZE.
    let code = raw_send(&km, ka.id(), a.local_addr(), &[0xff, 0xff, 0xff, 0xff, 0]).await;
    assert_eq!(code, 1, "PROTOCOL");

    // Same on a block stream, after a valid opening exchange.
    for garbage in [
        vec![0xff, 0xff, 0xff, 0xff],
        vec![2, 0, 0, 0, 4, 65],
        vec![1, 0, 0, 0, 3],
    ] {
        let code = raw_block_stream(&km, ka.id(), a.local_addr(), &garbage).await;
        assert_eq!(code, 1, "PROTOCOL for {garbage:?}");
    }

    // The node still serves another peer.
    let fb = FakeReplica::new(2);
    let b = start("b", &kb, copy_of(&base), fb.clone(), vec![a.local_addr()]).await;
    wait_until("b synced", LIMIT, || {
        fb.received_from(&ka.id()) == vec![b"u1".to_vec()]
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_with_an_invitation() {
    init_tracing();
    let ka = key();
    let members_a = Arc::new(Members::new(VOL));
    members_a.add_own(&ka, record(&ka, ka.id(), "a")).unwrap();
    let mut changes = members_a.subscribe();
    changes.mark_unchanged();
    let fa = FakeReplica::new(1);
    fa.add_update(b"hello joiner");
    let a = start("a", &ka, members_a.clone(), fa.clone(), vec![]).await;

    let expiry = SystemTime::now() + Duration::from_secs(600);
    let invite = PendingInvite {
        role: fossa_net::Role::Device,
        secret: [7; 32],
        k_wrap: [8; 32],
        expiry,
    };
    a.add_invite(invite);
    let code = InviteCode {
        role: fossa_net::Role::Device,
        volume: VOL,
        secret: [7; 32],
        wrapped: vec![1, 2, 3],
        inviter: ka.id(),
        addrs: vec![a.local_addr()],
        expiry: in_ten_minutes(),
    };
    let code = InviteCode::decode(&code.encode()).unwrap();

    // Valid code.
    let kj = key();
    let r = bounded(LIMIT, join(&code, &kj, "joiner", Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(r.k_wrap, Some([8; 32]));
    assert!(
        r.members
            .iter()
            .any(|m| m.record.device == kj.id() && m.signer == ka.id())
    );
    assert!(members_a.is_member(&kj.id()));
    assert!(
        changes.has_changed().unwrap(),
        "the daemon is told to save the list"
    );

    // Keep another invitation pending so that refusals are answered, not handshake failures.
    a.add_invite(PendingInvite {
        role: fossa_net::Role::Device,
        secret: [9; 32],
        k_wrap: [10; 32],
        expiry,
    });

    // Second use.
    let k2 = key();
    let r = bounded(LIMIT, join(&code, &k2, "again", Duration::from_secs(5))).await;
    assert!(
        matches!(r, Err(NetError::Invite(InviteError::Refused))),
        "{:?}",
        r.err()
    );
    // Wrong proof (wrong secret).
    let mut wrong = code.clone();
    wrong.secret = [1; 32];
    let r = bounded(LIMIT, join(&wrong, &k2, "wrong", Duration::from_secs(5))).await;
    assert!(
        matches!(r, Err(NetError::Invite(InviteError::Refused))),
        "{:?}",
        r.err()
    );
    // Expired.
    a.add_invite(PendingInvite {
        role: fossa_net::Role::Device,
        secret: [11; 32],
        k_wrap: [12; 32],
        expiry: SystemTime::now() - Duration::from_secs(1),
    });
    let mut expired = code.clone();
    expired.secret = [11; 32];
    let r = bounded(LIMIT, join(&expired, &k2, "late", Duration::from_secs(5))).await;
    assert!(
        matches!(r, Err(NetError::Invite(InviteError::Refused))),
        "{:?}",
        r.err()
    );
    assert!(!members_a.is_member(&k2.id()));

    // Pinning: a code naming another inviter fails.
    let mut other = code.clone();
    other.inviter = k2.id();
    other.secret = [9; 32];
    assert!(
        bounded(LIMIT, join(&other, &k2, "x", Duration::from_secs(5)))
            .await
            .is_err()
    );

    // The joiner syncs as a member.
    let mj = Members::new(VOL);
    mj.merge(&r_members(&members_a));
    let fj = FakeReplica::new(5);
    let j = start("j", &kj, Arc::new(mj), fj.clone(), vec![a.local_addr()]).await;
    wait_until("joiner synced", LIMIT, || {
        fj.received_from(&ka.id()).len() == 1
    })
    .await;
    j.shutdown().await;
    a.shutdown().await;
}

fn r_members(m: &Members) -> Vec<fossa_net::SignedMember> {
    m.signed()
}

/// Unix seconds ten minutes from now (a code's expiry).
fn in_ten_minutes() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_silent_port_fails_within_the_timeout() {
    init_tracing();
    let ka = key();
    let base = members_of(&[&ka]);
    let mut cfg = config("a", vec![]);
    cfg.connect_timeout = Duration::from_millis(500);
    let a = Node::start(cfg, ka.clone(), copy_of(&base), FakeReplica::new(1))
        .await
        .unwrap();
    // A bound socket that never answers, and a port nobody listens on.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let closed = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    for addr in [silent.local_addr().unwrap(), closed] {
        let t = Instant::now();
        let r = bounded(LIMIT, a.connect(addr)).await;
        assert!(r.is_err());
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "{:?}",
            t.elapsed()
        );
    }
    // join() is bounded the same way.
    let code = InviteCode {
        role: fossa_net::Role::Device,
        volume: VOL,
        secret: [0; 32],
        wrapped: vec![],
        inviter: ka.id(),
        addrs: vec![silent.local_addr().unwrap()],
        expiry: in_ten_minutes(),
    };
    let t = Instant::now();
    let r = join(&code, &key(), "j", Duration::from_millis(500)).await;
    assert!(matches!(r, Err(NetError::Link(LinkError::Timeout))));
    assert!(t.elapsed() < Duration::from_millis(2000));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_dials_keep_one_connection() {
    init_tracing();
    let (ka, kb) = (key(), key());
    let base = members_of(&[&ka, &kb]);
    let (fa, fb) = (FakeReplica::new(1), FakeReplica::new(2));
    // Reserve b's port so that each can name the other from the start.
    let b_addr = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let a = start("a", &ka, copy_of(&base), fa.clone(), vec![b_addr]).await;
    let b = Node::start(
        NodeConfig {
            listen: b_addr,
            ..config("b", vec![a.local_addr()])
        },
        kb.clone(),
        copy_of(&base),
        fb.clone(),
    )
    .await
    .unwrap();
    wait_until("one session each way", LIMIT, || {
        a.connected() == vec![kb.id()]
            && b.connected() == vec![ka.id()]
            && a.stats().connections == 1
            && b.stats().connections == 1
    })
    .await;
    fa.add_update(b"x");
    a.notify_local_change();
    wait_until("push over the kept connection", LIMIT, || {
        fb.received_from(&ka.id()).len() == 1
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_propagate_and_revocation_closes_the_session() {
    init_tracing();
    let (ka, kb, kd) = (key(), key(), key());
    let base = members_of(&[&ka, &kb]);
    let (ma, mb) = (copy_of(&base), copy_of(&base));
    let (fa, fb) = (FakeReplica::new(1), FakeReplica::new(2));
    let a = start("a", &ka, ma.clone(), fa.clone(), vec![]).await;
    let b = start("b", &kb, mb.clone(), fb.clone(), vec![a.local_addr()]).await;
    wait_until("session", LIMIT, || a.connected() == vec![kb.id()]).await;

    ma.add_own(&ka, record(&kd, ka.id(), "d")).unwrap();
    wait_until("b learns d", LIMIT, || mb.is_member(&kd.id())).await;

    ma.revoke(&ka, &kb.id()).unwrap();
    wait_until("a drops b", LIMIT, || {
        a.connected().is_empty() && b.connected().is_empty()
    })
    .await;
    fa.add_update(b"after revocation");
    a.notify_local_change();
    // b keeps redialing and is refused each time: nothing reaches it.
    let r = bounded(LIMIT, b.connect(a.local_addr())).await;
    assert!(r.is_err());
    assert!(fb.received_from(&ka.id()).is_empty());
    a.shutdown().await;
    b.shutdown().await;
}

/// `--max-recv` on the fetching side and `--max-send` on the serving side both hold the
/// block data rate down (2 MiB at 1 MiB/s cannot arrive in much under 2 s; unlimited it takes
/// milliseconds on loopback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_limits_hold_the_rate() {
    init_tracing();
    let (ka, kb) = (key(), key());
    let base = members_of(&[&ka, &kb]);
    let (fa, fb) = (FakeReplica::new(1), FakeReplica::new(2));
    let ids: Vec<BlockId> = (0..16u8)
        .map(|i| fb.add_block(&vec![i; 128 << 10]))
        .collect();
    let b = start("b", &kb, copy_of(&base), fb.clone(), vec![]).await;
    let a = start("a", &ka, copy_of(&base), fa, vec![b.local_addr()]).await;
    wait_until("a connected to b", LIMIT, || a.connected().len() == 1).await;
    let fetch_all = |a: Arc<Node>, ids: Vec<BlockId>| async move {
        let t = Instant::now();
        let got = a.fetch_blocks(&ids, Duration::from_secs(20)).await;
        assert!(got.iter().all(|(_, r)| r.is_ok()));
        t.elapsed()
    };
    for (recv_side, send_side) in [(1u64 << 20, 0u64), (0, 1 << 20)] {
        a.set_rate_limits(0, recv_side);
        b.set_rate_limits(send_side, 0);
        let took = bounded(LIMIT, fetch_all(a.clone(), ids.clone())).await;
        assert!(
            took >= Duration::from_millis(1500),
            "2 MiB at 1 MiB/s (recv {recv_side}, send {send_side}) took only {took:?}"
        );
    }
    for n in [a, b] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keeper_opening_a_request_stream_is_a_protocol_violation() {
    init_tracing();
    let (ka, kk) = (key(), key());
    let base = members_of(&[&ka]);
    let mut r = record(&kk, ka.id(), "k");
    r.role = fossa_net::Role::Keeper;
    base.add_own(&ka, r).unwrap();
    let a = start("a", &ka, copy_of(&base), FakeReplica::new(1), vec![]).await;
    // A well-formed GetBlocks { ids: [] }: refused because a keeper asks nothing.
    let code = raw_block_stream(&kk, ka.id(), a.local_addr(), &[2, 0, 0, 0, 4, 0]).await;
    assert_eq!(code, 1, "PROTOCOL");
}
