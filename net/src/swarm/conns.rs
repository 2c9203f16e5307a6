//! The connections of a swarm node (docs/protocol.md, "Connections and admission"): at most one
//! in use per peer, at most `cap` in all (the least recently used is closed to make room), and
//! none kept idle past `idle`: a node keeps open only the connections it is using.
use crate::dht::Key;
use crate::proto::code;
use parking_lot::Mutex;
use std::collections::HashMap;
use tokio::time::{Duration, Instant};

struct Entry {
    conn: quinn::Connection,
    last_used: Instant,
}

/// The table of live, admitted connections by peer id.
pub(crate) struct Conns {
    map: Mutex<HashMap<Key, Entry>>,
    cap: usize,
    idle: Duration,
}

impl Conns {
    pub(crate) fn new(cap: usize, idle: Duration) -> Self {
        Conns {
            map: Mutex::new(HashMap::new()),
            cap: cap.max(1),
            idle,
        }
    }

    /// The open connection to `id`, marked as used now.
    pub(crate) fn get(&self, id: &Key) -> Option<quinn::Connection> {
        let mut map = self.map.lock();
        let e = map.get_mut(id)?;
        if e.conn.close_reason().is_some() {
            map.remove(id);
            return None;
        }
        e.last_used = Instant::now();
        Some(e.conn.clone())
    }

    /// Marks the connection to `id` as used now (a request arrived on it).
    pub(crate) fn touch(&self, id: &Key) {
        if let Some(e) = self.map.lock().get_mut(id) {
            e.last_used = Instant::now();
        }
    }

    /// Registers an admitted connection; a previous one to the same peer is closed (`DONE`),
    /// and so is the least recently used one when the table is full.
    pub(crate) fn insert(&self, id: Key, conn: quinn::Connection) {
        let mut closing = Vec::new();
        {
            let mut map = self.map.lock();
            let entry = Entry {
                conn,
                last_used: Instant::now(),
            };
            if let Some(old) = map.insert(id, entry) {
                closing.push(old.conn);
            }
            while map.len() > self.cap {
                let Some(lru) = map
                    .iter()
                    .filter(|(k, _)| **k != id)
                    .min_by_key(|(k, e)| (e.last_used, **k))
                    .map(|(k, _)| *k)
                else {
                    break;
                };
                if let Some(e) = map.remove(&lru) {
                    closing.push(e.conn);
                }
            }
        }
        for c in closing {
            c.close(code::DONE.into(), b"replaced");
        }
    }

    /// Forgets `conn` if it is the one registered for `id` (it closed).
    pub(crate) fn remove(&self, id: &Key, conn: &quinn::Connection) {
        let mut map = self.map.lock();
        if map.get(id).is_some_and(|e| e.conn.stable_id() == conn.stable_id()) {
            map.remove(id);
        }
    }

    /// Closes every connection unused for `idle`; returns how many.
    pub(crate) fn close_idle(&self) -> usize {
        let now = Instant::now();
        let idle: Vec<quinn::Connection> = {
            let mut map = self.map.lock();
            let old: Vec<Key> = map
                .iter()
                .filter(|(_, e)| now.duration_since(e.last_used) >= self.idle)
                .map(|(k, _)| *k)
                .collect();
            old.iter()
                .filter_map(|k| map.remove(k))
                .map(|e| e.conn)
                .collect()
        };
        for c in &idle {
            c.close(code::DONE.into(), b"idle");
        }
        idle.len()
    }

    /// Open connections.
    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Closes everything (shutdown).
    pub(crate) fn close_all(&self) {
        let all: Vec<Entry> = self.map.lock().drain().map(|(_, e)| e).collect();
        for e in all {
            e.conn.close(code::DONE.into(), b"shutdown");
        }
    }
}
