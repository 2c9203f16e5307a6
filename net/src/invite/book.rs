//! The inviter's pending invitations and the limits on failed join attempts (crypto.md,
//! "Invitations"). Pure bookkeeping: no I/O, the caller passes the time.
//!
//! Invariants: an invitation leaves the book only when it expires, when a join that holds it
//! completes ([`InviteBook::consume`]), or when it has seen `max_failures` failed attempts; an
//! invitation held by one join cannot be claimed by another until released.
use super::{PendingInvite, join_proof};
use crate::DeviceId;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

/// Limits on failed join attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinLimits {
    /// Delay after an address's first failed attempt; doubled per further failure.
    pub base_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
    /// Failed attempts after which a pending invitation is withdrawn.
    pub max_failures: u32,
}

impl Default for JoinLimits {
    fn default() -> Self {
        JoinLimits {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_failures: 10,
        }
    }
}

/// An address is forgotten this long after its last failed attempt.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// Most addresses remembered; beyond it the oldest are dropped first.
const MAX_ADDRS: usize = 4096;

struct Slot {
    token: u64,
    invite: PendingInvite,
    held: bool,
    failures: u32,
}

struct AddrState {
    failures: u32,
    last_failure: Instant,
    blocked_until: Instant,
}

/// Pending invitations and failed attempts per address.
#[derive(Default)]
pub(crate) struct InviteBook {
    slots: Vec<Slot>,
    next_token: u64,
    addrs: HashMap<IpAddr, AddrState>,
    limits: JoinLimits,
}

/// Why a proof claimed nothing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unclaimed {
    /// It matches no pending invitation: a failed attempt.
    NoMatch,
    /// It matches an invitation another join holds: not a failure, try again later.
    Busy,
}

/// What a failed attempt did to the book.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The address's failed attempts so far.
    pub(crate) from_addr: u32,
    /// How long the address now waits.
    pub(crate) delay: Duration,
    /// Invitations withdrawn by this failure.
    pub(crate) withdrawn: usize,
}

