//! The discrete-event queue: events ordered by (time, sequence number).
//!
//! Invariants: events with equal times pop in the order they were pushed (the sequence
//! number breaks ties, so the order never depends on the heap's layout); the popped time
//! never goes back; nothing is scheduled before the current time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A min-queue of events in simulated milliseconds. The heap orders small keys
/// (time, sequence number, slot); the events themselves sit still in a slab, so sifting
/// the heap never moves them.
pub(crate) struct Queue<E> {
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    seq: u64,
    now: u64,
}

impl<E> Queue<E> {
    pub(crate) fn new() -> Queue<E> {
        Queue {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            seq: 0,
            now: 0,
        }
    }

    /// The time of the last popped event.
    pub(crate) fn now(&self) -> u64 {
        self.now
    }

    /// Schedules `event` at `at`, or now if `at` is in the past.
    pub(crate) fn push(&mut self, at: u64, event: E) {
        let at = at.max(self.now);
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                (self.slots.len() - 1) as u32
            }
        };
        // `seq` is unique, so `slot` never decides the order.
        self.heap.push(Reverse((at, self.seq, slot)));
        self.seq += 1;
    }

    pub(crate) fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The next event and its time; advances the clock.
    pub(crate) fn pop(&mut self) -> Option<(u64, E)> {
        let Reverse((at, _, slot)) = self.heap.pop()?;
        debug_assert!(at >= self.now, "queue time went back");
        self.now = at;
        self.free.push(slot);
        let event = self.slots[slot as usize].take()?;
        Some((at, event))
    }

    /// Moves the clock to `at` when no event comes before it (an idle stretch).
    pub(crate) fn advance(&mut self, at: u64) {
        if self.peek_time().is_none_or(|t| t >= at) {
            self.now = self.now.max(at);
        }
    }
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Queue::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_ties_in_push_order() {
        let mut q = Queue::new();
        q.push(5, 'a');
        q.push(3, 'b');
        q.push(5, 'c');
        q.push(3, 'd');
        let order: Vec<char> = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, vec!['b', 'd', 'a', 'c']);
        q.push(1, 'e');
        assert_eq!(
            q.pop(),
            Some((5, 'e')),
            "an event in the past is scheduled now"
        );
    }
}
