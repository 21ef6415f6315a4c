//! Per-instance rate-limit counters, used while Redis cannot be asked so that limits fall back
//! to each instance counting on its own instead of switching off.
//!
//! Bounded: an outage under a flood of distinct keys (one per guessed email) must not grow the
//! process without limit. When every slot holds a live window, a new key cannot be counted and
//! the caller decides (the login refuses with 503 rather than check a password unthrottled).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Distinct buckets one instance tracks during an outage (keys are short hashes: a few MB).
pub(crate) const DEFAULT_CAPACITY: usize = 100_000;

pub(crate) struct Counters {
    capacity: usize,
    inner: Mutex<HashMap<String, (u64, Instant)>>,
    /// Unix second of the last outage warning, so an outage logs a line every few seconds, not
    /// one per request.
    warned_at: AtomicU64,
}

/// No room for another bucket.
#[derive(Debug)]
pub(crate) struct Full;

impl Counters {
    pub(crate) fn new(capacity: usize) -> Self {
        Counters {
            capacity,
            inner: Mutex::new(HashMap::new()),
            warned_at: AtomicU64::new(0),
        }
    }

    pub(crate) fn warn_outage(&self, error: &dyn std::fmt::Display) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let last = self.warned_at.load(Ordering::Relaxed);
        if now >= last + 10
            && self
                .warned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(%error, "shared rate limits unavailable; counting per instance");
        }
    }

    /// Counts `by` hits in the fixed window `window` of `key`: (count, time left).
    pub(crate) fn incr(
        &self,
        key: &str,
        window: Duration,
        by: u64,
    ) -> Result<(u64, Duration), Full> {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if !map.contains_key(key) && map.len() >= self.capacity {
            map.retain(|_, (_, end)| *end > now);
            if map.len() >= self.capacity {
                return Err(Full);
            }
        }
        let entry = map.entry(key.to_owned()).or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += by;
        Ok((entry.0, entry.1.saturating_duration_since(now)))
    }

    /// Takes back one hit of a live window (a reservation that turned out not to count).
    pub(crate) fn decr(&self, key: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(key) {
            if e.1 > Instant::now() {
                e.0 = e.0.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_window_and_refuses_new_keys_when_full() {
        let c = Counters::new(2);
        let w = Duration::from_secs(60);
        assert_eq!(c.incr("a", w, 1).unwrap().0, 1);
        assert_eq!(c.incr("a", w, 1).unwrap().0, 2);
        c.decr("a");
        assert_eq!(c.incr("a", w, 1).unwrap().0, 2);
        assert_eq!(c.incr("b", w, 1).unwrap().0, 1);
        assert!(
            c.incr("c", w, 1).is_err(),
            "no room for a third live bucket"
        );
        // Known keys are still counted.
        assert_eq!(c.incr("b", w, 1).unwrap().0, 2);
        // Expired windows make room.
        let short = Counters::new(1);
        short.incr("x", Duration::from_millis(1), 1).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(short.incr("y", w, 1).unwrap().0, 1);
    }
}
