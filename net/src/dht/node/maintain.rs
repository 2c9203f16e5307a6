//! Keeping a node joined and its records alive: bootstrap, bucket refresh, announcing and
//! republishing provided keys, sweeping expired provider records and bans.
//!
//! Invariants: every provided key has exactly one republish timer, at its next republish;
//! `touched` has one entry per bucket.
use super::{Dht, Event, LookupKind, Owner};
use crate::dht::contact::{Contact, Peer};
use crate::dht::key::Key;
use crate::dht::msg::Request;
use crate::dht::requests::Purpose;
use crate::dht::time::Millis;
use std::collections::{BTreeMap, BTreeSet};

/// Expired provider records are swept at most this often (a lookup never returns one anyway).
const SWEEP: Millis = Millis::secs(60);

/// Where a join started by `bootstrap` stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Join {
    /// Pinging the bootstrap peers; `left` have not answered or failed.
    Pinging { left: usize },
    /// Looking up our own id.
    SelfLookup,
    /// Refreshing the buckets farther than our closest neighbour; `left` lookups running.
    Refreshing { left: usize },
}

/// Answers still awaited for one announcement.
#[derive(Clone, Copy, Debug)]
struct Announce {
    left: u32,
    asked: u32,
    stored: u32,
}

/// Timers and state of refresh and republish.
#[derive(Clone, Debug)]
pub(super) struct Maintenance {
    refresh_every: Millis,
    next_refresh: Millis,
    /// When a lookup last targeted each bucket.
    touched: Vec<Millis>,
    /// Provided keys and their next republish.
    provided: BTreeMap<Key, Millis>,
    republish: BTreeSet<(Millis, Key)>,
    announcing: BTreeMap<Key, Announce>,
    last_sweep: Millis,
}

impl Maintenance {
    pub(super) fn new(now: Millis, refresh_every: Millis) -> Maintenance {
        Maintenance {
            refresh_every: refresh_every.max(Millis(1)),
            next_refresh: now.plus(refresh_every.max(Millis(1))),
            touched: vec![now; 256],
            provided: BTreeMap::new(),
            republish: BTreeSet::new(),
            announcing: BTreeMap::new(),
            last_sweep: now,
        }
    }

    /// A lookup targets `bucket` at `now`.
    pub(super) fn touch(&mut self, bucket: Option<u8>, now: Millis) {
        if let Some(b) = bucket {
            self.touched[usize::from(b)] = now;
        }
    }

    /// Keys provided.
    pub(super) fn provided(&self) -> usize {
        self.provided.len()
    }

    pub(super) fn check(&self) -> Result<(), String> {
        let timers: BTreeSet<(Millis, Key)> = self.provided.iter().map(|(k, t)| (*t, *k)).collect();
        if timers != self.republish || self.touched.len() != 256 {
            return Err("republish timers do not match the provided keys".into());
        }
        Ok(())
    }
}

/// A random id in bucket `i` of `me`: the bits above `i` of `me`, bit `i` flipped, random below.
pub(super) fn random_in_bucket(me: &Key, i: u8, random: [u8; 32]) -> Key {
    let mut k = random;
    let byte = 31 - usize::from(i / 8);
    let flip = 1u8 << (i % 8);
    let below = flip - 1;
    k[..byte].copy_from_slice(&me.0[..byte]);
    k[byte] = (me.0[byte] & !(below | flip)) | (!me.0[byte] & flip) | (random[byte] & below);
    Key(k)
}

impl Dht {
    /// Ping each address, then look up our own id, then refresh the buckets farther than our
    /// closest neighbour; [`Event::Bootstrapped`] at the end.
    pub fn bootstrap(&mut self, now: Millis, peers: Vec<Peer>) {
        if peers.is_empty() {
            self.join = Some(Join::SelfLookup);
            self.start_lookup(now, self.me.id, LookupKind::Nodes, Owner::Join);
            return;
        }
        self.join = Some(Join::Pinging { left: peers.len() });
        for p in peers {
            self.send(now, p, Request::Ping, Purpose::Bootstrap, None);
        }
    }

    /// A bootstrap ping ended; the first answer starts the own-id lookup.
    pub(super) fn join_ping_ended(&mut self, now: Millis, answered: bool) {
        let Some(Join::Pinging { left }) = &mut self.join else {
            return;
        };
        *left -= 1;
        if answered {
            self.join = Some(Join::SelfLookup);
            self.start_lookup(now, self.me.id, LookupKind::Nodes, Owner::Join);
        } else if *left == 0 {
            self.join_done();
        }
    }

    pub(super) fn join_lookup_done(&mut self, now: Millis) {
        if self.join != Some(Join::SelfLookup) {
            return;
        }
        let from = self
            .table
            .closest_bucket()
            .map_or(256, |b| u16::from(b) + 1);
        let buckets: Vec<u8> = (from..=255).filter_map(|b| u8::try_from(b).ok()).collect();
        self.join = Some(Join::Refreshing {
            left: buckets.len(),
        });
        if buckets.is_empty() {
            self.join_done();
        }
        for i in buckets {
            self.refresh_bucket(now, i, true);
        }
    }

