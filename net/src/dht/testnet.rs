//! Test helper: N cores wired together through an in-memory loop with a fixed one-way delay.
//! Every step checks every core's invariants. Deterministic: BTreeMaps, a sequence number for
//! ties, no clock.
use super::{Config, Contact, Dht, Event, Key, Millis, Outgoing, Peer, RequestId, Response};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// One-way delay of every message.
const DELAY: Millis = Millis(10);

enum Msg {
    Request {
        from: Key,
        out: Outgoing,
    },
    Answer {
        to: Key,
        id: RequestId,
        from: Contact,
        resp: Response,
    },
    Failure {
        to: Key,
        id: RequestId,
    },
}

/// Rewrites the answers of a node (hostile nodes).
pub(crate) type Tamper = Box<dyn FnMut(&Key, &mut Response)>;

pub(crate) struct Net {
    pub(crate) now: Millis,
    pub(crate) nodes: BTreeMap<Key, Dht>,
    pub(crate) down: BTreeSet<Key>,
    pub(crate) events: Vec<(Key, Event)>,
    /// Every message delivered, in order (for determinism checks).
    pub(crate) trace: Vec<String>,
    pub(crate) tamper: Option<Tamper>,
    by_addr: BTreeMap<SocketAddr, Key>,
    /// Nodes given an input since their outputs were last collected.
    touched: BTreeSet<Key>,
    /// Nodes given an input during this step (their invariants are checked after it).
    stepped: BTreeSet<Key>,
    queue: BTreeMap<(Millis, u64), Msg>,
    seq: u64,
}

pub(crate) fn contact(i: u32) -> Contact {
    let id = Key(*blake3::hash(&i.to_le_bytes()).as_bytes());
    let [lo, hi, _, _] = i.to_le_bytes();
    let addr = SocketAddr::from(([127, 1, hi, lo], 7000));
    Contact {
        id,
        addrs: vec![addr],
    }
}

impl Net {
    pub(crate) fn new(n: u32, config: &Config, seed: u64) -> Net {
        let mut net = Net {
            now: Millis(0),
            nodes: BTreeMap::new(),
            down: BTreeSet::new(),
            events: Vec::new(),
            trace: Vec::new(),
            tamper: None,
            by_addr: BTreeMap::new(),
            touched: BTreeSet::new(),
            stepped: BTreeSet::new(),
            queue: BTreeMap::new(),
            seq: 0,
        };
        for i in 0..n {
            net.add(contact(i), config, seed ^ u64::from(i));
        }
        net
    }

    pub(crate) fn add(&mut self, c: Contact, config: &Config, seed: u64) {
        self.by_addr.insert(c.addrs[0], c.id);
        let dht = Dht::new(c.clone(), config.clone(), seed, self.now);
        self.nodes.insert(c.id, dht);
    }

    pub(crate) fn node(&mut self, id: &Key) -> &mut Dht {
        self.touched.insert(*id);
        self.stepped.insert(*id);
        self.nodes.get_mut(id).expect("node in the net")
    }

    /// Bootstraps every node but the first through the first, one after the other.
    pub(crate) fn join_all(&mut self) {
        let ids: Vec<Key> = self.nodes.keys().copied().collect();
        let first = ids[0];
        let addr = self.nodes[&first].contact().addrs[0];
        for id in &ids[1..] {
            let now = self.now;
            self.node(id).bootstrap(now, vec![Peer::Address(addr)]);
            self.run_until_event(
                id,
                |e| matches!(e, Event::Bootstrapped { .. }),
                Millis::secs(60),
            );
        }
    }

    fn push(&mut self, at: Millis, msg: Msg) {
        self.seq += 1;
        self.queue.insert((at, self.seq), msg);
    }

    /// Moves the touched cores' outgoing requests and events into the loop.
    fn collect(&mut self) {
        let mut out = Vec::new();
        for id in std::mem::take(&mut self.touched) {
            let Some(dht) = self.nodes.get_mut(&id) else {
                continue;
            };
            while let Some(o) = dht.poll_transmit() {
                out.push((id, o));
            }
            while let Some(e) = dht.poll_event() {
                self.events.push((id, e));
            }
        }
        for (from, o) in out {
            self.push(self.now.plus(DELAY), Msg::Request { from, out: o });
        }
    }

