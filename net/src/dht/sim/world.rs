//! The simulated nodes and the network between them: one real [`Dht`] core per node,
//! driven through its public API by the events of the [`Queue`].
//!
//! Delivery model: a request leaves its sender when the core yields it
//! (`poll_transmit`) and arrives one one-way delay later; the receiver's `handle_request`
//! answers at once and the answer arrives after the reverse delay. Each message (either
//! direction) is lost with probability `loss`: a lost request or answer is silent and the
//! core's own timeout handles it. A request that arrives at a dead node is silent with
//! probability 1/2 (a vanished host) and otherwise fails fast with `handle_failure` one
//! RTT after it was sent (a QUIC connect to a closed port is refused). An answer that
//! arrives at a dead node is dropped.
//!
//! Invariants (checked in check mode, `SimError` otherwise): the clock never goes back; a
//! core's timer does not fire again and again at one instant (checked always);
//! a request id is never reused by its node; each request gets at most one answer or
//! failure; each lookup the scenario started ends exactly once; every touched core passes
//! `check_invariants` after every event.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use super::SimError;
use super::latency::Latency;
use super::queue::Queue;
use super::rng::Rng;
use crate::dht::{
    Config, Contact, Dht, Event, Key, LookupResult, Millis, Peer, Request, RequestId, Response,
};

/// Index of a node in the world; dense, never reused (a fresh node gets a fresh index).
pub(crate) type NodeIx = u32;

/// What the queue carries.
pub(crate) enum Ev {
    Request {
        from: NodeIx,
        to: NodeIx,
        id: RequestId,
        req: Request,
    },
    Response {
        from: NodeIx,
        to: NodeIx,
        id: RequestId,
        resp: Response,
    },
    Failure {
        node: NodeIx,
        id: RequestId,
    },
    Timer {
        node: NodeIx,
    },
}

struct SimNode {
    dht: Dht,
    alive: bool,
    joined_at: u64,
    /// The time of the `Timer` event in the queue for this node that is current.
    timer: Option<u64>,
    /// The last time its timer fired, and how many times in a row at that time.
    fired: (u64, u32),
}

/// A core whose timer fires this often at one instant is spinning (its `poll_timeout`
/// does not move past `now` after `handle_timeout(now)`).
const MAX_FIRES_AT_ONCE: u32 = 64;

/// A finished lookup, with the originating node.
pub(crate) struct Done {
    pub(crate) node: NodeIx,
    pub(crate) result: LookupResult,
}

pub(crate) struct World {
    pub(crate) queue: Queue<Ev>,
    nodes: Vec<SimNode>,
    contacts: Vec<Contact>,
    by_id: HashMap<Key, NodeIx>,
    by_addr: HashMap<SocketAddr, NodeIx>,
    pub(crate) latency: Latency,
    rng: Rng,
    config: Config,
    loss: f64,
    check: bool,
    /// Check mode: requests sent and not yet answered or failed by the simulator.
    open_requests: HashSet<(NodeIx, u64)>,
    trace: blake3::Hasher,
    pub(crate) events: u64,
    pub(crate) messages: u64,
    /// Finished lookups not yet collected by the scenario.
    pub(crate) done: Vec<Done>,
}

impl World {
    pub(crate) fn new(seed: u64, config: Config, loss: f64, check: bool) -> World {
        let mut root = Rng::new(seed);
        World {
            queue: Queue::new(),
            nodes: Vec::new(),
            contacts: Vec::new(),
            by_id: HashMap::new(),
            by_addr: HashMap::new(),
            latency: Latency::new(root.next_u64()),
            rng: root.fork(1),
            config,
            loss,
            check,
            open_requests: HashSet::new(),
            trace: blake3::Hasher::new(),
            events: 0,
            messages: 0,
            done: Vec::new(),
        }
    }

    pub(crate) fn now(&self) -> u64 {
        self.queue.now()
    }

    pub(crate) fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn is_alive(&self, node: NodeIx) -> bool {
        self.nodes[node as usize].alive
    }

    pub(crate) fn joined_at(&self, node: NodeIx) -> u64 {
        self.nodes[node as usize].joined_at
    }

    pub(crate) fn contact(&self, node: NodeIx) -> &Contact {
        &self.contacts[node as usize]
    }

    pub(crate) fn node_of(&self, id: &Key) -> Option<NodeIx> {
        self.by_id.get(id).copied()
    }

    pub(crate) fn dht(&mut self, node: NodeIx) -> &mut Dht {
        &mut self.nodes[node as usize].dht
    }

    pub(crate) fn trace_hash(&self) -> String {
        self.trace.finalize().to_hex().to_string()
    }

