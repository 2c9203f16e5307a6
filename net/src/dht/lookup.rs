//! One iterative lookup (docs/protocol.md, "Lookups"), as a state machine that never sends:
//! the node asks it which contacts to query ([`Lookup::next_query`]) and feeds it answers,
//! failures and stalls.
//!
//! Invariants: the kept candidates are sorted by distance to the target and unique by id; a candidate
//! belongs to one path and is queried once, twice after a timeout; each path has at most `alpha` requests in
//! flight that are not stalled; only the `K` closest candidates of a path that have not failed
//! are ever queried; the lookup is done when, on every path, those `K` have all answered (or
//! once `want` providers are known).
use super::contact::{Contact, ProviderRecord};
use super::key::{Distance, Key};
use super::time::Millis;

/// Id of one lookup.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct LookupId(pub u64);

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

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Waiting,
    InFlight,
    /// In flight past STALL: it no longer holds an alpha slot.
    Stalled,
    Answered,
    Failed,
}

#[derive(Clone, Debug)]
struct Candidate {
    contact: Contact,
    dist: Distance,
    depth: u32,
    path: u8,
    state: State,
    answered_at: Millis,
    /// Asked a second time after a timeout.
    retried: bool,
}

/// The state of one lookup.
#[derive(Clone, Debug)]
pub(crate) struct Lookup {
    id: LookupId,
    target: Key,
    kind: LookupKind,
    k: usize,
    alpha: usize,
    paths: u8,
    started: Millis,
    /// Every candidate, in arrival order (indexes are stable).
    pool: Vec<Candidate>,
    /// Indexes into `pool` of the kept candidates, closest first (inserting moves 4 bytes per
    /// farther candidate, not whole candidates).
    order: Vec<u32>,
    providers: Vec<ProviderRecord>,
    first_provider: Option<(Millis, u32)>,
    requests: u32,
    failures: u32,
}

impl Lookup {
    /// A lookup of `target` seeded with `seeds` (depth 0), dealt round-robin to `paths` paths.
    pub(crate) fn new(
        id: LookupId,
        target: Key,
        kind: LookupKind,
        (k, alpha, paths): (usize, usize, u8),
        seeds: Vec<Contact>,
        now: Millis,
    ) -> Lookup {
        let mut l = Lookup {
            id,
            target,
            kind,
            k,
            alpha,
            paths: paths.max(1),
            started: now,
            pool: Vec::with_capacity(2 * k),
            order: Vec::with_capacity(2 * k),
            providers: Vec::new(),
            first_provider: None,
            requests: 0,
            failures: 0,
        };
        let mut seeds = seeds;
        seeds.sort_by_key(|c| target.distance(&c.id));
        for (i, c) in seeds.into_iter().enumerate() {
            let path = (i % usize::from(l.paths)) as u8;
            l.add(c, 0, path);
        }
        l
    }

    pub(crate) fn target(&self) -> Key {
        self.target
    }

    pub(crate) fn kind(&self) -> LookupKind {
        self.kind
    }

    /// Most candidates kept: beyond `CAP_PER_K x K x paths`, the farthest not yet asked are
    /// dropped (a lookup asks only the `K` closest that have not failed on each path).
    const CAP_PER_K: usize = 3;

    fn cap(&self) -> usize {
        Self::CAP_PER_K * self.k * usize::from(self.paths)
    }

