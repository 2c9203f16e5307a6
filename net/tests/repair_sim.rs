//! Deterministic simulation of placement, audit and repair (fossa_net::repair) over an
//! in-memory swarm with injected time: no network, no sleeps, fixed seeds.
#![allow(missing_docs, clippy::unwrap_used)]

use blockstore::BlockId;
use fossa_net::repair::{Action, Evidence, HolderTable, NodeView, Policy, plan};
use fossa_net::{DeviceId, Role};
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

/// One round of the daemon's repair loop.
const ROUND: Duration = Duration::from_secs(30);

/// A tiny deterministic PRNG (SplitMix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    #[default]
    Honest,
    /// Keeps the bytes of blocks with an even first id byte corrupted.
    Corrupts,
    /// Says it has every block it is asked about; holds none of those claims.
    Lies,
}

struct SimNode {
    id: DeviceId,
    role: Role,
    quota: u64,
    used: u64,
    alive: bool,
    behaviour: Behaviour,
    held: HashSet<BlockId>,
}

struct Sim {
    nodes: Vec<SimNode>,
    sizes: Vec<(BlockId, u64)>,
    table: HolderTable,
    policy: Policy,
    now: Duration,
    round: u64,
    bytes_moved: u64,
}

impl Sim {
    /// `devices` devices then keepers, `blocks` blocks of 16–256 KiB written on node 0.
    fn new(nodes: usize, devices: usize, blocks: usize, level: u8, seed: u64) -> Self {
        let mut rng = Rng(seed);
        let nodes: Vec<SimNode> = (0..nodes)
            .map(|i| {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&rng.next().to_le_bytes());
                id[8] = i as u8;
                SimNode {
                    id: DeviceId(id),
                    role: if i < devices {
                        Role::Device
                    } else {
                        Role::Keeper
                    },
                    quota: 50 << 30,
                    used: 0,
                    alive: true,
                    behaviour: Behaviour::Honest,
                    held: HashSet::new(),
                }
            })
            .collect();
        let mut sim = Sim {
            nodes,
            sizes: Vec::new(),
            table: HolderTable::new(),
            policy: Policy::default(),
            now: Duration::ZERO,
            round: 0,
            bytes_moved: 0,
        };
        for n in 0..blocks {
            let id = BlockId::of(&(n as u64 ^ seed).to_le_bytes());
            let size = 16_384 + rng.below(240 * 1024) as u64;
            sim.sizes.push((id, size));
            sim.table.set_block(id, size, level);
            sim.nodes[0].held.insert(id);
            sim.nodes[0].used += size;
            sim.table.add_holder(&id, sim.nodes[0].id, Evidence::Pinned);
        }
        sim
    }

    fn idx(&self, id: &DeviceId) -> usize {
        self.nodes.iter().position(|n| n.id == *id).unwrap()
    }

    /// Runs one round: observe, plan, execute. Returns the plan's counts.
    fn step(&mut self) -> fossa_net::repair::Plan {
        for n in self.nodes.iter().filter(|n| n.alive) {
            self.table.seen(n.id, self.now);
        }
        let views: Vec<NodeView> = self
            .nodes
            .iter()
            .map(|n| NodeView {
                id: n.id,
                role: n.role,
                free: n.quota.saturating_sub(n.used),
                connected: n.alive,
            })
            .collect();
        let p = plan(&self.table, &views, &self.policy, self.now, self.round);
        for a in &p.actions {
            self.execute(a);
        }
        self.round += 1;
        self.now += ROUND;
        p
    }

    fn execute(&mut self, a: &Action) {
        match a {
            Action::Copy {
                block,
                size,
                from,
                to,
            } => {
                let (f, t) = (self.idx(from), self.idx(to));
                assert_ne!(f, t, "copy onto its own source");
                assert!(
                    !self.table.holders(block).contains(to),
                    "placed twice on a node"
                );
                if !self.nodes[f].alive || !self.nodes[f].held.contains(block) {
                    self.table.remove_holder(block, from);
                    return;
                }
                let target = &mut self.nodes[t];
                assert!(target.alive, "copy to a dead node");
                assert!(target.used + size <= target.quota, "placed on a full node");
                target.held.insert(*block);
                target.used += size;
                self.bytes_moved += size;
                self.table.add_holder(block, *to, Evidence::Stored);
            }
            Action::Drop { block, at } => {
                let i = self.idx(at);
                let live_after = self
                    .table
                    .holders(block)
                    .iter()
                    .filter(|h| **h != *at && self.really_holds(self.idx(h), block))
                    .count();
                let level = usize::from(self.table.level(block).unwrap());
                assert!(
                    live_after >= level,
                    "a drop would take {block} below its level"
                );
                if self.nodes[i].held.remove(block) {
                    self.nodes[i].used -= self.size(block);
                }
                self.table.remove_holder(block, at);
            }
            Action::Audit { at, blocks } => {
                let i = self.idx(at);
                for b in blocks {
                    let ok = self.nodes[i].alive && self.really_holds(i, b);
                    self.table.audit_result(*at, b, ok, self.now);
                }
            }
        }
    }

    fn size(&self, id: &BlockId) -> u64 {
        self.sizes
            .iter()
            .find(|(b, _)| b == id)
            .map_or(0, |(_, s)| *s)
    }

    /// Holds intact bytes of `b` (what a correct audit answer needs).
    fn really_holds(&self, i: usize, b: &BlockId) -> bool {
        let n = &self.nodes[i];
        n.alive
            && n.held.contains(b)
            && !(n.behaviour == Behaviour::Corrupts && b.0[0].is_multiple_of(2))
    }

    /// Live nodes with intact copies of `b`.
    fn live_copies(&self, b: &BlockId) -> usize {
        (0..self.nodes.len())
            .filter(|i| self.really_holds(*i, b))
            .count()
    }

    /// Blocks whose intact live copies are below their level.
    fn under(&self) -> usize {
        self.sizes
            .iter()
            .filter(|(b, _)| self.live_copies(b) < usize::from(self.table.level(b).unwrap()))
            .count()
    }

    /// Steps until the plan has nothing left to copy and every block has a counted level
    /// (or `max` rounds); returns rounds taken.
    fn settle(&mut self, max: u64) -> u64 {
        for r in 1..=max {
            let p = self.step();
            let copies = p.actions.iter().any(|a| matches!(a, Action::Copy { .. }));
            if !copies && p.below_level == p.unavailable && p.waiting == 0 {
                return r;
            }
        }
        panic!("did not settle in {max} rounds");
    }

    /// Kills `count` nodes at random among `from`.
    fn kill(&mut self, from: &[usize], count: usize, rng: &mut Rng) -> BTreeSet<usize> {
        let mut pool = from.to_vec();
        let mut dead = BTreeSet::new();
        for _ in 0..count {
            let i = pool.swap_remove(rng.below(pool.len()));
            self.nodes[i].alive = false;
            dead.insert(i);
        }
        dead
    }
}