    fn next_time(&self) -> Option<Millis> {
        let q = self.queue.first_key_value().map(|(k, _)| k.0);
        let t = self.nodes.values().filter_map(Dht::poll_timeout).min();
        [q, t].into_iter().flatten().min()
    }

    /// Runs one instant: delivers the messages due, fires the timers due, checks invariants.
    pub(crate) fn step(&mut self) -> bool {
        self.collect();
        let Some(t) = self.next_time() else {
            return false;
        };
        self.now = self.now.max(t);
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let msg = entry.remove();
            self.deliver(msg);
            self.collect();
        }
        let now = self.now;
        for (id, dht) in &mut self.nodes {
            if dht.poll_timeout().is_some_and(|t| t <= now) {
                dht.handle_timeout(now);
                self.touched.insert(*id);
                self.stepped.insert(*id);
            }
        }
        self.collect();
        for id in std::mem::take(&mut self.stepped) {
            if let Err(e) = self.nodes[&id].check_invariants() {
                panic!("node {id:?}: {e}");
            }
        }
        true
    }

    fn deliver(&mut self, msg: Msg) {
        let now = self.now;
        match msg {
            Msg::Request { from, out } => {
                self.trace
                    .push(format!("{now:?} {from:?} -> {:?} {:?}", out.to, out.req));
                let to = match &out.to {
                    Peer::Contact(c) => Some(c.id),
                    Peer::Address(a) => self.by_addr.get(a).copied(),
                };
                match to.filter(|t| !self.down.contains(t) && self.nodes.contains_key(t)) {
                    Some(to) => self.answer(from, to, out),
                    None => self.push(
                        now.plus(DELAY),
                        Msg::Failure {
                            to: from,
                            id: out.id,
                        },
                    ),
                }
            }
            Msg::Answer { to, id, from, resp } => {
                if !self.down.contains(&to) {
                    self.trace.push(format!("{now:?} {to:?} <- {resp:?}"));
                    self.node(&to).handle_response(now, id, &from, resp);
                }
            }
            Msg::Failure { to, id } => {
                if !self.down.contains(&to) {
                    self.node(&to).handle_failure(now, id);
                }
            }
        }
    }

    fn answer(&mut self, from: Key, to: Key, out: Outgoing) {
        let now = self.now;
        let asker = self.nodes[&from].contact().clone();
        let mut resp = self.node(&to).handle_request(now, &asker, out.req);
        if let Some(t) = &mut self.tamper {
            t(&to, &mut resp);
        }
        let answerer = self.nodes[&to].contact().clone();
        let msg = Msg::Answer {
            to: from,
            id: out.id,
            from: answerer,
            resp,
        };
        self.push(now.plus(DELAY), msg);
    }

    /// Runs until `node` emits an event matching `pred` (returned), within `limit` of simulated time.
    pub(crate) fn run_until_event(
        &mut self,
        node: &Key,
        pred: impl Fn(&Event) -> bool,
        limit: Millis,
    ) -> Event {
        let deadline = self.now.plus(limit);
        loop {
            if let Some(i) = self.events.iter().position(|(n, e)| n == node && pred(e)) {
                return self.events.remove(i).1;
            }
            assert!(self.now <= deadline, "no event by {deadline:?}");
            assert!(self.step(), "nothing left to run");
        }
    }

    /// Runs a `find_node` from `node` to its end.
    pub(crate) fn find_node(&mut self, node: &Key, target: Key) -> super::LookupResult {
        let now = self.now;
        let lid = self.node(node).find_node(now, target);
        let e = self.run_until_event(
            node,
            |e| matches!(e, Event::LookupDone(r) if r.id == lid),
            Millis::secs(60),
        );
        match e {
            Event::LookupDone(r) => r,
            _ => unreachable!(),
        }
    }

    /// Ids of every node but `except`, the `n` closest to `target` first.
    pub(crate) fn true_closest(&self, target: &Key, except: &Key, n: usize) -> Vec<Key> {
        let mut ids: Vec<Key> = self
            .nodes
            .keys()
            .filter(|k| *k != except && !self.down.contains(k))
            .copied()
            .collect();
        ids.sort_by_key(|k| target.distance(k));
        ids.truncate(n);
        ids
    }
}
