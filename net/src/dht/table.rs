//! The routing table (docs/protocol.md, "Routing table"): 256 buckets of at most `K` contacts,
//! each with a replacement list; the head of a bucket is its least recently seen entry; ping-the-oldest eviction; prefix
//! limits. Only contacts that spoke to this node themselves are ever passed to [`RoutingTable::seen`].
//!
//! Invariants: every contact sits in the bucket of its distance to `me`, at most once in the
//! whole table (entries and replacements of one bucket are disjoint); a bucket holds at most `K`
//! entries and `K` replacements; a bucket is stored only while it has an entry or a replacement,
//! buckets sorted by index; with prefix limits on, the group counts match the entries and stay
//! within the limits.
use super::contact::Contact;
use super::key::{Distance, Key};
use super::prefix::{AddrGroup, PER_BUCKET, PER_TABLE};
use super::time::Millis;
use std::collections::BTreeMap;

/// A contact in a bucket.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The contact.
    pub contact: Contact,
    /// When it last spoke to us.
    pub last_seen: Millis,
    /// Requests to it that failed in a row.
    pub failures: u8,
    /// The address group of its first address (cached: the prefix limits read it often).
    group: Option<AddrGroup>,
}

impl Entry {
    fn new(contact: Contact, now: Millis) -> Entry {
        Entry {
            group: RoutingTable::group(&contact),
            contact,
            last_seen: now,
            failures: 0,
        }
    }
}

/// One bucket: the contacts whose distance to `me` has its highest bit at `index`.
#[derive(Clone, Debug)]
pub struct Bucket {
    index: u8,
    entries: Vec<Entry>,
    replacements: Vec<Contact>,
    /// The head being pinged to decide an eviction.
    pinging: Option<Key>,
}

impl Bucket {
    /// Its index: the highest bit of the distance of its contacts to us.
    pub fn index(&self) -> u8 {
        self.index
    }
    /// The entries in the order they entered the bucket (seeing a contact again updates its
    /// `last_seen` in place: no move).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The least recently seen entry (the first of them on a tie): the one an eviction pings.
    pub fn head(&self) -> Option<&Entry> {
        self.entries.iter().min_by_key(|e| e.last_seen)
    }
    /// Most recently seen last.
    pub fn replacements(&self) -> &[Contact] {
        &self.replacements
    }
    fn position(&self, id: &Key) -> Option<usize> {
        self.entries.iter().position(|e| e.contact.id == *id)
    }
}

/// What [`RoutingTable::seen`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Already in the table: its `last_seen` is now.
    Refreshed,
    /// Added to its bucket.
    Added,
    /// Bucket full, head not seen within `fresh`: kept as a replacement; the caller must ping `head` (and report the result
    /// with [`RoutingTable::seen`] or [`RoutingTable::evict`], then [`RoutingTable::ping_done`]).
    PingHead(Contact),
    /// Bucket full and its head already being pinged or seen within `fresh`: kept as a replacement.
    Replacement,
    /// Refused: it is us, malformed, or over a prefix limit.
    Refused,
}

/// The routing table of one node.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    me: Key,
    k: usize,
    prefix_limits: bool,
    /// A head seen this recently is live: a newcomer for its full bucket waits without a ping.
    fresh: Millis,
    buckets: Vec<Bucket>,
    len: usize,
    groups: BTreeMap<AddrGroup, u16>,
}

impl RoutingTable {
    /// An empty table of node `me`.
    pub fn new(me: Key, k: usize, prefix_limits: bool) -> RoutingTable {
        RoutingTable {
            me,
            k,
            prefix_limits,
            fresh: Millis(0),
            buckets: Vec::new(),
            len: 0,
            groups: BTreeMap::new(),
        }
    }

    /// The table, where a full bucket whose head was seen within `fresh` sends no eviction ping.
    pub fn with_fresh(mut self, fresh: Millis) -> RoutingTable {
        self.fresh = fresh;
        self
    }

    /// Contacts in the table (not counting replacements).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table has no contact.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The stored buckets (those with an entry or a replacement), by increasing index.
    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// Whether `id` is a contact of the table (not a replacement).
    pub fn contains(&self, id: &Key) -> bool {
        self.entry(id).is_some()
    }

    /// The entry of contact `id`.
    pub fn entry(&self, id: &Key) -> Option<&Entry> {
        let b = self.bucket(self.me.bucket_of(id)?)?;
        b.position(id).map(|i| &b.entries[i])
    }