/// Places, kills `kill_pct`% of the nodes, waits out the grace period and repairs; checks
/// the level is restored for every block that kept a copy. `spare_writer`: node 0 (the
/// writing device, which holds everything) is never killed.
fn kill_and_repair(level: u8, kill_pct: usize, spare_writer: bool, seed: u64) {
    let (n_nodes, n_blocks) = (20, 10_000);
    let mut sim = Sim::new(n_nodes, 4, n_blocks, level, seed);
    let placed = sim.settle(100);
    assert_eq!(sim.under(), 0, "initial placement incomplete");
    let initial_bytes = sim.bytes_moved;

    let mut rng = Rng(seed ^ 0xdead);
    let kill = n_nodes * kill_pct / 100;
    if spare_writer {
        let pool: Vec<usize> = (1..n_nodes).collect();
        sim.kill(&pool, kill, &mut rng);
    } else {
        // The harsh case: the writing device (holding everything) is among the dead.
        sim.nodes[0].alive = false;
        let pool: Vec<usize> = (1..n_nodes).collect();
        sim.kill(&pool, kill - 1, &mut rng);
    }
    let survivors: Vec<BlockId> = sim
        .sizes
        .iter()
        .map(|(b, _)| *b)
        .filter(|b| sim.live_copies(b) > 0)
        .collect();
    let lost = n_blocks - survivors.len();

    // Within the grace period nothing is copied.
    let killed_at = sim.now;
    sim.bytes_moved = 0;
    while sim.now < killed_at + sim.policy.grace {
        let p = sim.step();
        assert!(
            !p.actions.iter().any(|a| matches!(a, Action::Copy { .. })),
            "repair before the grace period"
        );
    }
    let t0 = sim.now;
    let mut rounds = 0;
    loop {
        rounds += 1;
        sim.step();
        for b in &survivors {
            assert!(
                sim.live_copies(b) >= 1,
                "a surviving block lost its last copy"
            );
        }
        let under = survivors
            .iter()
            .filter(|b| sim.live_copies(b) < usize::from(level))
            .count();
        if under == 0 {
            break;
        }
        assert!(
            rounds < 200,
            "repair stalled with {under} blocks under level"
        );
    }
    if spare_writer {
        assert_eq!(lost, 0);
    }
    for n in &sim.nodes {
        assert_eq!(
            sim.table.audit_failures(&n.id),
            0,
            "an honest node failed an audit"
        );
    }
    println!(
        "level {level}, {n_nodes} nodes, {n_blocks} blocks, kill {kill_pct}% (writer spared: \
         {spare_writer}): initial placement {placed} rounds / {} MiB; lost (no surviving copy) \
         {lost}; repair after grace: {rounds} rounds of {}s ({}s), {} MiB moved",
        initial_bytes >> 20,
        ROUND.as_secs(),
        (sim.now - t0).as_secs(),
        sim.bytes_moved >> 20,
    );
}