    /// The kept candidates, closest first.
    fn sorted(&self) -> impl Iterator<Item = &Candidate> + Clone + '_ {
        self.order.iter().map(|&j| &self.pool[j as usize])
    }

    /// Rank in `order` of the candidate at `dist` (Ok) or where it would go (Err).
    fn rank(&self, dist: &Distance) -> Result<usize, usize> {
        self.order
            .binary_search_by_key(dist, |&j| self.pool[j as usize].dist)
    }

    /// Adds a candidate unless already known (on any path) or beyond the cap.
    fn add(&mut self, contact: Contact, depth: u32, path: u8) {
        let dist = self.target.distance(&contact.id);
        let pos = match self.rank(&dist) {
            Ok(_) => return,
            Err(pos) => pos,
        };
        let cap = self.cap();
        if pos >= cap {
            return;
        }
        let c = Candidate {
            contact,
            dist,
            depth,
            path,
            state: State::Waiting,
            answered_at: Millis(0),
            retried: false,
        };
        let Ok(j) = u32::try_from(self.pool.len()) else {
            return;
        };
        self.pool.push(c);
        self.order.insert(pos, j);
        // No waiting candidate lies beyond the cap: only the one just pushed there can.
        let pushed = self.order.get(cap).map(|&j| self.pool[j as usize].state);
        if pushed == Some(State::Waiting) {
            self.order.remove(cap);
        }
    }

    /// The pool index and rank of candidate `id`.
    fn find(&self, id: &Key) -> Option<(usize, usize)> {
        let rank = self.rank(&self.target.distance(id)).ok()?;
        Some((self.order[rank] as usize, rank))
    }

    /// Pool indexes of the `K` closest candidates of `path` that have not failed.
    fn frontier(&self, path: u8) -> impl Iterator<Item = usize> + '_ {
        self.order
            .iter()
            .map(|&j| j as usize)
            .filter(move |&j| self.pool[j].path == path && self.pool[j].state != State::Failed)
            .take(self.k)
    }

    /// The next contact to query, marked in flight; None while every path has `alpha`
    /// unstalled requests in flight or nothing left to ask.
    pub(crate) fn next_query(&mut self) -> Option<Contact> {
        if self.enough_providers() {
            return None;
        }
        for path in 0..self.paths {
            let in_flight = self
                .sorted()
                .filter(|c| c.path == path && c.state == State::InFlight)
                .count();
            if in_flight >= self.alpha {
                continue;
            }
            let next = self
                .frontier(path)
                .find(|&i| self.pool[i].state == State::Waiting);
            if let Some(i) = next {
                self.pool[i].state = State::InFlight;
                self.requests += 1;
                return Some(self.pool[i].contact.clone());
            }
        }
        None
    }

    /// `from` answered with `closer` contacts (already checked: well-formed, not us, not banned)
    /// and `providers`.
    pub(crate) fn on_answer(
        &mut self,
        from: &Key,
        closer: Vec<Contact>,
        providers: Vec<ProviderRecord>,
        now: Millis,
    ) {
        let Some((i, _)) = self.find(from) else {
            return;
        };
        let c = &mut self.pool[i];
        if !matches!(c.state, State::InFlight | State::Stalled) {
            return;
        }
        c.state = State::Answered;
        c.answered_at = now;
        let (depth, path) = (c.depth + 1, c.path);
        for p in providers {
            if self.providers.iter().all(|q| q.node.id != p.node.id) {
                self.first_provider.get_or_insert((now, depth));
                self.providers.push(p);
            }
        }
        for contact in closer {
            self.add(contact, depth, path);
        }
    }

    /// The request to `id` failed (`timed_out`: no answer in time, else refused or broken).
    /// A first timeout puts the candidate back to be asked once more (a lost message); a
    /// second one, or any other failure, drops it.
    pub(crate) fn on_failure(&mut self, id: &Key, timed_out: bool) {
        let Some((i, rank)) = self.find(id) else {
            return;
        };
        let cap = self.cap();
        let c = &mut self.pool[i];
        if !matches!(c.state, State::InFlight | State::Stalled) {
            return;
        }
        self.failures += 1;
        if timed_out && !c.retried && rank < cap {
            c.retried = true;
            c.state = State::Waiting;
        } else {
            c.state = State::Failed;
        }
    }

    /// The request to `id` passed STALL: it frees its slot.
    pub(crate) fn on_stall(&mut self, id: &Key) {
        if let Some((i, _)) = self.find(id)
            && self.pool[i].state == State::InFlight
        {
            self.pool[i].state = State::Stalled;
        }
    }

    fn enough_providers(&self) -> bool {
        matches!(self.kind, LookupKind::Providers { want } if want > 0 && self.providers.len() >= want)
    }

    /// Whether the lookup has its result.
    pub(crate) fn is_done(&self) -> bool {
        self.enough_providers()
            || (0..self.paths).all(|p| {
                self.frontier(p)
                    .all(|i| self.pool[i].state == State::Answered)
            })
    }

    /// The result (meaningful once done).
    pub(crate) fn result(&self, now: Millis) -> LookupResult {
        let answered: Vec<&Candidate> = self
            .sorted()
            .filter(|c| c.state == State::Answered)
            .take(self.k)
            .collect();
        let (first_result_at, hops) = match self.kind {
            LookupKind::Providers { .. } => self.first_provider.unzip(),
            LookupKind::Nodes => answered
                .first()
                .map(|c| (c.answered_at, c.depth + 1))
                .unzip(),
        };
        LookupResult {
            id: self.id,
            target: self.target,
            kind: self.kind,
            closest: answered.iter().map(|c| c.contact.clone()).collect(),
            providers: self.providers.clone(),
            started: self.started,
            finished: now,
            first_result_at,
            hops,
            requests: self.requests,
            failures: self.failures,
        }
    }

    /// Checks the invariants of the module doc.
    pub(crate) fn check(&self) -> Result<(), String> {
        let d = |j: u32| self.pool[j as usize].dist;
        let sorted = self.order.windows(2).all(|w| d(w[0]) < d(w[1]));
        if !sorted {
            return Err(format!(
                "lookup {:?}: candidates unsorted or duplicated",
                self.id
            ));
        }
        let far = self.sorted().skip(self.cap());
        if far.clone().any(|c| c.state == State::Waiting) {
            return Err(format!(
                "lookup {:?}: a waiting candidate beyond the cap",
                self.id
            ));
        }
        if self.sorted().any(|c| c.path >= self.paths) {
            return Err(format!("lookup {:?}: candidate on no path", self.id));
        }
        for path in 0..self.paths {
            let n = self
                .sorted()
                .filter(|c| c.path == path && c.state == State::InFlight)
                .count();
            if n > self.alpha {
                return Err(format!(
                    "lookup {:?}: {n} in flight on path {path}",
                    self.id
                ));
            }
        }
        Ok(())
    }

    /// Ids of the candidates with a request outstanding (in flight or stalled).
    pub(crate) fn outstanding(&self) -> impl Iterator<Item = Key> + '_ {
        self.sorted()
            .filter(|c| matches!(c.state, State::InFlight | State::Stalled))
            .map(|c| c.contact.id)
    }

    /// The path each queried contact was asked on (tests of disjointness).
    #[cfg(test)]
    pub(crate) fn queried_paths(&self) -> Vec<(Key, u8)> {
        self.sorted()
            .filter(|c| c.state != State::Waiting)
            .map(|c| (c.contact.id, c.path))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::testnet::contact;

    /// A universe of `n` nodes where each answers with its `k` closest (a perfect table).
    struct Universe {
        nodes: Vec<Contact>,
        k: usize,
    }

    impl Universe {
        fn new(n: u32, k: usize) -> Universe {
            Universe {
                nodes: (0..n).map(contact).collect(),
                k,
            }
        }
        fn closest(&self, target: &Key, except: Option<&Key>) -> Vec<Contact> {
            let mut v: Vec<Contact> = self
                .nodes
                .iter()
                .filter(|c| Some(&c.id) != except)
                .cloned()
                .collect();
            v.sort_by_key(|c| target.distance(&c.id));
            v.truncate(self.k);
            v
        }
        /// Seeds: a far-away slice of the universe (a node's table far from the target).
        fn seeds(&self, target: &Key) -> Vec<Contact> {
            let mut v = self.nodes.clone();
            v.sort_by_key(|c| std::cmp::Reverse(target.distance(&c.id)));
            v.truncate(self.k);
            v
        }
    }

    fn run(l: &mut Lookup, u: &Universe, dead: &[Key]) -> u32 {
        let mut rounds = 0;
        while !l.is_done() {
            rounds += 1;
            assert!(rounds < 1000, "lookup does not terminate");
            let mut asked = Vec::new();
            while let Some(c) = l.next_query() {
                asked.push(c);
            }
            assert!(!asked.is_empty(), "stuck: not done and nothing to ask");
            l.check().unwrap();
            for c in asked {
                if dead.contains(&c.id) {
                    l.on_failure(&c.id, false);
                } else {
                    let closer = u.closest(&l.target(), Some(&c.id));
                    l.on_answer(&c.id, closer, Vec::new(), Millis(rounds.into()));
                }
            }
        }
        rounds
    }

    #[test]
    fn terminates_with_the_true_closest() {
        let u = Universe::new(500, 10);
        for t in 0..10 {
            let target = contact(9000 + t).id;
            let mut l = Lookup::new(
                LookupId(t.into()),
                target,
                LookupKind::Nodes,
                (10, 3, 1),
                u.seeds(&target),
                Millis(0),
            );
            run(&mut l, &u, &[]);
            let r = l.result(Millis(99));
            let want: Vec<Key> = u.closest(&target, None).iter().map(|c| c.id).collect();
            let got: Vec<Key> = r.closest.iter().map(|c| c.id).collect();
            assert_eq!(got, want);
            assert_eq!(r.failures, 0);
            assert!(
                r.hops.is_some_and(|h| h >= 2),
                "seeds were far: {:?}",
                r.hops
            );
        }
    }

    #[test]
    fn failures_are_skipped_and_counted() {
        let u = Universe::new(300, 8);
        let target = contact(7777).id;
        let dead: Vec<Key> = u.closest(&target, None)[..3].iter().map(|c| c.id).collect();
        let mut l = Lookup::new(
            LookupId(0),
            target,
            LookupKind::Nodes,
            (8, 3, 1),
            u.seeds(&target),
            Millis(0),
        );
        run(&mut l, &u, &dead);
        let r = l.result(Millis(1));
        assert!(r.failures >= 3);
        assert!(r.closest.iter().all(|c| !dead.contains(&c.id)));
        assert_eq!(r.closest.len(), 8);
    }

    #[test]
    fn a_timeout_is_retried_once() {
        let u = Universe::new(50, 5);
        let target = contact(4242).id;
        let mut l = Lookup::new(
            LookupId(0),
            target,
            LookupKind::Nodes,
            (5, 1, 1),
            u.seeds(&target),
            Millis(0),
        );
        let first = l.next_query().expect("a query");
        l.on_failure(&first.id, true);
        assert_eq!(l.next_query().map(|c| c.id), Some(first.id), "asked again");
        l.on_failure(&first.id, true);
        let next = l.next_query().expect("another candidate");
        assert_ne!(next.id, first.id, "dropped after a second timeout");
        l.on_failure(&next.id, false);
        assert_ne!(
            l.next_query().map(|c| c.id),
            Some(next.id),
            "a refusal is not retried"
        );
        assert_eq!(l.result(Millis(1)).failures, 3);
    }

    #[test]
    fn a_stalled_query_frees_its_slot() {
        let u = Universe::new(50, 5);
        let target = contact(1234).id;
        let mut l = Lookup::new(
            LookupId(0),
            target,
            LookupKind::Nodes,
            (5, 1, 1),
            u.seeds(&target),
            Millis(0),
        );
        let first = l.next_query().expect("a query");
        assert!(l.next_query().is_none(), "alpha = 1");
        l.on_stall(&first.id);
        let second = l.next_query().expect("the stalled query freed its slot");
        assert_ne!(first.id, second.id);
        // The stalled answer still counts.
        l.on_answer(&first.id, u.closest(&target, None), Vec::new(), Millis(5));
        assert!(l.result(Millis(6)).closest.iter().any(|c| c.id == first.id));
        l.check().unwrap();
    }

    #[test]
    fn disjoint_paths_ask_disjoint_contacts() {
        let u = Universe::new(400, 8);
        let target = contact(4321).id;
        let seeds = u.seeds(&target);
        let mut l = Lookup::new(
            LookupId(0),
            target,
            LookupKind::Nodes,
            (8, 2, 3),
            seeds.clone(),
            Millis(0),
        );
        // Every answer names the same closest contacts: only the path that learns a contact
        // first may ask it.
        run(&mut l, &u, &[]);
        let queried = l.queried_paths();
        let mut ids: Vec<Key> = queried.iter().map(|q| q.0).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), queried.len(), "a contact asked on two paths");
        for p in 0..3u8 {
            assert!(queried.iter().any(|q| q.1 == p), "path {p} asked nobody");
        }
        // The seeds were dealt round-robin by distance.
        let mut sorted = seeds;
        sorted.sort_by_key(|c| target.distance(&c.id));
        for (i, c) in sorted.iter().enumerate() {
            let path = queried.iter().find(|q| q.0 == c.id).map(|q| q.1);
            assert!(path.is_none() || path == Some((i % 3) as u8));
        }
        let got: Vec<Key> = l.result(Millis(1)).closest.iter().map(|c| c.id).collect();
        let want: Vec<Key> = u.closest(&target, None).iter().map(|c| c.id).collect();
        assert_eq!(got, want, "the union holds the true closest");
    }

    #[test]
    fn providers_end_the_lookup_early() {
        let u = Universe::new(100, 6);
        let target = contact(55).id;
        let mut l = Lookup::new(
            LookupId(0),
            target,
            LookupKind::Providers { want: 1 },
            (6, 3, 1),
            u.seeds(&target),
            Millis(0),
        );
        let c = l.next_query().expect("query");
        let rec = ProviderRecord {
            node: contact(3),
            age_s: 0,
        };
        l.on_answer(&c.id, Vec::new(), vec![rec.clone(), rec], Millis(7));
        assert!(l.is_done());
        assert!(l.next_query().is_none());
        let r = l.result(Millis(8));
        assert_eq!(r.providers.len(), 1, "one record per provider");
        assert_eq!(r.first_result_at, Some(Millis(7)));
        assert_eq!(r.hops, Some(1), "a seed (depth 0) gave it");
    }
}