    /// Index of the closest non-empty bucket (the bucket of our closest neighbour).
    pub fn closest_bucket(&self) -> Option<u8> {
        self.buckets
            .iter()
            .find(|b| !b.entries.is_empty())
            .map(|b| b.index)
    }

    fn slot(&self, index: u8) -> Result<usize, usize> {
        self.buckets.binary_search_by_key(&index, |b| b.index)
    }

    fn bucket(&self, index: u8) -> Option<&Bucket> {
        self.slot(index).ok().map(|i| &self.buckets[i])
    }

    fn bucket_mut(&mut self, index: u8) -> &mut Bucket {
        let i = match self.slot(index) {
            Ok(i) => i,
            Err(i) => {
                let b = Bucket {
                    index,
                    entries: Vec::new(),
                    replacements: Vec::new(),
                    pinging: None,
                };
                self.buckets.insert(i, b);
                i
            }
        };
        &mut self.buckets[i]
    }

    fn drop_if_empty(&mut self, index: u8) {
        if let Ok(i) = self.slot(index) {
            let b = &self.buckets[i];
            if b.entries.is_empty() && b.replacements.is_empty() {
                self.buckets.remove(i);
            }
        }
    }

    fn group(c: &Contact) -> Option<AddrGroup> {
        c.addrs.first().map(AddrGroup::of)
    }

    /// Whether `c` may enter bucket `index` under the prefix limits.
    fn within_limits(&self, c: &Contact, index: u8) -> bool {
        if !self.prefix_limits {
            return true;
        }
        let Some(g) = Self::group(c) else {
            return false;
        };
        let in_table = self.groups.get(&g).copied().unwrap_or(0);
        let in_bucket = self.bucket(index).map_or(0, |b| {
            b.entries.iter().filter(|e| e.group == Some(g)).count()
        });
        in_table < PER_TABLE && (in_bucket as u16) < PER_BUCKET
    }

