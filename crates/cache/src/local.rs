//! In-process key/value store with per-key expiry, used when no Redis is configured.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub(crate) struct Local {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    values: HashMap<String, (Vec<u8>, Option<Instant>)>,
    counters: HashMap<String, (u64, Instant)>,
    sets: HashMap<String, HashSet<String>>,
    ops: u64,
}

impl Inner {
    /// Expired entries are dropped lazily on read and swept every few thousand operations so a
    /// long-running single instance does not grow without bound.
    fn maybe_sweep(&mut self) {
        self.ops += 1;
        if !self.ops.is_multiple_of(4096) {
            return;
        }
        let now = Instant::now();
        self.values
            .retain(|_, (_, exp)| exp.is_none_or(|e| e > now));
        self.counters.retain(|_, (_, exp)| *exp > now);
    }
}

impl Local {
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.maybe_sweep();
        match g.values.get(key) {
            Some((_, Some(exp))) if *exp <= Instant::now() => {
                g.values.remove(key);
                None
            }
            Some((v, _)) => Some(v.clone()),
            None => None,
        }
    }

    pub fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.maybe_sweep();
        g.values
            .insert(key.to_owned(), (value, ttl.map(|t| Instant::now() + t)));
    }

    pub fn del(&self, key: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.values.remove(key);
        g.counters.remove(key);
        g.sets.remove(key);
    }

    pub fn incr_window(&self, key: &str, window: Duration) -> (u64, Duration) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.maybe_sweep();
        let now = Instant::now();
        let entry = g
            .counters
            .entry(key.to_owned())
            .or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        (entry.0, entry.1.saturating_duration_since(now))
    }

    /// Takes back one hit of a live window.
    pub fn decr_window(&self, key: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = g.counters.get_mut(key) {
            if e.1 > Instant::now() {
                e.0 = e.0.saturating_sub(1);
            }
        }
    }

    /// Stores `value` (as decimal text) unless the stored number is at least as large.
    pub fn set_max(&self, key: &str, value: i64, ttl: Duration) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let current = match g.values.get(key) {
            Some((v, exp)) if exp.is_none_or(|e| e > now) => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok()),
            _ => None,
        };
        if current.is_none_or(|c| c < value) {
            g.values.insert(
                key.to_owned(),
                (value.to_string().into_bytes(), Some(now + ttl)),
            );
        }
    }

    pub fn incr(&self, key: &str) -> i64 {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let far = now + Duration::from_secs(10 * 365 * 24 * 3600);
        let entry = g.counters.entry(key.to_owned()).or_insert((0, far));
        entry.0 += 1;
        entry.0 as i64
    }

    pub fn sadd(&self, key: &str, member: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.sets
            .entry(key.to_owned())
            .or_default()
            .insert(member.to_owned());
    }

    pub fn srem(&self, key: &str, member: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = g.sets.get_mut(key) {
            s.remove(member);
        }
    }

    pub fn take_set(&self, key: &str) -> Vec<String> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.sets
            .remove(key)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default()
    }
}