#[test]
fn thirty_percent_killed_at_level_3_is_repaired() {
    kill_and_repair(3, 30, true, 1);
    kill_and_repair(3, 30, false, 2);
}

#[test]
fn half_killed_at_level_4_is_repaired() {
    kill_and_repair(4, 50, true, 3);
    kill_and_repair(4, 50, false, 4);
}

#[test]
fn a_node_back_within_grace_causes_no_copies_and_after_grace_its_surplus_is_dropped() {
    let mut sim = Sim::new(8, 2, 500, 3, 5);
    sim.settle(50);
    sim.nodes[3].alive = false;
    let away = sim
        .table
        .blocks()
        .filter(|b| sim.nodes[3].held.contains(b))
        .count();
    assert!(away > 0);
    for _ in 0..5 {
        let p = sim.step();
        assert!(p.actions.iter().all(|a| !matches!(a, Action::Copy { .. })));
        assert_eq!(p.waiting, away);
    }
    sim.nodes[3].alive = true;
    sim.step();
    // Away past the grace period: replaced; when it returns its copies are surplus.
    sim.nodes[3].alive = false;
    let end = sim.now + sim.policy.grace + ROUND * 2;
    while sim.now < end {
        sim.step();
    }
    sim.settle(50);
    assert_eq!(sim.under(), 0);
    sim.nodes[3].alive = true;
    sim.settle(50);
    let over = sim
        .sizes
        .iter()
        .filter(|(b, _)| sim.live_copies(b) > 3)
        .count();
    assert_eq!(
        over, 0,
        "surplus copies of the returning node were not dropped"
    );
}

