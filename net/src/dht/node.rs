//! The DHT node: routing table, lookups, provider records and request bookkeeping, driven by
//! the caller's time and messages.
use super::config::Config;
use super::contact::{Contact, Peer, ProviderRecord};
use super::key::Key;
use super::msg::{Request, Response};
use super::table::RoutingTable;
use super::time::Millis;
use std::collections::VecDeque;

/// Id of one request the core sent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct RequestId(pub u64);

/// Id of one lookup.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct LookupId(pub u64);

/// A request the driver must deliver; its answer comes back through
/// `handle_response(id, ..)`, its failure through `handle_failure(id)`. The core times
/// requests out by itself at `request_timeout` (a late answer is then ignored).
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Names the request in `handle_response`/`handle_failure`.
    pub id: RequestId,
    /// Where it goes.
    pub to: Peer,
    /// What it asks.
    pub req: Request,
}

/// What a lookup looks for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LookupKind {
    /// The `K` closest nodes (`FindNode`).
    Nodes,
    /// Providers (`GetProviders`); ends early once `want` are known.
    Providers {
        /// Providers wanted.
        want: usize,
    },
}

/// Something the driver may want to know; consumers ignore what they do not know.
#[derive(Clone, Debug)]
pub enum Event {
    /// A lookup started by `find_node`/`get_providers` ended.
    LookupDone(LookupResult),
}

/// The outcome of a lookup.
#[derive(Clone, Debug)]
pub struct LookupResult {
    /// Which lookup.
    pub id: LookupId,
    /// What it looked for.
    pub target: Key,
    /// Nodes or providers.
    pub kind: LookupKind,
    /// The <= k closest that answered, closest first.
    pub closest: Vec<Contact>,
    /// The providers found (Providers lookups), in the order found.
    pub providers: Vec<ProviderRecord>,
    /// When it started.
    pub started: Millis,
    /// When it ended.
    pub finished: Millis,
    /// When the result was first known: the first provider (Providers lookups) or
    /// the moment the final closest contact answered (Nodes lookups).
    pub first_result_at: Option<Millis>,
    /// docs/protocol.md "Hops": 1 + depth of the contact that gave the (first) result.
    pub hops: Option<u32>,
    /// Requests this lookup sent.
    pub requests: u32,
    /// Of which failed or timed out.
    pub failures: u32,
}

/// Counters of one core.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DhtStats {
    /// Contacts in the routing table.
    pub contacts: usize,
    /// Provider records stored for others.
    pub providers_stored: usize,
    /// Lookups running.
    pub lookups_active: usize,
    /// Requests sent and not ended.
    pub requests_in_flight: usize,
    /// Keys this node announces.
    pub keys_provided: usize,
}

/// One DHT node's protocol state.
pub struct Dht {
    me: Contact,
    config: Config,
    table: RoutingTable,
    next_lookup: u64,
    transmit: VecDeque<Outgoing>,
    events: VecDeque<Event>,
}

impl Dht {
    /// `seed`: all of the core's randomness (refresh targets, ...) comes from it.
    pub fn new(me: Contact, config: Config, seed: u64, now: Millis) -> Dht {
        let _ = (seed, now);
        Dht {
            table: RoutingTable::new(me.id, config.k, config.prefix_limits),
            me,
            config,
            next_lookup: 0,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Our node id.
    pub fn local_id(&self) -> Key {
        self.me.id
    }

    /// Ping each address, then look up our own id, then refresh the buckets.
    pub fn bootstrap(&mut self, now: Millis, peers: Vec<Peer>) {
        let _ = (now, peers);
    }

    /// A request from an authenticated sender (the transport checked `from.id`); the answer.
    pub fn handle_request(&mut self, now: Millis, from: &Contact, req: Request) -> Response {
        self.table.seen(from, now);
        match req {
            Request::Ping => Response::Pong {
                observed: from.addrs[0],
            },
            Request::FindNode { target } => Response::Nodes {
                closer: self.table.closest(&target, self.config.k),
            },
            Request::GetProviders { key } => Response::Providers {
                providers: Vec::new(),
                closer: self.table.closest(&key, self.config.k),
            },
            Request::AddProvider { .. } => Response::ProviderAck { stored: false },
        }
    }

    /// The answer to one of our requests, from the authenticated node that gave it.
    pub fn handle_response(&mut self, now: Millis, id: RequestId, from: &Contact, resp: Response) {
        let _ = (now, id, from, resp);
    }

    /// The transport could not deliver request `id`: it fails now instead of at its timeout.
    pub fn handle_failure(&mut self, now: Millis, id: RequestId) {
        let _ = (now, id);
    }

    /// A peer broke the protocol: drop it from the table and refuse it for 10 min.
    pub fn ban(&mut self, now: Millis, id: Key) {
        self.table.evict(&id, now);
    }

    /// Runs the timers due at `now` (request timeouts, stalls, refresh, republish, expiry).
    pub fn handle_timeout(&mut self, now: Millis) {
        let _ = now;
    }

    /// The earliest time `handle_timeout` must be called (None: nothing scheduled).
    pub fn poll_timeout(&self) -> Option<Millis> {
        None
    }

    /// The next request to deliver.
    pub fn poll_transmit(&mut self) -> Option<Outgoing> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Starts a lookup of the `K` nodes closest to `target`.
    pub fn find_node(&mut self, now: Millis, target: Key) -> LookupId {
        self.finish_now(now, target, LookupKind::Nodes)
    }

    /// Starts a lookup of the providers of `key`, ending early once `want` are known.
    pub fn get_providers(&mut self, now: Millis, key: Key, want: usize) -> LookupId {
        self.finish_now(now, key, LookupKind::Providers { want })
    }

    fn finish_now(&mut self, now: Millis, target: Key, kind: LookupKind) -> LookupId {
        let id = LookupId(self.next_lookup);
        self.next_lookup += 1;
        self.events.push_back(Event::LookupDone(LookupResult {
            id,
            target,
            kind,
            closest: self.table.closest(&target, self.config.k),
            providers: Vec::new(),
            started: now,
            finished: now,
            first_result_at: None,
            hops: None,
            requests: 0,
            failures: 0,
        }));
        id
    }

    /// Announce that we hold `key` (lookup + AddProvider to the k closest), and republish
    /// every `republish` until `unprovide`.
    pub fn provide(&mut self, now: Millis, key: Key) {
        let _ = (now, key);
    }

    /// Stops announcing `key` (records already stored elsewhere expire).
    pub fn unprovide(&mut self, key: &Key) {
        let _ = key;
    }

    /// The routing table.
    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// Counters.
    pub fn stats(&self) -> DhtStats {
        DhtStats {
            contacts: self.table.len(),
            ..DhtStats::default()
        }
    }

    /// Checks every internal invariant; Err names the broken one.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.table.check()
    }
}