    /// Creates a node with a fresh id and address (not yet joined: see [`World::join`]).
    pub(crate) fn add_node(&mut self) -> NodeIx {
        let ix = self.nodes.len() as NodeIx;
        let id = Key(self.rng.bytes32());
        let addr = self.fresh_addr();
        let contact = Contact {
            id,
            addrs: vec![addr],
        };
        self.latency.add_node(&mut self.rng);
        let seed = self.rng.next_u64();
        let dht = Dht::new(
            contact.clone(),
            self.config.clone(),
            seed,
            Millis(self.now()),
        );
        self.by_id.insert(id, ix);
        self.by_addr.insert(addr, ix);
        self.contacts.push(contact);
        self.nodes.push(SimNode {
            dht,
            alive: true,
            joined_at: self.now(),
            timer: None,
            fired: (0, 0),
        });
        ix
    }

    /// A synthetic public-looking IPv4 address (data only: never used for a socket), unique.
    fn fresh_addr(&mut self) -> SocketAddr {
        loop {
            let bits = self.rng.next_u64();
            let first = 1 + (bits % 223) as u8;
            let [_, b, c, d, ..] = bits.to_le_bytes();
            let ip = Ipv4Addr::new(first, b, c, d.max(1));
            let addr = SocketAddr::V4(SocketAddrV4::new(ip, 4433));
            if !self.by_addr.contains_key(&addr) {
                return addr;
            }
        }
    }

    /// Starts `node`'s join through the addresses of `bootstrap` (already joined nodes).
    pub(crate) fn join(&mut self, node: NodeIx, bootstrap: &[NodeIx]) -> Result<(), SimError> {
        let peers = bootstrap
            .iter()
            .map(|&b| Peer::Address(self.contacts[b as usize].addrs[0]))
            .collect();
        let now = self.now();
        self.nodes[node as usize].joined_at = now;
        self.nodes[node as usize].dht.bootstrap(Millis(now), peers);
        self.pump(node)
    }

    /// Kills a node: it answers nothing and its timers stop from now on.
    pub(crate) fn kill(&mut self, node: NodeIx) {
        let n = &mut self.nodes[node as usize];
        n.alive = false;
        n.timer = None;
    }

    /// Runs every event up to and including time `until`; the clock then reads `until`.
    pub(crate) fn run_until(&mut self, until: u64) -> Result<(), SimError> {
        while self.queue.peek_time().is_some_and(|t| t <= until) {
            self.step()?;
        }
        self.queue.advance(until);
        Ok(())
    }

    fn step(&mut self) -> Result<(), SimError> {
        let before = self.queue.now();
        let Some((at, ev)) = self.queue.pop() else {
            return Ok(());
        };
        if at < before {
            return Err(SimError::Sim {
                at,
                what: format!("clock went back from {before}"),
            });
        }
        match ev {
            Ev::Request { from, to, id, req } => self.deliver_request(from, to, id, req),
            Ev::Response { from, to, id, resp } => self.deliver_response(from, to, id, resp),
            Ev::Failure { node, id } => self.deliver_failure(node, id),
            Ev::Timer { node } => self.fire_timer(node, at),
        }
    }

    fn record(&mut self, from: NodeIx, to: NodeIx, kind: u8) {
        self.events += 1;
        let mut rec = [0u8; 17];
        rec[..8].copy_from_slice(&self.now().to_le_bytes());
        rec[8..12].copy_from_slice(&from.to_le_bytes());
        rec[12..16].copy_from_slice(&to.to_le_bytes());
        rec[16] = kind;
        self.trace.update(&rec);
    }

    fn deliver_request(
        &mut self,
        from: NodeIx,
        to: NodeIx,
        id: RequestId,
        req: Request,
    ) -> Result<(), SimError> {
        self.record(from, to, request_tag(&req));
        if !self.nodes[to as usize].alive {
            if self.rng.chance(0.5) {
                let back = self.now() + self.latency.one_way_ms(from, to);
                self.queue.push(back, Ev::Failure { node: from, id });
            } else {
                self.close_request(from, id)?;
            }
            return Ok(());
        }
        let now = Millis(self.now());
        let resp =
            self.nodes[to as usize]
                .dht
                .handle_request(now, &self.contacts[from as usize], req);
        self.pump(to)?;
        if self.rng.chance(self.loss) {
            return self.close_request(from, id);
        }
        let back = self.now() + self.latency.one_way_ms(to, from);
        self.queue.push(
            back,
            Ev::Response {
                from: to,
                to: from,
                id,
                resp,
            },
        );
        Ok(())
    }

    fn deliver_response(
        &mut self,
        from: NodeIx,
        to: NodeIx,
        id: RequestId,
        resp: Response,
    ) -> Result<(), SimError> {
        self.record(from, to, response_tag(&resp));
        self.close_request(to, id)?;
        if !self.nodes[to as usize].alive {
            return Ok(());
        }
        let now = Millis(self.now());
        self.nodes[to as usize]
            .dht
            .handle_response(now, id, &self.contacts[from as usize], resp);
        self.pump(to)
    }

