//! The course of a run: build-up, settling, providing, measured lookups, and optionally a
//! mass kill or churn.

use std::collections::{HashMap, HashSet};

use super::metrics::{Outcome, Phase};
use super::world::{Done, NodeIx, World};
use super::{SimConfig, SimError};
use crate::dht::{Key, LookupId, Millis};

/// A node starts joining every this many milliseconds during the build-up.
pub(crate) const JOIN_INTERVAL_MS: u64 = 20;
/// Quiet time after the last join before anything is measured.
pub(crate) const SETTLE_MS: u64 = 60_000;
/// Gap between two measured lookups (or two `provide` calls) when there is no churn.
pub(crate) const LOOKUP_GAP_MS: u64 = 10;
/// Time given to the `provide` calls to finish.
pub(crate) const PROVIDE_MS: u64 = 30_000;
/// A measured lookup that has not ended this long after the last one started is a bug.
pub(crate) const LOOKUP_DEADLINE_MS: u64 = 600_000;
/// A node lookup is expected to find a node only once that node started joining this long
/// before the lookup (its join has had time to make it known).
pub(crate) const JOIN_GRACE_MS: u64 = 10_000;
/// Bootstrap addresses a joining node gets.
pub(crate) const BOOTSTRAP_PEERS: usize = 3;

/// The phases whose lookups are measured.
pub(crate) const MAIN: usize = 0;
pub(crate) const AFTER_KILL: usize = 1;
pub(crate) const AFTER_REFRESH: usize = 2;

struct Tracked {
    phase: usize,
    providers: bool,
    target: Key,
    started: u64,
}

pub(crate) struct Scenario<'a> {
    cfg: &'a SimConfig,
    pub(crate) world: World,
    /// Alive nodes, in no meaningful order (swap-removed on death).
    live: Vec<NodeIx>,
    tracked: HashMap<(NodeIx, LookupId), Tracked>,
    /// Check mode: measured lookups that have ended.
    ended: HashSet<(NodeIx, LookupId)>,
    /// Keys that some node `provide`d, with the node.
    keys: Vec<(Key, NodeIx)>,
    /// Time of the next churn death-and-join, when churn is on.
    next_churn: Option<u64>,
    pub(crate) phases: [Phase; 3],
}

