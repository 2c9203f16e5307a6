//! The connections of a swarm node (docs/protocol.md, "Connections and admission"): at most
//! `cap` in all (the least recently used is closed to make room), none kept idle past `idle`:
//! a node keeps open only the connections it is using. Two connections to one peer (both
//! sides dialled at once) may coexist; requests use the most recently used one and the other
//! closes when idle, so no request in flight loses its connection to a replacement.
use crate::dht::Key;
use crate::proto::code;
use parking_lot::Mutex;
use std::collections::HashMap;
use tokio::time::{Duration, Instant};

struct Entry {
    peer: Key,
    conn: quinn::Connection,
    last_used: Instant,
}

/// The live, admitted connections by `stable_id`.
pub(crate) struct Conns {
    map: Mutex<HashMap<usize, Entry>>,
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

    /// The most recently used open connection to `peer`, marked as used now.
    pub(crate) fn get(&self, peer: &Key) -> Option<quinn::Connection> {
        let mut map = self.map.lock();
        map.retain(|_, e| e.conn.close_reason().is_none());
        let e = map
            .values_mut()
            .filter(|e| e.peer == *peer)
            .max_by_key(|e| (e.last_used, e.conn.stable_id()))?;
        e.last_used = Instant::now();
        Some(e.conn.clone())
    }

    /// Marks `conn` as used now (a request arrived on it).
    pub(crate) fn touch(&self, conn: &quinn::Connection) {
        if let Some(e) = self.map.lock().get_mut(&conn.stable_id()) {
            e.last_used = Instant::now();
        }
    }

    /// Registers an admitted connection; the least recently used others are closed (`DONE`)
    /// while the table is over its cap.
    pub(crate) fn insert(&self, peer: Key, conn: quinn::Connection) {
        let id = conn.stable_id();
        let mut closing = Vec::new();
        {
            let mut map = self.map.lock();
            map.insert(
                id,
                Entry {
                    peer,
                    conn,
                    last_used: Instant::now(),
                },
            );
            while map.len() > self.cap {
                let Some(lru) = map
                    .iter()
                    .filter(|(k, _)| **k != id)
                    .min_by_key(|(k, e)| (e.last_used, **k))
                    .map(|(k, _)| *k)
                else {
                    break;
                };
                closing.extend(map.remove(&lru).map(|e| e.conn));
            }
        }
        for c in closing {
            c.close(code::DONE.into(), b"too many connections");
        }
    }

    /// Forgets `conn` (it closed).
    pub(crate) fn remove(&self, conn: &quinn::Connection) {
        self.map.lock().remove(&conn.stable_id());
    }

    /// Closes every connection to `peer` with `code`; returns how many.
    pub(crate) fn close_peer(&self, peer: &Key, code: u32, why: &[u8]) -> usize {
        let gone: Vec<quinn::Connection> = {
            let mut map = self.map.lock();
            let ids: Vec<usize> = map
                .iter()
                .filter(|(_, e)| e.peer == *peer)
                .map(|(k, _)| *k)
                .collect();
            ids.iter()
                .filter_map(|k| map.remove(k))
                .map(|e| e.conn)
                .collect()
        };
        for c in &gone {
            c.close(code.into(), why);
        }
        gone.len()
    }

    /// Closes every connection unused for `idle`; returns how many.
    pub(crate) fn close_idle(&self) -> usize {
        let now = Instant::now();
        let idle: Vec<quinn::Connection> = {
            let mut map = self.map.lock();
            let old: Vec<usize> = map
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
