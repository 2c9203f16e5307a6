//! Joining over real QUIC on loopback (docs/protocol.md, "Joining"; crypto.md, "Invitations"):
//! an invitation is consumed only by a confirmed join, and failed attempts are rate-limited
//! per address and per invitation.
#![allow(clippy::unwrap_used)] // tests panic on purpose
mod common;

use common::*;
use fossa_net::{
    DeviceKey, InviteCode, InviteError, JoinLimits, Members, NetError, Node, PendingInvite,
    PendingJoin, Role, begin_join_from,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const T: Duration = Duration::from_secs(5);

/// A running inviter with one member (itself).
async fn inviter() -> (Arc<DeviceKey>, Arc<Members>, Arc<Node>) {
    let ka = key();
    let members = Arc::new(Members::new(VOL));
    members.add_own(&ka, record(&ka, ka.id(), "a")).unwrap();
    let node = start("a", &ka, members.clone(), FakeReplica::new(1), vec![]).await;
    (ka, members, node)
}

fn pending(secret: u8) -> PendingInvite {
    PendingInvite {
        role: Role::Device,
        secret: [secret; 32],
        k_wrap: [secret + 100; 32],
        expiry: SystemTime::now() + Duration::from_secs(600),
    }
}

fn code_for(node: &Node, secret: u8) -> InviteCode {
    let expiry = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    InviteCode {
        role: Role::Device,
        volume: VOL,
        secret: [secret; 32],
        wrapped: vec![1, 2, 3],
        inviter: node.id(),
        addrs: vec![node.local_addr()],
        expiry,
    }
}

/// Begins a join from `127.0.0.host`.
async fn begin(host: u8, code: &InviteCode, k: &DeviceKey) -> Result<PendingJoin, NetError> {
    let bind = SocketAddr::from(([127, 0, 0, host], 0));
    bounded(LIMIT, begin_join_from(bind, code, k, "joiner", T)).await
}

/// Begins a join, retrying while the inviter still holds the invitation for an abandoned
/// join (it releases it when it sees the connection end).
async fn begin_when_released(host: u8, code: &InviteCode, k: &DeviceKey) -> PendingJoin {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        match begin(host, code, k).await {
            Ok(p) => return p,
            Err(e) if tokio::time::Instant::now() > deadline => panic!("never released: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_is_consumed_only_by_a_confirmed_join() {
    init_tracing();
    let (_ka, members, a) = inviter().await;
    a.add_invite(pending(7));
    let code = code_for(&a, 7);

    // Accepted, not confirmed: the inviter adds nothing, and holds the invitation.
    let k1 = key();
    let p1 = begin(1, &code, &k1).await.unwrap();
    assert_eq!(p1.k_wrap, Some([107; 32]));
    assert!(p1.members.iter().any(|m| m.record.device == a.id()));
    assert!(!p1.members.iter().any(|m| m.record.device == k1.id()));
    assert!(!members.is_member(&k1.id()));
    let k2 = key();
    let busy = begin(2, &code, &k2).await;
    assert!(
        matches!(busy, Err(NetError::Invite(InviteError::Refused))),
        "{:?}",
        busy.err()
    );

    // Abandoned (explicitly, then by a joiner that vanishes): still nobody added.
    p1.abort().await;
    let p2 = begin_when_released(2, &code, &k2).await;
    drop(p2);
    let k3 = key();
    let p3 = begin_when_released(3, &code, &k3).await;
    assert!(!members.is_member(&k1.id()) && !members.is_member(&k2.id()));

    // Confirmed: the joiner is a member with the invitation's role, and the code is spent.
    let r = bounded(LIMIT, p3.confirm(T)).await.unwrap();
    assert_eq!(r.k_wrap, Some([107; 32]));
    assert_eq!(r.role, Role::Device);
    assert!(r.members.iter().any(|m| m.record.device == k3.id()));
    assert!(members.is_member(&k3.id()));
    assert_eq!(members.list().len(), 2, "{:?}", members.list());
    a.add_invite(pending(9)); // keeps the join gate open so the refusal is an answer
    let again = begin(4, &code, &key()).await;
    assert!(
        matches!(again, Err(NetError::Invite(InviteError::Refused))),
        "{:?}",
        again.err()
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_join_attempts_wait_per_address_and_withdraw_the_invitation() {
    init_tracing();
    let (_ka, members, a) = inviter().await;
    // A delay longer than the test, so "still waiting" does not depend on speed.
    a.set_join_limits(JoinLimits {
        base_delay: Duration::from_secs(600),
        max_delay: Duration::from_secs(600),
        max_failures: 3,
    });
    a.add_invite(pending(7));
    let good = code_for(&a, 7);
    let forged = code_for(&a, 66);

    // A forged proof from .11 is refused; then even the right code from .11 is refused
    // unchecked while that address waits. It did not count against the invitation.
    let r = begin(11, &forged, &key()).await;
    assert!(
        matches!(r, Err(NetError::Invite(InviteError::Refused))),
        "{:?}",
        r.err()
    );
    let r = begin(11, &good, &key()).await;
    assert!(
        matches!(r, Err(NetError::Invite(InviteError::Refused))),
        "{:?}",
        r.err()
    );
    // From another address the right code is accepted (then abandoned: no failure).
    begin(12, &good, &key()).await.unwrap().abort().await;
    // Two more forged proofs make three failures: the invitation is withdrawn.
    for host in [13, 14] {
        let r = begin(host, &forged, &key()).await;
        assert!(
            matches!(r, Err(NetError::Invite(InviteError::Refused))),
            "{:?}",
            r.err()
        );
    }
    a.add_invite(pending(9)); // keeps the join gate open so the refusal is an answer
    let late = key();
    let r = begin(15, &good, &late).await;
    assert!(
        matches!(r, Err(NetError::Invite(InviteError::Refused))),
        "{:?}",
        r.err()
    );
    assert_eq!(members.list().len(), 1, "{:?}", members.list());
    // The new invitation works (from an address that never failed).
    let p = begin(16, &code_for(&a, 9), &late).await.unwrap();
    bounded(LIMIT, p.confirm(T)).await.unwrap();
    assert!(members.is_member(&late.id()));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_fails_before_any_traffic() {
    init_tracing();
    let (_ka, _members, a) = inviter().await;
    a.add_invite(pending(7));
    let mut code = code_for(&a, 7);
    code.expiry = 1_000_000;
    let before = a.stats();
    let r = begin(1, &code, &key()).await;
    assert!(
        matches!(
            r,
            Err(NetError::Invite(InviteError::Expired { expiry: 1_000_000 }))
        ),
        "{:?}",
        r.err()
    );
    assert_eq!(a.stats().bytes_received, before.bytes_received);
    assert_eq!(a.stats().connections, 0);
    a.shutdown().await;
}