#[test]
fn a_corrupting_keeper_fails_audits_and_is_replaced() {
    let mut sim = Sim::new(10, 2, 2_000, 3, 6);
    sim.policy.audits_per_round = 512;
    sim.settle(50);
    let bad = 5;
    sim.nodes[bad].behaviour = Behaviour::Corrupts;
    let bad_id = sim.nodes[bad].id;
    let mut rounds = 0;
    while sim.table.audit_failures(&bad_id) < sim.policy.max_audit_failures {
        sim.step();
        rounds += 1;
        assert!(rounds < 50, "corruption not detected");
    }
    let repair = sim.settle(100);
    assert_eq!(sim.under(), 0);
    // No block counts on the distrusted keeper any more, and it gets no new copies.
    for b in sim.sizes.iter().map(|(b, _)| *b) {
        let honest = sim
            .table
            .holders(&b)
            .iter()
            .filter(|h| **h != bad_id)
            .count();
        assert!(honest >= 3, "{b} relies on the corrupting keeper");
    }
    println!("corrupting keeper distrusted after {rounds} rounds; repaired in {repair} rounds");
}

#[test]
fn a_lying_keeper_is_caught_by_audits() {
    let mut sim = Sim::new(10, 2, 2_000, 3, 7);
    sim.settle(50);
    let liar = 6;
    sim.nodes[liar].behaviour = Behaviour::Lies;
    let liar_id = sim.nodes[liar].id;
    // It answers HasBlocks "yes" for blocks it does not hold.
    let claimed: Vec<BlockId> = sim
        .sizes
        .iter()
        .map(|(b, _)| *b)
        .filter(|b| !sim.nodes[liar].held.contains(b))
        .take(300)
        .collect();
    for b in &claimed {
        sim.table.add_holder(b, liar_id, Evidence::Claimed);
    }
    let p = sim.step();
    let audited: usize = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Audit { at, blocks } if *at == liar_id => Some(blocks.len()),
            _ => None,
        })
        .sum();
    assert!(audited >= 3, "claims are audited first");
    assert!(sim.table.audit_failures(&liar_id) >= sim.policy.max_audit_failures);
    sim.settle(100);
    assert_eq!(sim.under(), 0);
    // A claim never justified dropping a real copy.
    for b in &claimed {
        assert!(sim.live_copies(b) >= 3);
    }
}

#[test]
fn lowering_a_level_drops_surplus_and_raising_it_copies() {
    let mut sim = Sim::new(10, 2, 1_000, 4, 8);
    sim.settle(50);
    let ids: Vec<(BlockId, u64)> = sim.sizes.clone();
    for (b, s) in &ids {
        sim.table.set_block(*b, *s, 2);
    }
    let before = sim.bytes_moved;
    sim.settle(50);
    assert_eq!(sim.bytes_moved, before, "lowering a level moves nothing");
    for (b, _) in &ids {
        assert_eq!(sim.live_copies(b), 2, "surplus not dropped for {b}");
    }
    for (b, s) in &ids {
        sim.table.set_block(*b, *s, 3);
    }
    sim.settle(50);
    for (b, _) in &ids {
        assert_eq!(sim.live_copies(b), 3);
    }
}

#[test]
fn a_full_keeper_gets_no_placements() {
    let mut sim = Sim::new(8, 2, 1_000, 3, 9);
    sim.nodes[4].quota = 0;
    sim.nodes[5].quota = 300 << 10; // room for about two blocks
    sim.settle(50);
    assert!(sim.nodes[4].held.is_empty());
    assert!(sim.nodes[5].used <= 300 << 10);
    assert_eq!(sim.under(), 0);
}

#[test]
fn the_byte_budget_spreads_repair_over_rounds() {
    let mut sim = Sim::new(10, 2, 2_000, 3, 10);
    sim.policy.copy_bytes_per_round = 16 << 20;
    let rounds = sim.settle(200);
    assert!(rounds > 10, "{rounds}");
    assert_eq!(sim.under(), 0);
    // Placement spreads: no keeper holds more than twice its fair share.
    let fair = sim.bytes_moved / 9;
    for n in &sim.nodes[1..] {
        assert!(n.used <= fair * 2, "{} of fair {fair}", n.used);
    }
}
