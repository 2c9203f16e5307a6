//! The provider records a node stores for others (docs/protocol.md, "Provider records").
//!
//! Invariants: at most `max_providers_per_key` records per key, `max_provider_records` in all
//! and `max_records_per_provider` from one provider; every record has exactly one entry in the
//! expiry index, at its announce time + TTL; the per-provider counts and the total match the
//! records; an expired record is never returned.
use super::contact::{Contact, ProviderRecord};
use super::key::Key;
use super::time::Millis;
use std::collections::{BTreeMap, BTreeSet};

/// Limits and lifetime of the store.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) per_key: usize,
    pub(crate) total: usize,
    pub(crate) per_provider: usize,
    pub(crate) ttl: Millis,
}

#[derive(Clone, Debug)]
struct Record {
    node: Contact,
    announced: Millis,
}

/// Provider records by key, with an expiry index.
#[derive(Clone, Debug)]
pub(crate) struct ProviderStore {
    limits: Limits,
    by_key: BTreeMap<Key, Vec<Record>>,
    per_provider: BTreeMap<Key, usize>,
    /// (expires, key, provider).
    expiry: BTreeSet<(Millis, Key, Key)>,
    total: usize,
}

impl ProviderStore {
    pub(crate) fn new(limits: Limits) -> ProviderStore {
        ProviderStore {
            limits,
            by_key: BTreeMap::new(),
            per_provider: BTreeMap::new(),
            expiry: BTreeSet::new(),
            total: 0,
        }
    }

    /// Records in the store (some may be expired and not yet swept).
    pub(crate) fn len(&self) -> usize {
        self.total
    }

    /// `node` announced `key` at `now`; false when a limit refuses a new record.
    pub(crate) fn add(&mut self, now: Millis, key: Key, node: Contact) -> bool {
        let ttl = self.limits.ttl;
        let existing = self
            .by_key
            .get_mut(&key)
            .and_then(|rs| rs.iter_mut().find(|r| r.node.id == node.id));
        if let Some(r) = existing {
            self.expiry.remove(&(r.announced.plus(ttl), key, node.id));
            self.expiry.insert((now.plus(ttl), key, node.id));
            *r = Record {
                node,
                announced: now,
            };
            return true;
        }
        let on_key = self.by_key.get(&key).map_or(0, Vec::len);
        let of_provider = self.per_provider.get(&node.id).copied().unwrap_or(0);
        if on_key >= self.limits.per_key
            || self.total >= self.limits.total
            || of_provider >= self.limits.per_provider
        {
            return false;
        }
        self.expiry.insert((now.plus(ttl), key, node.id));
        *self.per_provider.entry(node.id).or_insert(0) += 1;
        self.total += 1;
        let rec = Record {
            node,
            announced: now,
        };
        self.by_key.entry(key).or_default().push(rec);
        true
    }

    /// At most `n` unexpired providers of `key`, most recently announced first.
    pub(crate) fn get(&self, now: Millis, key: &Key, n: usize) -> Vec<ProviderRecord> {
        let Some(records) = self.by_key.get(key) else {
            return Vec::new();
        };
        let mut live: Vec<&Record> = records
            .iter()
            .filter(|r| r.announced.plus(self.limits.ttl) > now)
            .collect();
        live.sort_by_key(|r| (std::cmp::Reverse(r.announced), r.node.id));
        live.into_iter()
            .take(n)
            .map(|r| ProviderRecord {
                node: r.node.clone(),
                age_s: u32::try_from(now.since(r.announced).0 / 1000).unwrap_or(u32::MAX),
            })
            .collect()
    }

    /// When the next record expires.
    pub(crate) fn next_expiry(&self) -> Option<Millis> {
        self.expiry.first().map(|e| e.0)
    }

    /// Drops every record expired at `now`.
    pub(crate) fn expire(&mut self, now: Millis) {
        while let Some(&(at, key, provider)) = self.expiry.first() {
            if at > now {
                break;
            }
            self.expiry.pop_first();
            self.remove(&key, &provider);
        }
    }

    fn remove(&mut self, key: &Key, provider: &Key) {
        let Some(records) = self.by_key.get_mut(key) else {
            return;
        };
        records.retain(|r| r.node.id != *provider);
        if records.is_empty() {
            self.by_key.remove(key);
        }
        if let Some(n) = self.per_provider.get_mut(provider) {
            *n -= 1;
            if *n == 0 {
                self.per_provider.remove(provider);
            }
        }
        self.total -= 1;
    }

    /// Checks the invariants of the module doc.
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut total = 0;
        let mut per_provider: BTreeMap<Key, usize> = BTreeMap::new();
        for (key, records) in &self.by_key {
            if records.is_empty() || records.len() > self.limits.per_key {
                return Err(format!("{} provider records for one key", records.len()));
            }
            for r in records {
                total += 1;
                *per_provider.entry(r.node.id).or_insert(0) += 1;
                let at = r.announced.plus(self.limits.ttl);
                if !self.expiry.contains(&(at, *key, r.node.id)) {
                    return Err("provider record missing from the expiry index".into());
                }
            }
        }
        if total != self.total || self.expiry.len() != total {
            return Err(format!(
                "provider counts: {} records, total {}, expiry {}",
                total,
                self.total,
                self.expiry.len()
            ));
        }
        if per_provider != self.per_provider {
            return Err("per-provider counts do not match the records".into());
        }
        if total > self.limits.total || per_provider.values().any(|n| *n > self.limits.per_provider)
        {
            return Err("provider store over a limit".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::testnet::contact;

    fn store(per_key: usize, total: usize, per_provider: usize) -> ProviderStore {
        ProviderStore::new(Limits {
            per_key,
            total,
            per_provider,
            ttl: Millis::secs(100),
        })
    }

    fn key(i: u8) -> Key {
        Key([i; 32])
    }

    #[test]
    fn limits_refuse_new_records_only() {
        let mut s = store(3, 5, 2);
        assert!(s.add(Millis(0), key(1), contact(1)));
        assert!(s.add(Millis(0), key(1), contact(2)));
        assert!(s.add(Millis(0), key(1), contact(3)));
        assert!(!s.add(Millis(0), key(1), contact(4)), "per key");
        assert!(
            s.add(Millis(1), key(1), contact(3)),
            "a renewal is not a new record"
        );
        assert!(s.add(Millis(0), key(2), contact(1)));
        assert!(!s.add(Millis(0), key(3), contact(1)), "per provider");
        assert!(s.add(Millis(0), key(3), contact(5)));
        assert!(!s.add(Millis(0), key(4), contact(6)), "in all");
        assert_eq!(s.len(), 5);
        s.check().unwrap();
    }

    #[test]
    fn records_expire_after_ttl_from_their_last_announce() {
        let mut s = store(10, 10, 10);
        s.add(Millis(0), key(1), contact(1));
        s.add(Millis(0), key(1), contact(2));
        s.add(Millis::secs(50), key(1), contact(2));
        assert_eq!(s.get(Millis::secs(99), &key(1), 10).len(), 2);
        let live = s.get(Millis::secs(100), &key(1), 10);
        assert_eq!(live.len(), 1, "expired records are never returned");
        assert_eq!(live[0].node.id, contact(2).id);
        assert_eq!(live[0].age_s, 50);
        assert_eq!(s.next_expiry(), Some(Millis::secs(100)));
        s.expire(Millis::secs(100));
        assert_eq!(s.len(), 1);
        s.check().unwrap();
        s.expire(Millis::secs(150));
        assert_eq!(s.len(), 0);
        assert!(s.add(Millis::secs(150), key(1), contact(1)), "room again");
        s.check().unwrap();
    }
}