impl<'a> Scenario<'a> {
    pub(crate) fn new(cfg: &'a SimConfig, world: World) -> Scenario<'a> {
        Scenario {
            cfg,
            world,
            live: Vec::new(),
            tracked: HashMap::new(),
            ended: HashSet::new(),
            keys: Vec::new(),
            next_churn: None,
            phases: Default::default(),
        }
    }

    pub(crate) fn live_count(&self) -> usize {
        self.live.len()
    }

    /// Nodes join one after another, each through a few random already joined nodes.
    pub(crate) fn build(&mut self) -> Result<(), SimError> {
        for i in 0..self.cfg.nodes as u64 {
            self.advance(i * JOIN_INTERVAL_MS)?;
            self.join_fresh()?;
        }
        let settle = self.world.now() + SETTLE_MS;
        self.advance(settle)
    }

    fn join_fresh(&mut self) -> Result<(), SimError> {
        let bootstrap: Vec<NodeIx> = (0..BOOTSTRAP_PEERS.min(self.live.len()))
            .map(|_| self.random_live())
            .collect();
        let node = self.world.add_node();
        self.world.join(node, &bootstrap)?;
        self.live.push(node);
        Ok(())
    }

    fn random_live(&mut self) -> NodeIx {
        let i = self.world.rng().below(self.live.len());
        self.live[i]
    }

    /// Random nodes announce random keys (half as many keys as lookups).
    pub(crate) fn provide(&mut self) -> Result<(), SimError> {
        let count = (self.cfg.lookups / 2).max(1);
        for _ in 0..count {
            let at = self.world.now() + LOOKUP_GAP_MS;
            self.advance(at)?;
            let node = self.random_live();
            let key = Key(self.world.rng().bytes32());
            self.world.provide(node, key)?;
            self.keys.push((key, node));
        }
        let done = self.world.now() + PROVIDE_MS;
        self.advance(done)
    }

    /// Runs `lookups` measured lookups spread over `span_ms`, alternately a provider lookup
    /// of a provided key and a node lookup of a random id, then waits for all of them.
    pub(crate) fn measure(&mut self, phase: usize, span_ms: u64) -> Result<(), SimError> {
        let start = self.world.now();
        let count = self.cfg.lookups as u64;
        for i in 0..count {
            self.advance(start + i * span_ms / count.max(1))?;
            self.start_lookup(phase, i % 2 == 0)?;
        }
        let deadline = self.world.now() + LOOKUP_DEADLINE_MS;
        while self.tracked.values().any(|t| t.phase == phase) {
            let step = self.world.now() + 1_000;
            if step > deadline {
                return Err(SimError::Sim {
                    at: step,
                    what: "measured lookups never ended".into(),
                });
            }
            self.advance(step)?;
        }
        Ok(())
    }

    fn start_lookup(&mut self, phase: usize, providers: bool) -> Result<(), SimError> {
        let node = self.random_live();
        let now = Millis(self.world.now());
        let (target, id) = if providers {
            let key = self.live_key();
            (key, self.world.dht(node).get_providers(now, key, 1))
        } else {
            let key = Key(self.world.rng().bytes32());
            (key, self.world.dht(node).find_node(now, key))
        };
        self.world.pump(node)?;
        let started = now.0;
        self.tracked.insert(
            (node, id),
            Tracked {
                phase,
                providers,
                target,
                started,
            },
        );
        self.collect()
    }

    /// A provided key whose provider is alive (any key if none is found quickly).
    fn live_key(&mut self) -> Key {
        for _ in 0..1000 {
            let (key, node) = self.keys[self.world.rng().below(self.keys.len())];
            if self.world.is_alive(node) {
                return key;
            }
        }
        self.keys[0].0
    }

    /// Runs the world up to `until`, with churn on the way when it is on.
    pub(crate) fn advance(&mut self, until: u64) -> Result<(), SimError> {
        while let Some(at) = self.next_churn.filter(|&at| at <= until) {
            self.world.run_until(at)?;
            self.collect()?;
            self.churn_once()?;
        }
        self.world.run_until(until)?;
        self.collect()
    }

    /// Churn from now on: each node dies at rate ln 2 / half-life, and a fresh node joins
    /// for every death (the population stays constant).
    pub(crate) fn start_churn(&mut self, half_life_h: f64) {
        self.next_churn = Some(self.world.now() + self.churn_gap(half_life_h));
    }

    fn churn_gap(&mut self, half_life_h: f64) -> u64 {
        let mean_ms = half_life_h * 3_600_000.0 / (self.cfg.nodes as f64 * std::f64::consts::LN_2);
        (self.world.rng().exponential(mean_ms) as u64).max(1)
    }

    fn churn_once(&mut self) -> Result<(), SimError> {
        let i = self.world.rng().below(self.live.len());
        self.kill_at(i);
        self.join_fresh()?;
        let half_life = self.cfg.churn_half_life_h.unwrap_or(1.0);
        let gap = self.churn_gap(half_life);
        self.next_churn = Some(self.world.now() + gap);
        Ok(())
    }

    /// Kills `fraction` of the live nodes at once.
    pub(crate) fn kill(&mut self, fraction: f64) {
        let count = (fraction * self.live.len() as f64).round() as usize;
        for _ in 0..count.min(self.live.len().saturating_sub(1)) {
            let i = self.world.rng().below(self.live.len());
            self.kill_at(i);
        }
    }

    fn kill_at(&mut self, i: usize) {
        let node = self.live.swap_remove(i);
        self.world.kill(node);
        let phases = &mut self.phases;
        self.tracked.retain(|&(n, _), t| {
            if n == node {
                phases[t.phase].orphaned += 1;
            }
            n != node
        });
    }

    /// Turns the lookups that ended into outcomes.
    fn collect(&mut self) -> Result<(), SimError> {
        for done in std::mem::take(&mut self.world.done) {
            let key = (done.node, done.result.id);
            let Some(t) = self.tracked.remove(&key) else {
                if self.ended.contains(&key) {
                    let what = format!("lookup {} of node {} ended twice", key.1.0, key.0);
                    return Err(SimError::Sim {
                        at: self.world.now(),
                        what,
                    });
                }
                continue; // a lookup the core started by itself
            };
            if self.cfg.check {
                self.ended.insert(key);
            }
            let outcome = self.outcome(&t, &done);
            self.phases[t.phase].outcomes.push(outcome);
        }
        Ok(())
    }

    fn outcome(&self, t: &Tracked, done: &Done) -> Outcome {
        let r = &done.result;
        let success = if t.providers {
            r.providers.iter().any(|p| {
                self.world
                    .node_of(&p.node.id)
                    .is_some_and(|n| self.world.is_alive(n))
            })
        } else {
            let truth = self.true_closest(t.target, done.node, t.started);
            truth.is_some() && r.closest.first().map(|c| c.id) == truth
        };
        Outcome {
            providers: t.providers,
            success,
            hops: r.hops,
            latency_ms: r.first_result_at.map(|at| at.0.saturating_sub(r.started.0)),
            requests: r.requests,
        }
    }

    /// The live node closest to `target` among those that started joining
    /// `JOIN_GRACE_MS` before `started`, other than `asker`: what a node lookup should find.
    fn true_closest(&self, target: Key, asker: NodeIx, started: u64) -> Option<Key> {
        let cutoff = started.saturating_sub(JOIN_GRACE_MS);
        self.live
            .iter()
            .filter(|&&n| n != asker && self.world.joined_at(n) <= cutoff)
            .map(|&n| self.world.contact(n).id)
            .min_by_key(|id| id.distance(&target))
    }
}