impl InviteBook {
    /// Replaces the limits (tests, tuning).
    pub(crate) fn set_limits(&mut self, limits: JoinLimits) {
        self.limits = limits;
    }
    /// Adds an invitation.
    pub(crate) fn add(&mut self, invite: PendingInvite, now: SystemTime) {
        self.expire(now);
        self.next_token += 1;
        self.slots.push(Slot {
            token: self.next_token,
            invite,
            held: false,
            failures: 0,
        });
    }
    /// Whether any invitation is pending (the TLS gate lets unknown devices in only then).
    pub(crate) fn is_open(&self, now: SystemTime) -> bool {
        self.slots.iter().any(|s| s.invite.expiry > now)
    }
    /// How long `ip` must still wait after its failed attempts (None: it may try now).
    pub(crate) fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let st = self.addrs.get(&ip)?;
        (st.blocked_until > now).then(|| st.blocked_until - now)
    }
    /// Holds the unexpired invitation that `proof` (by `joiner`) matches; returns its token
    /// and a copy. Every proof is compared, in constant time each.
    pub(crate) fn claim(
        &mut self,
        proof: &[u8; 32],
        joiner: &DeviceId,
        now: SystemTime,
    ) -> Result<(u64, PendingInvite), Unclaimed> {
        self.expire(now);
        let want = blake3::Hash::from(*proof);
        let mut hit = None;
        for (i, s) in self.slots.iter().enumerate() {
            // blake3::Hash compares in constant time.
            if blake3::Hash::from(join_proof(&s.invite.secret, joiner)) == want {
                hit = Some(i);
            }
        }
        let slot = &mut self.slots[hit.ok_or(Unclaimed::NoMatch)?];
        if slot.held {
            return Err(Unclaimed::Busy);
        }
        slot.held = true;
        Ok((slot.token, slot.invite.clone()))
    }
    /// Releases a held invitation: it is pending again (if not expired meanwhile).
    pub(crate) fn release(&mut self, token: u64) {
        if let Some(s) = self.slots.iter_mut().find(|s| s.token == token) {
            s.held = false;
        }
    }
    /// Removes a held invitation for good (its join completed). False if it is gone.
    pub(crate) fn consume(&mut self, token: u64) -> bool {
        let before = self.slots.len();
        self.slots.retain(|s| s.token != token);
        self.slots.len() < before
    }
    /// Records a failed attempt from `ip`: the address waits, every pending invitation counts
    /// it and those at the cap are withdrawn (a held one too: its join then fails to commit).
    pub(crate) fn failed(&mut self, ip: IpAddr, now: Instant, wall: SystemTime) -> Failure {
        self.expire(wall);
        self.forget_addrs(now);
        let st = self.addrs.entry(ip).or_insert(AddrState {
            failures: 0,
            last_failure: now,
            blocked_until: now,
        });
        st.failures = st.failures.saturating_add(1);
        st.last_failure = now;
        let doublings = st.failures.saturating_sub(1).min(30);
        let delay = self
            .limits
            .base_delay
            .saturating_mul(1 << doublings)
            .min(self.limits.max_delay);
        st.blocked_until = now + delay;
        let from_addr = st.failures;
        let before = self.slots.len();
        let cap = self.limits.max_failures;
        for s in &mut self.slots {
            s.failures = s.failures.saturating_add(1);
        }
        self.slots.retain(|s| s.failures < cap);
        Failure {
            from_addr,
            delay,
            withdrawn: before - self.slots.len(),
        }
    }
    fn expire(&mut self, now: SystemTime) {
        self.slots.retain(|s| s.invite.expiry > now);
    }
    fn forget_addrs(&mut self, now: Instant) {
        self.addrs
            .retain(|_, st| now.duration_since(st.last_failure) < FORGET_AFTER);
        if self.addrs.len() >= MAX_ADDRS {
            let mut ages: Vec<Instant> = self.addrs.values().map(|s| s.last_failure).collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() / 2];
            self.addrs.retain(|_, st| st.last_failure > cutoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;

    fn invite(secret: u8, valid: Duration) -> PendingInvite {
        PendingInvite {
            secret: [secret; 32],
            k_wrap: [0; 32],
            expiry: SystemTime::now() + valid,
            role: Role::Device,
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_held_invitation_is_claimed_once_and_released_or_consumed() {
        let mut b = InviteBook::default();
        let now = SystemTime::now();
        b.add(invite(1, HOUR), now);
        let j = DeviceId([9; 32]);
        let proof = join_proof(&[1; 32], &j);
        let (t, inv) = b.claim(&proof, &j, now).unwrap();
        assert_eq!(inv.secret, [1; 32]);
        assert_eq!(b.claim(&proof, &j, now).err(), Some(Unclaimed::Busy));
        b.release(t);
        let (t2, _) = b.claim(&proof, &j, now).unwrap();
        assert!(b.consume(t2));
        assert_eq!(b.claim(&proof, &j, now).err(), Some(Unclaimed::NoMatch));
        assert!(!b.is_open(now));
        // A proof for another joiner or secret matches nothing.
        b.add(invite(2, HOUR), now);
        let other = join_proof(&[2; 32], &DeviceId([8; 32]));
        assert_eq!(b.claim(&other, &j, now).err(), Some(Unclaimed::NoMatch));
        let wrong = join_proof(&[3; 32], &j);
        assert_eq!(b.claim(&wrong, &j, now).err(), Some(Unclaimed::NoMatch));
    }

    #[test]
    fn expired_invitations_match_nothing() {
        let mut b = InviteBook::default();
        let now = SystemTime::now();
        b.add(invite(1, Duration::from_secs(1)), now);
        let j = DeviceId([9; 32]);
        let later = now + Duration::from_secs(2);
        assert!(!b.is_open(later));
        assert!(b.claim(&join_proof(&[1; 32], &j), &j, later).is_err());
    }

    #[test]
    fn failures_delay_the_address_exponentially_up_to_the_cap() {
        let mut b = InviteBook::default();
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        let other: IpAddr = "127.0.0.8".parse().unwrap();
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let delays: Vec<u64> = (0..9)
            .map(|_| b.failed(ip, t0, wall).delay.as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.blocked(ip, t0), Some(Duration::from_secs(60)));
        assert_eq!(b.blocked(ip, t0 + Duration::from_secs(60)), None);
        assert_eq!(b.blocked(other, t0), None);
        // Forgotten after a quiet while: the next failure starts again at the base delay.
        let much_later = t0 + FORGET_AFTER + Duration::from_secs(1);
        assert_eq!(b.failed(ip, much_later, wall).delay, Duration::from_secs(1));
    }

    #[test]
    fn an_invitation_is_withdrawn_after_max_failures() {
        let mut b = InviteBook::default();
        let now = SystemTime::now();
        let t0 = Instant::now();
        b.add(invite(1, HOUR), now);
        for i in 0..9u8 {
            let f = b.failed(IpAddr::from([127, 0, 1, i]), t0, now);
            assert_eq!(f.withdrawn, 0);
        }
        // One added late has seen fewer failures and stays.
        b.add(invite(2, HOUR), now);
        let f = b.failed(IpAddr::from([127, 0, 2, 0]), t0, now);
        assert_eq!(f.withdrawn, 1);
        let j = DeviceId([9; 32]);
        assert!(b.claim(&join_proof(&[1; 32], &j), &j, now).is_err());
        assert!(b.claim(&join_proof(&[2; 32], &j), &j, now).is_ok());
    }
}
