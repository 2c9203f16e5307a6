//! Bookkeeping of the requests a node sent: what each is for and its timers.
//!
//! Invariants: every pending request has exactly one timeout timer (at sent + timeout) and at
//! most one stall timer (lookup requests); every timer names a pending request; a request
//! leaves the table exactly once ([`Requests::take`]).
use super::contact::Peer;
use super::key::Key;
use super::lookup::LookupId;
use super::msg::Request;
use super::msg::RequestKind;
use super::time::Millis;
use std::collections::{BTreeMap, BTreeSet};

/// Id of one request the core sent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct RequestId(pub u64);

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

/// Why a request was sent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Purpose {
    /// A query of a lookup.
    Lookup(LookupId),
    /// A ping of a bootstrap address.
    Bootstrap,
    /// A ping of a full bucket's head, deciding an eviction.
    EvictPing { bucket: u8 },
    /// An AddProvider of our announcement of `key`.
    Announce { key: Key },
}

/// A timer of a request.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum Timer {
    Stall,
    Timeout,
}

/// A request without its end yet.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    /// The id it is pinned to (None: a bootstrap address).
    pub(crate) to: Option<Key>,
    pub(crate) kind: RequestKind,
    pub(crate) purpose: Purpose,
    pub(crate) sent: Millis,
    stall_at: Option<Millis>,
}

/// The pending requests of a node.
#[derive(Clone, Debug)]
pub(crate) struct Requests {
    next: u64,
    timeout: Millis,
    pending: BTreeMap<RequestId, Pending>,
    timers: BTreeSet<(Millis, RequestId, Timer)>,
}

impl Requests {
    pub(crate) fn new(timeout: Millis) -> Requests {
        Requests {
            next: 0,
            timeout,
            pending: BTreeMap::new(),
            timers: BTreeSet::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// Registers a request sent at `now`; `stall`: its stall delay (lookup queries).
    pub(crate) fn start(
        &mut self,
        now: Millis,
        to: Option<Key>,
        kind: RequestKind,
        purpose: Purpose,
        stall: Option<Millis>,
    ) -> RequestId {
        let id = RequestId(self.next);
        self.next += 1;
        let stall_at = stall.map(|s| now.plus(s));
        self.timers
            .insert((now.plus(self.timeout), id, Timer::Timeout));
        if let Some(at) = stall_at {
            self.timers.insert((at, id, Timer::Stall));
        }
        let p = Pending {
            to,
            kind,
            purpose,
            sent: now,
            stall_at,
        };
        self.pending.insert(id, p);
        id
    }

    /// Ends request `id`: removes it and its timers.
    pub(crate) fn take(&mut self, id: RequestId) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        self.timers
            .remove(&(p.sent.plus(self.timeout), id, Timer::Timeout));
        if let Some(at) = p.stall_at {
            self.timers.remove(&(at, id, Timer::Stall));
        }
        Some(p)
    }

    pub(crate) fn get(&self, id: RequestId) -> Option<&Pending> {
        self.pending.get(&id)
    }

    /// When the next timer fires.
    pub(crate) fn next_timer(&self) -> Option<Millis> {
        self.timers.first().map(|t| t.0)
    }

    /// The next timer due at `now`, removed (a timeout's request stays pending: `take` it).
    pub(crate) fn pop_due(&mut self, now: Millis) -> Option<(RequestId, Timer)> {
        let &(at, id, timer) = self.timers.first()?;
        if at > now {
            return None;
        }
        self.timers.pop_first();
        if timer == Timer::Stall
            && let Some(p) = self.pending.get_mut(&id)
        {
            p.stall_at = None;
        }
        Some((id, timer))
    }

    /// The pending requests, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (RequestId, &Pending)> {
        self.pending.iter().map(|(id, p)| (*id, p))
    }

    /// Checks the invariants of the module doc.
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut expected = 0;
        for (id, p) in &self.pending {
            if !self
                .timers
                .contains(&(p.sent.plus(self.timeout), *id, Timer::Timeout))
            {
                return Err(format!("request {id:?} has no timeout"));
            }
            expected += 1;
            if let Some(at) = p.stall_at {
                if !self.timers.contains(&(at, *id, Timer::Stall)) {
                    return Err(format!("request {id:?} lost its stall timer"));
                }
                expected += 1;
            }
        }
        if expected != self.timers.len() {
            return Err(format!(
                "{} request timers for {} expected",
                self.timers.len(),
                expected
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_order_and_end_with_their_request() {
        let mut r = Requests::new(Millis(2000));
        let lookup = Purpose::Lookup(LookupId(0));
        let a = r.start(Millis(0), None, RequestKind::Ping, Purpose::Bootstrap, None);
        let b = r.start(
            Millis(10),
            None,
            RequestKind::FindNode,
            lookup,
            Some(Millis(300)),
        );
        r.check().unwrap();
        assert_eq!(r.next_timer(), Some(Millis(310)), "b's stall first");
        assert_eq!(r.pop_due(Millis(309)), None);
        assert_eq!(r.pop_due(Millis(310)), Some((b, Timer::Stall)));
        r.check().unwrap();
        assert_eq!(r.pop_due(Millis(2000)), Some((a, Timer::Timeout)));
        assert!(r.take(a).is_some(), "a timed-out request is taken once");
        assert!(r.take(a).is_none());
        assert!(r.take(b).is_some(), "an answered request drops its timers");
        assert_eq!(r.next_timer(), None);
        assert_eq!(r.len(), 0);
        r.check().unwrap();
    }
}
