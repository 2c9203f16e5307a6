//! The DHT node: routing table, lookups, provider records and request bookkeeping, driven by
//! the caller's time and messages.
use super::config::Config;
use super::contact::{Contact, Peer};
use super::key::Key;
use super::lookup::{Lookup, LookupId, LookupKind, LookupResult};
use super::msg::{Request, Response};
use super::providers::{Limits, ProviderStore};
use super::requests::{Outgoing, Pending, Purpose, RequestId, Requests, Timer};
use super::rng::Rng;
use super::table::{RoutingTable, Seen};
use super::time::Millis;
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};

mod check;
mod maintain;
#[cfg(test)]
mod tests;

use maintain::{Join, Maintenance};

/// Something the driver may want to know; consumers ignore what they do not know.
#[derive(Clone, Debug)]
pub enum Event {
    /// A lookup started by `find_node`/`get_providers` ended.
    LookupDone(LookupResult),
    /// The join started by `bootstrap` ended (pings, own-id lookup, bucket refreshes); with
    /// `contacts == 0` it failed.
    Bootstrapped {
        /// Contacts in the table then.
        contacts: usize,
    },
    /// The core found `id` breaking the protocol in an answer and banned it: the driver closes
    /// its connection.
    Banned {
        /// The offender.
        id: Key,
    },
    /// An announcement of `key` (from `provide` or a republish) ended.
    Provided {
        /// The key announced.
        key: Key,
        /// Nodes sent `AddProvider` (the closest found).
        asked: u32,
        /// Of which stored the record.
        stored: u32,
    },
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

/// Who started a lookup, and so what its end does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Owner {
    /// `find_node`/`get_providers`: the result becomes an event.
    User,
    /// The own-id lookup of a join.
    Join,
    /// A bucket refresh of a join (counted) or a periodic one.
    Refresh { join: bool },
    /// The lookup before announcing `key`.
    Announce(Key),
}

struct Running {
    lookup: Lookup,
    owner: Owner,
}

/// One DHT node's protocol state.
pub struct Dht {
    me: Contact,
    config: Config,
    rng: Rng,
    table: RoutingTable,
    requests: Requests,
    lookups: BTreeMap<LookupId, Running>,
    next_lookup: u64,
    store: ProviderStore,
    maint: Maintenance,
    join: Option<Join>,
    bans: BTreeMap<Key, Millis>,
    /// Smoothed RTT of answered requests, in ms.
    srtt: Option<u64>,
    transmit: VecDeque<Outgoing>,
    events: VecDeque<Event>,
}

impl Dht {
    /// `seed`: all of the core's randomness (refresh targets, ...) comes from it.
    pub fn new(me: Contact, config: Config, seed: u64, now: Millis) -> Dht {
        let limits = Limits {
            per_key: config.max_providers_per_key,
            total: config.max_provider_records,
            per_provider: config.max_records_per_provider,
            ttl: config.provider_ttl,
        };
        Dht {
            table: RoutingTable::new(me.id, config.k, config.prefix_limits)
                .with_fresh(config.ping_fresh),
            requests: Requests::new(config.request_timeout),
            lookups: BTreeMap::new(),
            next_lookup: 0,
            store: ProviderStore::new(limits),
            maint: Maintenance::new(now, config.refresh),
            join: None,
            bans: BTreeMap::new(),
            srtt: None,
            rng: Rng::new(seed),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            me,
            config,
        }
    }

    /// Our node id.
    pub fn local_id(&self) -> Key {
        self.me.id
    }

