//! Keepers over real QUIC on 127.0.0.1: PutBlocks / HasBlocks / Audit / DropBlocks, quotas,
//! corrupt holders, keeper invitations, and what a keeper never receives.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use blockstore::{BlockId, BlockStore, StoreOptions};
use common::*;
use fossa_net::{
    BlockHolder, DeviceKey, HolderError, InviteCode, Keeper, Members, Node, PendingInvite,
    PutStatus, Role, StoreHolder, audit_nonce, audit_proof, join,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// An in-memory holder; `corrupt` makes it serve altered bytes (a rotting disk).
#[derive(Default)]
struct MemHolder {
    blocks: Mutex<HashMap<BlockId, Vec<u8>>>,
    corrupt: Mutex<bool>,
}

impl BlockHolder for MemHolder {
    fn put(&self, blocks: &[(BlockId, Vec<u8>)]) -> Vec<Result<(), HolderError>> {
        let mut m = self.blocks.lock();
        blocks
            .iter()
            .map(|(id, d)| {
                m.insert(*id, d.clone());
                Ok(())
            })
            .collect()
    }
    fn get(&self, id: &BlockId) -> Result<Option<Vec<u8>>, HolderError> {
        let mut d = self.blocks.lock().get(id).cloned();
        if *self.corrupt.lock()
            && let Some(d) = d.as_mut()
        {
            d[0] ^= 1;
        }
        Ok(d)
    }
    fn has(&self, id: &BlockId) -> Result<bool, HolderError> {
        Ok(self.blocks.lock().contains_key(id))
    }
    fn delete(&self, id: &BlockId) -> Result<bool, HolderError> {
        Ok(self.blocks.lock().remove(id).is_some())
    }
    fn list(&self) -> Result<Vec<BlockId>, HolderError> {
        Ok(self.blocks.lock().keys().copied().collect())
    }
    fn usage(&self) -> (u64, u64) {
        (0, u64::MAX)
    }
}

/// A member list: `devices[0]` founds it and adds the other devices and the keepers.
fn volume_of(devices: &[&DeviceKey], keepers: &[&DeviceKey]) -> Members {
    let m = members_of(devices);
    for (i, k) in keepers.iter().enumerate() {
        let mut r = record(k, devices[0].id(), &format!("k{i}"));
        r.role = Role::Keeper;
        m.add_own(devices[0], r).unwrap();
    }
    m
}

async fn keeper(
    key: &Arc<DeviceKey>,
    members: &Members,
    holder: Arc<dyn BlockHolder>,
    peers: Vec<std::net::SocketAddr>,
) -> Arc<Keeper> {
    Node::start_keeper(
        config("keeper", peers),
        key.clone(),
        copy_of(members),
        holder,
    )
    .await
    .unwrap()
}

fn blocks(n: usize, tag: u8) -> Vec<(BlockId, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let d = vec![tag.wrapping_add(i as u8); 1000 + i * 37];
            (BlockId::of(&d), d)
        })
        .collect()
}

