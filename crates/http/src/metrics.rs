//! In-process request statistics for `/health/detailed` and `/health/metrics`, plus the
//! Prometheus recorder behind `/metrics`.
//!
//! Latency is kept in a log-scale histogram (about 8 % per bucket) of atomics: constant memory,
//! no lock on the request path, percentiles good to a bucket.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

const BUCKETS: usize = 200;
/// Bucket i covers latencies up to 10 µs × GROWTH^i; 200 buckets reach past 10 minutes.
const GROWTH: f64 = 1.08;

pub struct Metrics {
    pub in_flight: AtomicI64,
    pub total: AtomicU64,
    pub errors_5xx: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub ws_connections: AtomicI64,
    latency: Vec<AtomicU64>,
    /// Per-second (epoch second, requests, 5xx) ring for the last minute.
    ring: Vec<(AtomicU64, AtomicU64, AtomicU64)>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            in_flight: AtomicI64::new(0),
            total: AtomicU64::new(0),
            errors_5xx: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            ws_connections: AtomicI64::new(0),
            latency: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            ring: (0..60)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
        }
    }
}

fn bucket_of(d: Duration) -> usize {
    let us = d.as_micros().max(1) as f64;
    if us <= 10.0 {
        return 0;
    }
    (((us / 10.0).ln() / GROWTH.ln()).ceil() as usize).min(BUCKETS - 1)
}

fn bucket_upper_ms(i: usize) -> f64 {
    10.0 * GROWTH.powi(i as i32) / 1000.0
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Metrics {
    pub fn record(&self, elapsed: Duration, status: u16) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let is_5xx = status >= 500;
        if is_5xx {
            self.errors_5xx.fetch_add(1, Ordering::Relaxed);
        }
        self.latency[bucket_of(elapsed)].fetch_add(1, Ordering::Relaxed);
        let sec = now_secs();
        let slot = &self.ring[(sec % 60) as usize];
        // A slot from a previous minute is reset by the first request that lands in it this
        // minute; the race with a concurrent request loses at most a count, which is fine here.
        if slot.0.swap(sec, Ordering::Relaxed) != sec {
            slot.1.store(0, Ordering::Relaxed);
            slot.2.store(0, Ordering::Relaxed);
        }
        slot.1.fetch_add(1, Ordering::Relaxed);
        if is_5xx {
            slot.2.fetch_add(1, Ordering::Relaxed);
        }
        metrics::histogram!("http_request_duration_seconds").record(elapsed.as_secs_f64());
        metrics::counter!("http_requests_total", "status" => status_class(status)).increment(1);
    }

    /// Latency percentile in milliseconds over the life of the process (0 before any request).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let counts: Vec<u64> = self
            .latency
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return (bucket_upper_ms(i) * 100.0).round() / 100.0;
            }
        }
        bucket_upper_ms(BUCKETS - 1)
    }

    /// (requests, 5xx) over the last 60 seconds.
    pub fn last_minute(&self) -> (u64, u64) {
        let now = now_secs();
        self.ring.iter().fold((0, 0), |(r, e), slot| {
            let sec = slot.0.load(Ordering::Relaxed);
            if now.saturating_sub(sec) < 60 {
                (
                    r + slot.1.load(Ordering::Relaxed),
                    e + slot.2.load(Ordering::Relaxed),
                )
            } else {
                (r, e)
            }
        })
    }

    pub fn cache_hit_rate(&self) -> f64 {
        let h = self.cache_hits.load(Ordering::Relaxed) as f64;
        let m = self.cache_misses.load(Ordering::Relaxed) as f64;
        if h + m == 0.0 {
            0.0
        } else {
            h / (h + m)
        }
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The process-wide Prometheus recorder. Installed once; several app instances in one process
/// (the tests) share it.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static H: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    H.get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// (rss, peak rss) in bytes from /proc, where available.
pub fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_the_distribution() {
        let m = Metrics::default();
        for _ in 0..90 {
            m.record(Duration::from_millis(2), 200);
        }
        for _ in 0..10 {
            m.record(Duration::from_millis(100), 500);
        }
        let p50 = m.percentile_ms(50.0);
        let p99 = m.percentile_ms(99.0);
        assert!((2.0..2.2).contains(&p50), "{p50}");
        assert!((100.0..109.0).contains(&p99), "{p99}");
        assert_eq!(m.last_minute(), (100, 10));
    }
}