    /// Our contact (id and addresses), as announced.
    pub fn contact(&self) -> &Contact {
        &self.me
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A request from an authenticated sender (the transport checked `from.id`); the answer.
    pub fn handle_request(&mut self, now: Millis, from: &Contact, req: Request) -> Response {
        let banned = self.is_banned(now, &from.id);
        if !banned {
            self.learn(now, from);
        }
        match req {
            Request::Ping => Response::Pong {
                observed: from
                    .addrs
                    .first()
                    .copied()
                    .unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))),
            },
            Request::FindNode { target } => Response::Nodes {
                closer: self.closer(&target, &from.id, banned),
            },
            Request::GetProviders { key } => Response::Providers {
                providers: self.store.get(now, &key, self.config.k),
                closer: self.closer(&key, &from.id, banned),
            },
            Request::AddProvider { key, addrs } => {
                let ok = !banned
                    && from.id != self.me.id
                    && (1..=super::MAX_ADDRS).contains(&addrs.len())
                    && self.store.add(now, key, Contact { id: from.id, addrs });
                Response::ProviderAck { stored: ok }
            }
        }
    }

    /// The `K` contacts closest to `target`, without the asker (none for a banned asker).
    fn closer(&self, target: &Key, asker: &Key, banned: bool) -> Vec<Contact> {
        if banned {
            return Vec::new();
        }
        let mut v = self.table.closest(target, self.config.k + 1);
        v.retain(|c| c.id != *asker);
        v.truncate(self.config.k);
        v
    }

    /// `c` spoke to us: it enters (or refreshes in) the table; a full bucket pings its head.
    fn learn(&mut self, now: Millis, c: &Contact) {
        if c.id == self.me.id || self.is_banned(now, &c.id) {
            return;
        }
        if let Seen::PingHead(head) = self.table.seen(c, now)
            && let Some(bucket) = self.me.id.bucket_of(&head.id)
        {
            let purpose = Purpose::EvictPing { bucket };
            self.send(now, Peer::Contact(head), Request::Ping, purpose, None);
        }
    }

    fn send(
        &mut self,
        now: Millis,
        to: Peer,
        req: Request,
        purpose: Purpose,
        stall: Option<Millis>,
    ) {
        let id = self
            .requests
            .start(now, to.id(), req.kind(), purpose, stall);
        self.transmit.push_back(Outgoing { id, to, req });
    }

    /// STALL: 4 x the RTT estimate, clamped; `stall_max` before any estimate.
    fn stall(&self) -> Millis {
        match self.srtt {
            None => self.config.stall_max,
            Some(rtt) => Millis(
                rtt.saturating_mul(4)
                    .clamp(self.config.stall_min.0, self.config.stall_max.0),
            ),
        }
    }

    fn rtt_sample(&mut self, rtt: Millis) {
        self.srtt = Some(match self.srtt {
            None => rtt.0,
            Some(s) => (s * 7 + rtt.0) / 8,
        });
    }

    /// The answer to one of our requests, from the authenticated node that gave it.
    pub fn handle_response(&mut self, now: Millis, id: RequestId, from: &Contact, resp: Response) {
        let Some(p) = self.requests.take(id) else {
            return;
        };
        if p.to.is_some_and(|to| to != from.id) || self.is_banned(now, &from.id) {
            self.end_failed(now, p, false);
            return;
        }
        if !self.well_formed(&p, &resp) {
            self.ban(now, from.id);
            self.events.push_back(Event::Banned { id: from.id });
            self.end_failed(now, p, false);
            return;
        }
        self.rtt_sample(now.since(p.sent));
        self.learn(now, from);
        match p.purpose {
            Purpose::Lookup(lid) => self.lookup_answer(now, lid, from, resp),
            Purpose::Bootstrap => self.join_ping_ended(now, true),
            Purpose::EvictPing { bucket } => self.table.ping_done(bucket),
            Purpose::Announce { key } => {
                let stored = matches!(resp, Response::ProviderAck { stored: true });
                self.announce_acked(key, stored);
            }
        }
    }

    /// The answer is of the right kind, within `K` entries, every contact with 1..=4 addresses.
    fn well_formed(&self, p: &Pending, resp: &Response) -> bool {
        let k = self.config.k;
        let contacts_ok = |cs: &[Contact]| cs.len() <= k && cs.iter().all(Contact::is_well_formed);
        resp.answers_kind(p.kind)
            && match resp {
                Response::Nodes { closer } => contacts_ok(closer),
                Response::Providers { providers, closer } => {
                    contacts_ok(closer)
                        && providers.len() <= k
                        && providers.iter().all(|r| r.node.is_well_formed())
                }
                Response::Pong { .. } | Response::ProviderAck { .. } => true,
            }
    }

    fn lookup_answer(&mut self, now: Millis, lid: LookupId, from: &Contact, resp: Response) {
        let (mut closer, providers) = match resp {
            Response::Nodes { closer } => (closer, Vec::new()),
            Response::Providers { providers, closer } => (closer, providers),
            Response::Pong { .. } | Response::ProviderAck { .. } => return,
        };
        closer.retain(|c| c.id != self.me.id && !self.is_banned(now, &c.id));
        let Some(run) = self.lookups.get_mut(&lid) else {
            return;
        };
        run.lookup.on_answer(&from.id, closer, providers, now);
        self.pump(now, lid);
    }

    /// The transport could not deliver request `id`: it fails now instead of at its timeout.
    pub fn handle_failure(&mut self, now: Millis, id: RequestId) {
        if let Some(p) = self.requests.take(id) {
            self.end_failed(now, p, false);
        }
    }

    /// A request ended without a usable answer (`timed_out`: at its timeout).
    fn end_failed(&mut self, now: Millis, p: Pending, timed_out: bool) {
        if let Some(to) = p.to {
            match p.purpose {
                Purpose::EvictPing { bucket } => {
                    self.table.evict(&to, now);
                    self.table.ping_done(bucket);
                }
                _ => {
                    self.table.failed(&to, self.config.max_failures, now);
                }
            }
        }
        match p.purpose {
            Purpose::Lookup(lid) => {
                if let (Some(run), Some(to)) = (self.lookups.get_mut(&lid), p.to) {
                    run.lookup.on_failure(&to, timed_out);
                    self.pump(now, lid);
                }
            }
            Purpose::Bootstrap => self.join_ping_ended(now, false),
            Purpose::Announce { key } => self.announce_acked(key, false),
            Purpose::EvictPing { .. } => {}
        }
    }

    /// A peer broke the protocol: drop it from the table and refuse it for 10 min.
    pub fn ban(&mut self, now: Millis, id: Key) {
        self.bans.insert(id, now.plus(self.config.ban_duration));
        self.table.evict(&id, now);
    }

    /// Whether `id` is refused at `now` (the transport refuses its connections: `NOT_ADMITTED`).
    pub fn is_banned(&self, now: Millis, id: &Key) -> bool {
        self.bans.get(id).is_some_and(|until| *until > now)
    }

    /// Runs the timers due at `now` (request timeouts, stalls, refresh, republish, expiry).
    pub fn handle_timeout(&mut self, now: Millis) {
        while let Some((id, timer)) = self.requests.pop_due(now) {
            match timer {
                Timer::Stall => self.stalled(now, id),
                Timer::Timeout => {
                    if let Some(p) = self.requests.take(id) {
                        self.end_failed(now, p, true);
                    }
                }
            }
        }
        self.maintain(now);
    }

    fn stalled(&mut self, now: Millis, id: RequestId) {
        let Some(p) = self.requests.get(id) else {
            return;
        };
        if let (Purpose::Lookup(lid), Some(to)) = (p.purpose, p.to)
            && let Some(run) = self.lookups.get_mut(&lid)
        {
            run.lookup.on_stall(&to);
            self.pump(now, lid);
        }
    }

    /// The earliest time `handle_timeout` must be called (None: nothing scheduled).
    pub fn poll_timeout(&self) -> Option<Millis> {
        [self.requests.next_timer(), self.maint_timeout()]
            .into_iter()
            .flatten()
            .min()
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
        self.start_lookup(now, target, LookupKind::Nodes, Owner::User)
    }

    /// Starts a lookup of the providers of `key`, ending early once `want` are known (0: no
    /// early end).
    pub fn get_providers(&mut self, now: Millis, key: Key, want: usize) -> LookupId {
        self.start_lookup(now, key, LookupKind::Providers { want }, Owner::User)
    }

    fn start_lookup(
        &mut self,
        now: Millis,
        target: Key,
        kind: LookupKind,
        owner: Owner,
    ) -> LookupId {
        let lid = LookupId(self.next_lookup);
        self.next_lookup += 1;
        self.maint.touch(self.me.id.bucket_of(&target), now);
        let seeds = self.table.closest(&target, self.config.k);
        let paths = self.config.disjoint_paths.unwrap_or(1);
        let params = (self.config.k, self.config.alpha, paths);
        let lookup = Lookup::new(lid, target, kind, params, seeds, now);
        self.lookups.insert(lid, Running { lookup, owner });
        self.pump(now, lid);
        lid
    }

    /// Sends the queries lookup `lid` may send now; ends it when done.
    fn pump(&mut self, now: Millis, lid: LookupId) {
        let stall = self.stall();
        let Some(run) = self.lookups.get_mut(&lid) else {
            return;
        };
        let target = run.lookup.target();
        let req = match run.lookup.kind() {
            LookupKind::Nodes => Request::FindNode { target },
            LookupKind::Providers { .. } => Request::GetProviders { key: target },
        };
        let mut queries = Vec::new();
        while let Some(c) = run.lookup.next_query() {
            queries.push(c);
        }
        let done = run.lookup.is_done();
        for c in queries {
            let purpose = Purpose::Lookup(lid);
            self.send(now, Peer::Contact(c), req.clone(), purpose, Some(stall));
        }
        if done {
            self.finish(now, lid);
        }
    }

    fn finish(&mut self, now: Millis, lid: LookupId) {
        let Some(run) = self.lookups.remove(&lid) else {
            return;
        };
        let result = run.lookup.result(now);
        match run.owner {
            Owner::User => self.events.push_back(Event::LookupDone(result)),
            Owner::Join => self.join_lookup_done(now),
            Owner::Refresh { join } => self.refresh_done(join),
            Owner::Announce(key) => self.announce(now, key, result.closest),
        }
    }

    /// The routing table.
    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// Counters.
    pub fn stats(&self) -> DhtStats {
        DhtStats {
            contacts: self.table.len(),
            providers_stored: self.store.len(),
            lookups_active: self.lookups.len(),
            requests_in_flight: self.requests.len(),
            keys_provided: self.maint.provided(),
        }
    }
}