const T: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_places_blocks_on_three_keepers_and_audits_them() {
    init_tracing();
    let (ka, k1, k2, k3) = (key(), key(), key(), key());
    let base = volume_of(&[&ka], &[&k1, &k2, &k3]);
    let a = start("a", &ka, copy_of(&base), FakeReplica::new(1), vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(BlockStore::open(dir.path(), StoreOptions::default()).unwrap());
    let h1: Arc<dyn BlockHolder> = Arc::new(StoreHolder::new(store.clone(), u64::MAX));
    let h2 = Arc::new(MemHolder::default());
    let h3 = Arc::new(MemHolder::default());
    let n1 = keeper(&k1, &base, h1.clone(), vec![a.local_addr()]).await;
    let _n2 = keeper(&k2, &base, h2.clone(), vec![a.local_addr()]).await;
    let n3 = keeper(&k3, &base, h3.clone(), vec![a.local_addr()]).await;
    assert_eq!(n1.role(), Role::Keeper);
    wait_until("keepers connected", LIMIT, || a.connected().len() == 3).await;

    let bs = blocks(20, 1);
    let ids: Vec<BlockId> = bs.iter().map(|(id, _)| *id).collect();
    for k in [&k1, &k2, &k3] {
        let st = bounded(LIMIT, a.put_blocks(&k.id(), &bs, T)).await.unwrap();
        assert!(st.iter().all(|s| *s == PutStatus::Stored), "{st:?}");
    }
    assert_eq!(h1.list().unwrap().len(), 20);
    assert_eq!(store.stats().pinned_blocks, 20);

    // Has: a bitmap, unknown ids false.
    let mut asked = ids.clone();
    asked.push(BlockId::of(b"never stored"));
    let has = bounded(LIMIT, a.has_blocks(&k2.id(), &asked, T))
        .await
        .unwrap();
    assert_eq!(has.iter().filter(|h| **h).count(), 20);
    assert!(!has[20]);

    // Audit: proofs over a fresh nonce match the auditor's own computation.
    let nonce = audit_nonce().unwrap();
    for k in [&k1, &k2, &k3] {
        let proofs = bounded(LIMIT, a.audit(&k.id(), nonce, &asked, T))
            .await
            .unwrap();
        for ((_, data), p) in bs.iter().zip(&proofs) {
            assert_eq!(*p, Some(audit_proof(&nonce, data)));
        }
        assert_eq!(proofs[20], None);
    }

    // Keepers serve the blocks back to members (GetBlocks), verified by id.
    let got = bounded(LIMIT, a.fetch_blocks(&ids[..5], T)).await;
    assert!(got.iter().all(|(_, r)| r.is_ok()));

    // Drop: deleted at that keeper only.
    let dropped = bounded(LIMIT, a.drop_blocks(&k3.id(), &ids[..4], T))
        .await
        .unwrap();
    assert_eq!(dropped, vec![true; 4]);
    assert_eq!(h3.list().unwrap().len(), 16);
    let dropped = bounded(LIMIT, a.drop_blocks(&k1.id(), &ids[..2], T))
        .await
        .unwrap();
    assert_eq!(dropped, vec![true; 2]);
    assert!(!store.has(&ids[0]).unwrap());

    // A keeper asks nothing of anyone: `Keeper` has no `put_blocks` or `fetch_blocks` (the
    // compile_fail examples on `fossa_net::Keeper` check that); it has the role it started as.
    assert_eq!(n3.role(), Role::Keeper);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupting_keeper_fails_its_audit() {
    init_tracing();
    let (ka, k1) = (key(), key());
    let base = volume_of(&[&ka], &[&k1]);
    let a = start("a", &ka, copy_of(&base), FakeReplica::new(1), vec![]).await;
    let h = Arc::new(MemHolder::default());
    let _k = keeper(&k1, &base, h.clone(), vec![a.local_addr()]).await;
    wait_until("keeper connected", LIMIT, || a.connected().len() == 1).await;
    let bs = blocks(3, 9);
    let ids: Vec<BlockId> = bs.iter().map(|(id, _)| *id).collect();
    bounded(LIMIT, a.put_blocks(&k1.id(), &bs, T))
        .await
        .unwrap();
    *h.corrupt.lock() = true;
    let nonce = audit_nonce().unwrap();
    let proofs = bounded(LIMIT, a.audit(&k1.id(), nonce, &ids, T))
        .await
        .unwrap();
    for ((_, data), p) in bs.iter().zip(&proofs) {
        assert!(p.is_some(), "it answers");
        assert_ne!(
            *p,
            Some(audit_proof(&nonce, data)),
            "but the proof is wrong"
        );
    }
    // The same keeper's GetBlocks answers are refused by id.
    let got = bounded(LIMIT, a.fetch_blocks(&ids, T)).await;
    assert!(got.iter().all(|(_, r)| r.is_err()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keeper_over_quota_refuses_with_quota_full() {
    init_tracing();
    let (ka, k1) = (key(), key());
    let base = volume_of(&[&ka], &[&k1]);
    let a = start("a", &ka, copy_of(&base), FakeReplica::new(1), vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(BlockStore::open(dir.path(), StoreOptions::default()).unwrap());
    let holder = Arc::new(StoreHolder::new(store, 2500));
    let _k = keeper(&k1, &base, holder.clone(), vec![a.local_addr()]).await;
    wait_until("keeper connected", LIMIT, || a.connected().len() == 1).await;
    let bs = blocks(3, 20); // 1000, 1037, 1074 bytes
    let st = bounded(LIMIT, a.put_blocks(&k1.id(), &bs, T))
        .await
        .unwrap();
    assert_eq!(
        st,
        vec![PutStatus::Stored, PutStatus::Stored, PutStatus::QuotaFull]
    );
    // Already held: never refused. A block whose bytes do not match its id: Bad.
    let mut again = bs[..1].to_vec();
    again.push((BlockId::of(b"x"), b"y".to_vec()));
    let st = bounded(LIMIT, a.put_blocks(&k1.id(), &again, T))
        .await
        .unwrap();
    assert_eq!(st, vec![PutStatus::Stored, PutStatus::Bad]);
    assert_eq!(holder.usage(), (2037, 2500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keeper_receives_no_index_updates() {
    init_tracing();
    let (ka, kb, k1) = (key(), key(), key());
    let base = volume_of(&[&ka, &kb], &[&k1]);
    let fa = FakeReplica::new(1);
    fa.add_update(b"secret file entry");
    let a = start("a", &ka, copy_of(&base), fa.clone(), vec![]).await;
    let h = Arc::new(MemHolder::default());
    let k = keeper(&k1, &base, h, vec![a.local_addr()]).await;
    let fb = FakeReplica::new(2);
    let _b = start("b", &kb, copy_of(&base), fb.clone(), vec![a.local_addr()]).await;
    // The device gets the update; by then the keeper's session has long been up.
    wait_until("b synced", LIMIT, || !fb.received_from(&ka.id()).is_empty()).await;
    wait_until("keeper connected", LIMIT, || {
        k.connected().contains(&ka.id())
    })
    .await;
    fa.add_update(b"another entry");
    a.notify_local_change();
    wait_until("b got the live update", LIMIT, || {
        fb.received_from(&ka.id()).len() == 2
    })
    .await;
    assert_eq!(k.stats().index_batches_received, 0);
    assert!(k.connected().contains(&ka.id()), "session still up");
    assert!(
        !k.connected().contains(&kb.id()),
        "keepers do not dial each other or b"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keeper_joins_with_a_keeper_invitation_and_gets_no_secret() {
    init_tracing();
    let (ka, k1) = (key(), key());
    let base = members_of(&[&ka]);
    let a = start("a", &ka, copy_of(&base), FakeReplica::new(1), vec![]).await;
    let inv = PendingInvite::generate_keeper(Duration::from_secs(60)).unwrap();
    a.add_invite(inv.clone());
    let code = inv.code(
        VOL,
        b"wrapped volume secret".to_vec(),
        ka.id(),
        vec![a.local_addr()],
    );
    assert!(
        code.wrapped.is_empty(),
        "a keeper code carries no wrapped secret"
    );
    let code = InviteCode::decode(&code.encode()).unwrap();
    assert_eq!(code.role, Role::Keeper);
    let r = bounded(LIMIT, join(&code, &k1, "keeper", T)).await.unwrap();
    assert_eq!(r.k_wrap, None);
    assert_eq!(r.role, Role::Keeper);
    let joined = Members::new(VOL);
    joined.merge(&r.members);
    assert_eq!(joined.keepers(), vec![k1.id()]);

    let holder = Arc::new(MemHolder::default());
    let k = Node::start_keeper(
        config("keeper", vec![a.local_addr()]),
        k1.clone(),
        Arc::new(joined),
        holder.clone(),
    )
    .await
    .unwrap();
    wait_until("keeper connected", LIMIT, || {
        a.connected().contains(&k1.id())
    })
    .await;
    let bs = blocks(2, 40);
    let st = bounded(LIMIT, a.put_blocks(&k1.id(), &bs, T))
        .await
        .unwrap();
    assert_eq!(st, vec![PutStatus::Stored; 2]);
    assert_eq!(k.stats().index_batches_received, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repair_loop_places_audits_and_replaces_a_corrupt_keeper() {
    use fossa_net::repair::{Evidence, HolderTable, NodeView, Policy, execute, plan};
    init_tracing();
    let (ka, k1, k2, k3) = (key(), key(), key(), key());
    let base = volume_of(&[&ka], &[&k1, &k2, &k3]);
    let fa = FakeReplica::new(1);
    let a = start("a", &ka, copy_of(&base), fa.clone(), vec![]).await;
    let holders: Vec<Arc<MemHolder>> = (0..3).map(|_| Arc::new(MemHolder::default())).collect();
    let mut keepers = Vec::new();
    for (k, h) in [&k1, &k2, &k3].into_iter().zip(&holders) {
        keepers.push(keeper(k, &base, h.clone(), vec![a.local_addr()]).await);
    }
    wait_until("keepers connected", LIMIT, || a.connected().len() == 3).await;

    let mut table = HolderTable::new();
    let ids: Vec<BlockId> = (0..12u8).map(|i| fa.add_block(&vec![i; 5000])).collect();
    for id in &ids {
        table.set_block(*id, 5000, 3);
        table.add_holder(id, ka.id(), Evidence::Pinned);
    }
    let policy = Policy {
        audit_interval: Duration::ZERO,
        ..Policy::default()
    };
    let views = |a: &Node| -> Vec<NodeView> {
        let live = a.connected();
        let mut v = vec![NodeView {
            id: a.id(),
            role: Role::Device,
            free: 0,
            connected: true,
        }];
        for k in [&k1, &k2, &k3] {
            v.push(NodeView {
                id: k.id(),
                role: Role::Keeper,
                free: 1 << 30,
                connected: live.contains(&k.id()),
            });
        }
        v
    };
    let mut now = Duration::ZERO;
    let round = |table: &mut HolderTable, now: Duration| {
        let p = plan(table, &views(&a), &policy, now, now.as_secs());
        let a = a.clone();
        let mut t = std::mem::take(table);
        async move {
            let r = execute(&a, &mut t, &p, now, T).await;
            (t, p, r)
        }
    };
    let (t, p, r) = bounded(LIMIT, round(&mut table, now)).await;
    table = t;
    assert_eq!(p.below_level, 12);
    assert_eq!((r.copied, r.errors), (24, 0), "{r:?}");
    let held: usize = holders.iter().map(|h| h.list().unwrap().len()).sum();
    assert_eq!(held, 24, "two keepers per block");
    for id in &ids {
        assert_eq!(table.holders(id).len(), 3);
    }

    // Keeper 1's disk rots: the next rounds' audits fail, it is distrusted and replaced.
    let bad = holders[0].list().unwrap();
    assert!(bad.len() >= 3, "k1 holds {}", bad.len());
    *holders[0].corrupt.lock() = true;
    for _ in 0..3 {
        now += Duration::from_secs(30);
        let (t, _, r) = bounded(LIMIT, round(&mut table, now)).await;
        table = t;
        assert_eq!(r.errors, 0, "{r:?}");
    }
    assert!(table.audit_failures(&k1.id()) >= 3);
    for id in &ids {
        let others: Vec<_> = table
            .holders(id)
            .into_iter()
            .filter(|h| *h != k1.id())
            .collect();
        assert_eq!(
            others.len(),
            3,
            "{id} not re-replicated away from the corrupt keeper"
        );
    }
    assert_eq!(
        holders[1].list().unwrap().len() + holders[2].list().unwrap().len(),
        24
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_with_a_holder_takes_copies_and_one_without_fails_them() {
    use fossa_net::Backend;
    init_tracing();
    let (ka, kb, kc) = (key(), key(), key());
    let base = members_of(&[&ka, &kb, &kc]);
    let a = start("a", &ka, copy_of(&base), FakeReplica::new(1), vec![]).await;
    let h = Arc::new(MemHolder::default());
    let backend = Backend {
        replica: FakeReplica::new(2),
        holder: Some(h.clone()),
    };
    let cfg = config("b", vec![a.local_addr()]);
    let _b = Node::start_with(cfg, kb.clone(), copy_of(&base), backend)
        .await
        .unwrap();
    let _c = start(
        "c",
        &kc,
        copy_of(&base),
        FakeReplica::new(3),
        vec![a.local_addr()],
    )
    .await;
    wait_until("b and c connected", LIMIT, || a.connected().len() == 2).await;
    let bs = blocks(2, 60);
    let st = bounded(LIMIT, a.put_blocks(&kb.id(), &bs, T))
        .await
        .unwrap();
    assert_eq!(st, vec![PutStatus::Stored; 2]);
    assert_eq!(h.list().unwrap().len(), 2);
    let st = bounded(LIMIT, a.put_blocks(&kc.id(), &bs, T))
        .await
        .unwrap();
    assert_eq!(st, vec![PutStatus::Failed; 2]);
    // A device without a holder still answers Has and Audit from its replica.
    let has = bounded(LIMIT, a.has_blocks(&kc.id(), &[bs[0].0], T))
        .await
        .unwrap();
    assert_eq!(has, vec![false]);
}