    fn deliver_failure(&mut self, node: NodeIx, id: RequestId) -> Result<(), SimError> {
        self.record(node, node, TAG_FAILURE);
        self.close_request(node, id)?;
        if !self.nodes[node as usize].alive {
            return Ok(());
        }
        let now = Millis(self.now());
        self.nodes[node as usize].dht.handle_failure(now, id);
        self.pump(node)
    }

    fn fire_timer(&mut self, node: NodeIx, at: u64) -> Result<(), SimError> {
        let Some(n) = self.nodes.get_mut(node as usize) else {
            return Ok(());
        };
        if !n.alive || n.timer != Some(at) {
            return Ok(()); // superseded by a later schedule, or the node died
        }
        n.timer = None;
        n.fired = if n.fired.0 == at {
            (at, n.fired.1 + 1)
        } else {
            (at, 1)
        };
        if n.fired.1 > MAX_FIRES_AT_ONCE {
            let what = format!("timer spins at {at} ms (poll_timeout never moves past it)");
            return Err(SimError::Core { at, node, what });
        }
        self.record(node, node, TAG_TIMER);
        self.nodes[node as usize].dht.handle_timeout(Millis(at));
        self.pump(node)
    }

    /// Check mode: the request leaves the simulator's books; it must have been on them.
    fn close_request(&mut self, node: NodeIx, id: RequestId) -> Result<(), SimError> {
        if self.check && !self.open_requests.remove(&(node, id.0)) {
            return Err(SimError::Sim {
                at: self.now(),
                what: format!("request {} of node {node} answered twice", id.0),
            });
        }
        Ok(())
    }

    /// `node` announces `key` (the core looks up its closest nodes and sends AddProvider).
    pub(crate) fn provide(&mut self, node: NodeIx, key: Key) -> Result<(), SimError> {
        let now = Millis(self.now());
        self.nodes[node as usize].dht.provide(now, key);
        self.pump(node)
    }

    /// Collects what a core yields after being called: requests, events, its next timer.
    /// Every call into a core from outside this module must be followed by this.
    pub(crate) fn pump(&mut self, node: NodeIx) -> Result<(), SimError> {
        while let Some(out) = self.nodes[node as usize].dht.poll_transmit() {
            self.send(node, out.id, out.to, out.req)?;
        }
        while let Some(event) = self.nodes[node as usize].dht.poll_event() {
            #[allow(irrefutable_let_patterns)] // the simulator needs only this event
            if let Event::LookupDone(result) = event {
                self.done.push(Done { node, result });
            }
        }
        self.schedule_timer(node);
        if self.check {
            self.nodes[node as usize]
                .dht
                .check_invariants()
                .map_err(|what| SimError::Core {
                    at: self.now(),
                    node,
                    what,
                })?;
        }
        Ok(())
    }

    fn schedule_timer(&mut self, node: NodeIx) {
        let now = self.now();
        let n = &mut self.nodes[node as usize];
        let next = n.dht.poll_timeout().map(|t| t.0.max(now));
        if next.is_some() && next != n.timer {
            n.timer = next;
            if let Some(at) = next {
                self.queue.push(at, Ev::Timer { node });
            }
        }
    }

    fn send(
        &mut self,
        from: NodeIx,
        id: RequestId,
        to: Peer,
        req: Request,
    ) -> Result<(), SimError> {
        self.messages += 1;
        if self.check && !self.open_requests.insert((from, id.0)) {
            return Err(SimError::Sim {
                at: self.now(),
                what: format!("node {from} reused request id {}", id.0),
            });
        }
        let target = match &to {
            Peer::Contact(c) => self.by_id.get(&c.id).copied(),
            Peer::Address(a) => self.by_addr.get(a).copied(),
        };
        let Some(target) = target else {
            // Nobody ever had that id or address: the connect fails at once.
            self.queue
                .push(self.now() + 1, Ev::Failure { node: from, id });
            return Ok(());
        };
        if self.rng.chance(self.loss) {
            return self.close_request(from, id);
        }
        let at = self.now() + self.latency.one_way_ms(from, target);
        self.queue.push(
            at,
            Ev::Request {
                from,
                to: target,
                id,
                req,
            },
        );
        Ok(())
    }
}

const TAG_FAILURE: u8 = 254;
const TAG_TIMER: u8 = 255;

/// The wire tags of docs/protocol.md ("DHT message tags").
fn request_tag(req: &Request) -> u8 {
    match req {
        Request::Ping => 1,
        Request::FindNode { .. } => 3,
        Request::GetProviders { .. } => 5,
        Request::AddProvider { .. } => 7,
    }
}

fn response_tag(resp: &Response) -> u8 {
    match resp {
        Response::Pong { .. } => 2,
        Response::Nodes { .. } => 4,
        Response::Providers { .. } => 6,
        Response::ProviderAck { .. } => 8,
    }
}