    pub(super) fn refresh_done(&mut self, join: bool) {
        if let (true, Some(Join::Refreshing { left })) = (join, &mut self.join) {
            *left -= 1;
            if *left == 0 {
                self.join_done();
            }
        }
    }

    fn join_done(&mut self) {
        self.join = None;
        let contacts = self.table.len();
        self.events.push_back(Event::Bootstrapped { contacts });
    }

    fn refresh_bucket(&mut self, now: Millis, i: u8, join: bool) {
        let mut random = [0u8; 32];
        self.rng.fill(&mut random);
        let target = random_in_bucket(&self.me.id, i, random);
        self.start_lookup(now, target, LookupKind::Nodes, Owner::Refresh { join });
    }

    /// When maintenance needs `handle_timeout` next.
    pub(super) fn maint_timeout(&self) -> Option<Millis> {
        let m = &self.maint;
        let sweep = self
            .store
            .next_expiry()
            .map(|t| t.max(m.last_sweep.plus(SWEEP)));
        let republish = m.republish.first().map(|r| r.0);
        [Some(m.next_refresh), republish, sweep]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs refresh, republish and the sweep when due.
    pub(super) fn maintain(&mut self, now: Millis) {
        if now >= self.maint.next_refresh {
            self.refresh_buckets(now);
        }
        while let Some(&(at, key)) = self.maint.republish.first() {
            if at > now {
                break;
            }
            self.provide(now, key);
        }
        let due = self.store.next_expiry().is_some_and(|t| t <= now);
        if due && now >= self.maint.last_sweep.plus(SWEEP) {
            self.store.expire(now);
            self.maint.last_sweep = now;
        }
    }

    /// Every `REFRESH`: each bucket from our closest neighbour's outward that no lookup
    /// targeted for a whole period gets a lookup of a random id in it.
    fn refresh_buckets(&mut self, now: Millis) {
        let every = self.maint.refresh_every;
        self.maint.next_refresh = now.plus(every);
        self.bans.retain(|_, until| *until > now);
        let Some(from) = self.table.closest_bucket() else {
            return;
        };
        for i in from..=255u8 {
            if self.maint.touched[usize::from(i)].plus(every) <= now {
                self.refresh_bucket(now, i, false);
            }
        }
    }

    /// Announce that we hold `key` (lookup + AddProvider to the k closest), and republish
    /// every `republish` until `unprovide`.
    pub fn provide(&mut self, now: Millis, key: Key) {
        let next = now.plus(self.config.republish.max(Millis(1)));
        if let Some(old) = self.maint.provided.insert(key, next) {
            self.maint.republish.remove(&(old, key));
        }
        self.maint.republish.insert((next, key));
        self.start_lookup(now, key, LookupKind::Nodes, Owner::Announce(key));
    }

    /// Stops announcing `key` (records already stored elsewhere expire).
    pub fn unprovide(&mut self, key: &Key) {
        if let Some(at) = self.maint.provided.remove(key) {
            self.maint.republish.remove(&(at, *key));
        }
    }

    /// The lookup of an announcement ended: `AddProvider` to the closest it found.
    pub(super) fn announce(&mut self, now: Millis, key: Key, closest: Vec<Contact>) {
        if !self.maint.provided.contains_key(&key) {
            return;
        }
        let n = u32::try_from(closest.len()).unwrap_or(u32::MAX);
        let state = Announce {
            left: n,
            asked: n,
            stored: 0,
        };
        self.maint.announcing.insert(key, state);
        if n == 0 {
            self.announce_acked(key, false);
        }
        for c in closest {
            let req = Request::AddProvider {
                key,
                addrs: self.me.addrs.clone(),
            };
            self.send(now, Peer::Contact(c), req, Purpose::Announce { key }, None);
        }
    }

    /// One `AddProvider` of the announcement of `key` ended.
    pub(super) fn announce_acked(&mut self, key: Key, stored: bool) {
        let Some(a) = self.maint.announcing.get_mut(&key) else {
            return;
        };
        a.left = a.left.saturating_sub(1);
        a.stored += u32::from(stored);
        if a.left == 0 || a.asked == 0 {
            let a = *a;
            self.maint.announcing.remove(&key);
            self.events.push_back(Event::Provided {
                key,
                asked: a.asked,
                stored: a.stored,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_land_in_their_bucket() {
        let me = Key([0x5a; 32]);
        for i in 0..=255u8 {
            for r in [[0u8; 32], [0xff; 32], [0x33; 32]] {
                assert_eq!(
                    me.bucket_of(&random_in_bucket(&me, i, r)),
                    Some(i),
                    "bucket {i}"
                );
            }
        }
    }
}
