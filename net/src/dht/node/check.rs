//! [`Dht::check_invariants`]: the simulator's check mode calls it after every event.
use super::Dht;
use crate::dht::key::Key;
use crate::dht::lookup::LookupId;
use crate::dht::requests::Purpose;
use std::collections::BTreeSet;

impl Dht {
    /// Checks every internal invariant (the table's, each lookup's, the provider store's,
    /// the requests' timers, and that each lookup's outstanding queries are exactly its
    /// pending requests); Err names the broken one.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.table.check()?;
        self.requests.check()?;
        self.store.check()?;
        self.maint.check()?;
        if self.table.contains(&self.me.id) {
            return Err("our own id is in the table".into());
        }
        let mut pending: BTreeSet<(LookupId, Key)> = BTreeSet::new();
        for (_, p) in self.requests.iter() {
            if let (Purpose::Lookup(lid), Some(to)) = (p.purpose, p.to)
                && self.lookups.contains_key(&lid)
                && !pending.insert((lid, to))
            {
                return Err(format!("lookup {lid:?} asked {to:?} twice"));
            }
        }
        let mut outstanding: BTreeSet<(LookupId, Key)> = BTreeSet::new();
        for (lid, run) in &self.lookups {
            run.lookup.check()?;
            outstanding.extend(run.lookup.outstanding().map(|k| (*lid, k)));
        }
        if outstanding != pending {
            return Err("lookup queries and pending requests differ".into());
        }
        Ok(())
    }
}