    fn count_group(&mut self, c: &Contact, add: bool) {
        if !self.prefix_limits {
            return;
        }
        if let Some(g) = Self::group(c) {
            let n = self.groups.entry(g).or_insert(0);
            if add {
                *n += 1;
            } else {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.groups.remove(&g);
                }
            }
        }
    }

    /// `c` spoke to us at `now` (a request from it or an answer from it).
    pub fn seen(&mut self, c: &Contact, now: Millis) -> Seen {
        let Some(index) = self.me.bucket_of(&c.id) else {
            return Seen::Refused;
        };
        if !c.is_well_formed() {
            return Seen::Refused;
        }
        if let Some(seen) = self.refresh(index, c, now) {
            return seen;
        }
        if !self.within_limits(c, index) {
            return Seen::Refused;
        }
        let (k, fresh) = (self.k, self.fresh);
        let b = self.bucket_mut(index);
        b.replacements.retain(|r| r.id != c.id);
        if b.entries.len() < k {
            b.entries.push(Entry::new(c.clone(), now));
            self.len += 1;
            self.count_group(c, true);
            return Seen::Added;
        }
        if b.replacements.len() >= k {
            b.replacements.remove(0);
        }
        b.replacements.push(c.clone());
        let head = match b.head() {
            Some(h) if b.pinging.is_none() && h.last_seen.plus(fresh) <= now => h.contact.clone(),
            _ => return Seen::Replacement,
        };
        b.pinging = Some(head.id);
        Seen::PingHead(head)
    }

    /// Marks an existing entry seen at `now`; None when `c` is not an entry.
    fn refresh(&mut self, index: u8, c: &Contact, now: Millis) -> Option<Seen> {
        let i = self.slot(index).ok()?;
        let b = &mut self.buckets[i];
        let pos = b.position(&c.id)?;
        let e = &mut b.entries[pos];
        e.last_seen = now;
        e.failures = 0;
        // New addresses are taken when they stay in the entry's address group (the prefix
        // limits counted that group); a node that moved re-enters after its eviction.
        if e.contact.addrs != c.addrs && c.is_well_formed() && Self::group(c) == e.group {
            e.contact.addrs = c.addrs.clone();
        }
        Some(Seen::Refreshed)
    }

    /// The eviction ping of bucket `index` is over (answered or failed).
    pub fn ping_done(&mut self, index: u8) {
        if let Ok(i) = self.slot(index) {
            self.buckets[i].pinging = None;
        }
    }

    /// A request to `id` failed; evicts it after `max` failures in a row. Returns whether it was
    /// evicted.
    pub fn failed(&mut self, id: &Key, max: u8, now: Millis) -> bool {
        let Some(index) = self.me.bucket_of(id) else {
            return false;
        };
        let Ok(i) = self.slot(index) else {
            return false;
        };
        let b = &mut self.buckets[i];
        let Some(pos) = b.position(id) else {
            return false;
        };
        b.entries[pos].failures = b.entries[pos].failures.saturating_add(1);
        if b.entries[pos].failures < max {
            return false;
        }
        self.evict(id, now);
        true
    }

    /// Removes `id` (entry or replacement); the most recently seen replacement that fits the
    /// prefix limits takes an entry's place.
    pub fn evict(&mut self, id: &Key, now: Millis) -> Option<Contact> {
        let index = self.me.bucket_of(id)?;
        let i = self.slot(index).ok()?;
        let b = &mut self.buckets[i];
        b.replacements.retain(|r| r.id != *id);
        let removed = match b.position(id) {
            Some(pos) => Some(b.entries.remove(pos).contact),
            None => None,
        };
        if let Some(c) = &removed {
            self.len -= 1;
            self.count_group(c, false);
            self.promote(index, now);
        }
        self.drop_if_empty(index);
        removed
    }

    fn promote(&mut self, index: u8, now: Millis) {
        let Ok(i) = self.slot(index) else { return };
        let mut candidates = std::mem::take(&mut self.buckets[i].replacements);
        while let Some(r) = candidates.pop() {
            if self.within_limits(&r, index) {
                let b = &mut self.buckets[i];
                b.entries.push(Entry::new(r.clone(), now));
                self.len += 1;
                self.count_group(&r, true);
                break;
            }
        }
        self.buckets[i].replacements = candidates;
    }

    /// The at most `n` contacts closest to `target`, closest first, without a scan of the
    /// table. With `x = me ^ target`, every contact of bucket `j` has a distance to the target
    /// whose bits above `j` are those of `x` and whose bit `j` is `x`'s flipped: so the buckets
    /// with bit `j` of `x` set come first, highest `j` first, then those with it clear, lowest
    /// `j` first; only the buckets needed are sorted.
    pub fn closest(&self, target: &Key, n: usize) -> Vec<Contact> {
        let x = self.me.distance(target);
        let mut out: Vec<Contact> = Vec::with_capacity(n);
        let mut scratch: Vec<(Distance, &Entry)> = Vec::with_capacity(self.k);
        let ones = self.buckets.iter().rev().filter(|b| x.bit(b.index));
        let zeros = self.buckets.iter().filter(|b| !x.bit(b.index));
        for b in ones.chain(zeros) {
            if out.len() >= n {
                break;
            }
            scratch.clear();
            scratch.extend(
                b.entries
                    .iter()
                    .map(|e| (target.distance(&e.contact.id), e)),
            );
            scratch.sort_unstable_by_key(|p| p.0);
            let room = n - out.len();
            out.extend(scratch.iter().take(room).map(|(_, e)| e.contact.clone()));
        }
        out
    }

    /// Checks the invariants of the module doc.
    pub fn check(&self) -> Result<(), String> {
        let mut len = 0;
        let mut groups: BTreeMap<AddrGroup, u16> = BTreeMap::new();
        let mut last: Option<u8> = None;
        for b in &self.buckets {
            if last.is_some_and(|l| l >= b.index) {
                return Err(format!("buckets out of order at {}", b.index));
            }
            last = Some(b.index);
            self.check_bucket(b, &mut groups)?;
            len += b.entries.len();
        }
        if len != self.len {
            return Err(format!("table len {} but {} entries", self.len, len));
        }
        if self.prefix_limits && groups != self.groups {
            return Err("address-group counts do not match the entries".into());
        }
        if let Some((g, n)) = groups.iter().find(|(_, n)| **n > PER_TABLE)
            && self.prefix_limits
        {
            return Err(format!("{n} contacts of group {g:?} in the table"));
        }
        Ok(())
    }

    fn check_bucket(
        &self,
        b: &Bucket,
        groups: &mut BTreeMap<AddrGroup, u16>,
    ) -> Result<(), String> {
        if b.entries.is_empty() && b.replacements.is_empty() {
            return Err(format!("empty bucket {} stored", b.index));
        }
        if b.entries.len() > self.k || b.replacements.len() > self.k {
            return Err(format!("bucket {} over K", b.index));
        }
        let mut ids: Vec<Key> = b.entries.iter().map(|e| e.contact.id).collect();
        ids.extend(b.replacements.iter().map(|c| c.id));
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != n {
            return Err(format!("bucket {} holds a contact twice", b.index));
        }
        if ids.iter().any(|id| self.me.bucket_of(id) != Some(b.index)) {
            return Err(format!(
                "bucket {} holds a contact of another bucket",
                b.index
            ));
        }
        let mut local: BTreeMap<AddrGroup, u16> = BTreeMap::new();
        for e in &b.entries {
            if !e.contact.is_well_formed() {
                return Err(format!("malformed contact in bucket {}", b.index));
            }
            if e.group != Self::group(&e.contact) {
                return Err(format!("stale address group in bucket {}", b.index));
            }
            if let Some(g) = e.group {
                *local.entry(g).or_insert(0) += 1;
                *groups.entry(g).or_insert(0) += 1;
            }
        }
        if self.prefix_limits && local.values().any(|n| *n > PER_BUCKET) {
            return Err(format!(
                "bucket {} over the per-bucket prefix limit",
                b.index
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::testnet::contact;
    use std::net::SocketAddr;

    fn me() -> Key {
        contact(999_999).id
    }

    #[test]
    fn closest_matches_a_full_sort() {
        let mut t = RoutingTable::new(me(), 20, false);
        let all: Vec<Contact> = (0..2000).map(contact).collect();
        for c in &all {
            t.seen(c, Millis(1));
        }
        t.check().unwrap();
        let stored: Vec<Contact> = t
            .buckets()
            .iter()
            .flat_map(|b| b.entries().iter().map(|e| e.contact.clone()))
            .collect();
        assert_eq!(stored.len(), t.len());
        for target in (5000..5050).map(|i| contact(i).id).chain([me()]) {
            for n in [1, 7, 20, 45] {
                let mut want: Vec<Key> = stored.iter().map(|c| c.id).collect();
                want.sort_by_key(|k| target.distance(k));
                want.truncate(n);
                let got: Vec<Key> = t.closest(&target, n).iter().map(|c| c.id).collect();
                assert_eq!(got, want, "n = {n}");
            }
        }
    }

    #[test]
    fn a_full_bucket_keeps_old_contacts_and_queues_new_ones() {
        let me = me();
        let mut t = RoutingTable::new(me, 2, false);
        let cs: Vec<Contact> = (0..)
            .map(contact)
            .filter(|c| me.bucket_of(&c.id) == Some(255))
            .take(5)
            .collect();
        assert_eq!(t.seen(&cs[0], Millis(1)), Seen::Added);
        assert_eq!(t.seen(&cs[1], Millis(2)), Seen::Added);
        assert_eq!(t.seen(&cs[2], Millis(3)), Seen::PingHead(cs[0].clone()));
        assert_eq!(t.seen(&cs[3], Millis(4)), Seen::Replacement);
        assert_eq!(t.seen(&cs[4], Millis(5)), Seen::Replacement);
        assert_eq!(
            t.buckets()[0].replacements().len(),
            2,
            "replacements bounded by K"
        );
        assert_eq!(t.seen(&cs[0], Millis(6)), Seen::Refreshed);
        t.ping_done(255);
        assert!(t.contains(&cs[0].id) && !t.contains(&cs[2].id));
        t.evict(&cs[1].id, Millis(7));
        assert!(
            t.contains(&cs[4].id),
            "the most recent replacement is promoted"
        );
        t.check().unwrap();
    }

    #[test]
    fn prefix_limits_hold() {
        let me = me();
        let mut t = RoutingTable::new(me, 20, true);
        let mut added = 0;
        for i in 0..200u32 {
            let mut c = contact(i);
            c.addrs = vec![SocketAddr::from(([198, 51, 100, (i % 250) as u8], 1000))];
            if matches!(t.seen(&c, Millis(1)), Seen::Added) {
                added += 1;
            }
            t.check().unwrap();
        }
        assert_eq!(
            added,
            usize::from(PER_TABLE),
            "one /24 fills at most 10 slots"
        );
        let per_bucket = t.buckets().iter().map(|b| b.entries().len()).max();
        assert!(per_bucket <= Some(usize::from(PER_BUCKET)));
    }

    #[test]
    fn malformed_and_self_are_refused() {
        let me = me();
        let mut t = RoutingTable::new(me, 20, false);
        let mut c = contact(1);
        c.addrs.clear();
        assert_eq!(t.seen(&c, Millis(0)), Seen::Refused);
        c.addrs = vec![SocketAddr::from(([1, 2, 3, 4], 5)); 5];
        assert_eq!(t.seen(&c, Millis(0)), Seen::Refused);
        let mut own = contact(2);
        own.id = me;
        assert_eq!(t.seen(&own, Millis(0)), Seen::Refused);
        assert!(t.is_empty());
    }
}
