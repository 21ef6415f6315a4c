//! Blocks of rate-limit hits reserved from Redis and handed out by this instance.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::WindowCount;

struct Lease {
    next: u64,
    last: u64,
    until: Instant,
}

#[derive(Default)]
pub(crate) struct Leases {
    map: Mutex<HashMap<String, Lease>>,
}

/// Past this many buckets, expired ones are swept (clients that went away).
const SWEEP_AT: usize = 10_000;

impl Leases {
    /// The next hit number of a live block for `key`, if any.
    pub fn take(&self, key: &str) -> Option<WindowCount> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let lease = map.get_mut(key)?;
        if lease.until <= now || lease.next > lease.last {
            map.remove(key);
            return None;
        }
        let count = lease.next;
        lease.next += 1;
        let left = lease.until - now;
        Some(WindowCount {
            count,
            reset_secs: left.as_secs_f64().ceil() as u64,
            reset_ms: left.as_millis() as u64,
        })
    }

    /// Holds hit numbers `next..=last` of the current window, which ends in `reset_ms`.
    pub fn put(&self, key: &str, next: u64, last: u64, reset_ms: u64) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if map.len() >= SWEEP_AT {
            map.retain(|_, l| l.until > now);
        }
        if next <= last {
            let until = now + Duration::from_millis(reset_ms);
            map.insert(key.to_owned(), Lease { next, last, until });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_each_number_once_then_runs_dry() {
        let l = Leases::default();
        l.put("k", 5, 7, 60_000);
        let got: Vec<u64> = std::iter::from_fn(|| l.take("k").map(|c| c.count)).collect();
        assert_eq!(got, vec![5, 6, 7]);
        assert!(l.take("other").is_none());
        l.put("gone", 1, 3, 0);
        assert!(
            l.take("gone").is_none(),
            "an expired window hands out nothing"
        );
    }
}
