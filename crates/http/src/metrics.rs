//! This instance's request statistics, recorded once per request (by the `edge` layer) and
//! read by all three views: `/health/detailed`, `/health/metrics` and `/metrics`.
//!
//! `/metrics` renders the request families (`http_requests_total`,
//! `http_request_duration_seconds`) and the instance gauges from these counts with the
//! Prometheus exporter's own formatting helpers, then appends what other code records through
//! the `metrics` facade into the process-wide Prometheus recorder (event counters such as
//! `till_ws_resyncs_total`). Request metrics are per instance on purpose: several app instances
//! may share one process (the tests do), and each reports its own traffic.
//!
//! Latency is kept in a log-scale histogram (about 8 % per bucket): constant memory per thread,
//! percentiles good to a bucket.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics_exporter_prometheus::formatting::{
    write_help_line, write_metric_line, write_type_line,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use thread_local::ThreadLocal;

const BUCKETS: usize = 200;
/// Bucket i covers latencies up to 10 µs × GROWTH^i; 200 buckets reach past 10 minutes.
const GROWTH: f64 = 1.08;

/// Status classes, in the order of [`Tally::by_class`].
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// `le` bounds (seconds) of the Prometheus histogram. Each is counted up to the end of the fine
/// bucket it falls in, so a bound is exact to the fine buckets' 8 %.
const EXPORTED_BOUNDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Request statistics, kept per thread and summed when read.
///
/// Every request updates a dozen counters (its status class, latency bucket, the last
/// minute's ring, its route's cell). Kept in shared atomics, the runtime's worker threads wrote
/// the same cache lines on every request, each write waiting for the line to come over from
/// the other core, and took the route map's read lock (itself a shared write). Now each thread
/// records into its own [`Shard`], under a lock only a reader (a scrape, the health page) ever
/// contends for, and readers sum the shards. Profiled on the liveness probe at 64 connections
/// (`perf record`), recording fell from 1.2 % to 0.6 % of the server's samples.
pub struct Metrics {
    shards: ThreadLocal<Shard>,
    /// API requests waiting for their turn (`API_MAX_IN_FLIGHT`).
    waiting: AtomicI64,
    /// Open WebSocket connections (the WebSocket handler counts them).
    pub ws_connections: AtomicI64,
    /// Catalog cache lookups answered without the loader, and those that ran it.
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            shards: ThreadLocal::new(),
            waiting: AtomicI64::new(0),
            ws_connections: AtomicI64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
        }
    }
}

/// One thread's share of the statistics.
#[derive(Default)]
struct Shard {
    /// Requests begun on this thread and not yet finished or dropped (a request may end on
    /// another thread; the sum over the shards is what counts).
    in_flight: AtomicI64,
    tally: Mutex<Tally>,
}

/// Finished requests: by status class, by latency, per second of the last minute, and by route.
struct Tally {
    by_class: [u64; 5],
    latency: [u64; BUCKETS],
    latency_sum_us: u64,
    /// Per-second (epoch second, requests, 5xx) ring for the last minute.
    ring: [(u64, u64, u64); 60],
    routes: HashMap<Box<str>, RouteCells>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            by_class: [0; 5],
            latency: [0; BUCKETS],
            latency_sum_us: 0,
            ring: [(0, 0, 0); 60],
            routes: HashMap::new(),
        }
    }
}

impl Shard {
    fn tally(&self) -> MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
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

fn class_of(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// See [`Metrics::waiting`].
pub struct Waiting<'a>(&'a AtomicI64);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request being served: counted in flight until dropped, recorded by [`InFlight::finish`].
/// A request whose future is dropped (the client went away) leaves the in-flight count without
/// being recorded.
pub struct InFlight<'a> {
    metrics: &'a Metrics,
    counted: &'a AtomicI64,
    start: Instant,
}

impl InFlight<'_> {
    /// Records the finished request under its method and route template (`None`: no route
    /// matched); returns how long it took.
    pub fn finish(self, method: &axum::http::Method, route: Option<&str>, status: u16) -> Duration {
        let elapsed = self.start.elapsed();
        self.metrics.record(method, route, status, elapsed);
        elapsed
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counted.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Starts timing a request.
    pub fn begin(&self) -> InFlight<'_> {
        let counted = &self.shards.get_or_default().in_flight;
        counted.fetch_add(1, Ordering::Relaxed);
        InFlight {
            metrics: self,
            counted,
            start: Instant::now(),
        }
    }

    /// One update per request: this thread's tally, under its own lock.
    fn record(
        &self,
        method: &axum::http::Method,
        route: Option<&str>,
        status: u16,
        took: Duration,
    ) {
        let sec = now_secs();
        let class = class_of(status);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let mut t = self.shards.get_or_default().tally();
        t.by_class[class] += 1;
        t.latency[bucket_of(took)] += 1;
        t.latency_sum_us = t.latency_sum_us.saturating_add(us);
        let slot = &mut t.ring[(sec % 60) as usize];
        // A slot from a previous minute is reset by the first request that lands in it.
        if slot.0 != sec {
            *slot = (sec, 0, 0);
        }
        slot.1 += 1;
        if status >= 500 {
            slot.2 += 1;
        }
        let route = route.unwrap_or("unmatched");
        let cells = match t.routes.get_mut(route) {
            Some(c) => c,
            None => t.routes.entry(route.into()).or_default(),
        };
        let cell = cells.0[method_index(method)].get_or_insert_with(RouteCell::default);
        cell.by_class[class] += 1;
        cell.buckets[EXPORTED_BOUNDS.partition_point(|b| *b < took.as_secs_f64())] += 1;
        cell.sum_us = cell.sum_us.saturating_add(us);
    }

    /// Sums something over every thread's tally.
    fn sum<T: Default>(&self, mut add: impl FnMut(&mut T, &Tally)) -> T {
        let mut acc = T::default();
        for shard in self.shards.iter() {
            add(&mut acc, &shard.tally());
        }
        acc
    }

    /// Counts a request as waiting for its API turn until the guard is dropped.
    pub fn waiting(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(&self.waiting)
    }

    /// Requests being served now.
    pub fn in_flight(&self) -> i64 {
        self.shards
            .iter()
            .map(|s| s.in_flight.load(Ordering::Relaxed))
            .sum()
    }

    fn by_class(&self) -> [u64; 5] {
        self.sum(|acc: &mut [u64; 5], t| {
            for (a, c) in acc.iter_mut().zip(t.by_class) {
                *a += c;
            }
        })
    }

    /// Requests served since start.
    pub fn total(&self) -> u64 {
        self.by_class().iter().sum()
    }

    /// Requests answered with a 5xx since start.
    pub fn errors_5xx(&self) -> u64 {
        self.by_class()[4]
    }

    fn latency_counts(&self) -> Vec<u64> {
        let mut counts = vec![0; BUCKETS];
        for shard in self.shards.iter() {
            for (a, c) in counts.iter_mut().zip(shard.tally().latency) {
                *a += c;
            }
        }
        counts
    }

    /// Latency percentile in milliseconds over the life of the process (0 before any request).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let counts = self.latency_counts();
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
        self.sum(|(r, e): &mut (u64, u64), t| {
            for (sec, n, n5) in t.ring {
                if now.saturating_sub(sec) < 60 {
                    *r += n;
                    *e += n5;
                }
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

    /// Appends this instance's families in the Prometheus text format.
    pub fn render_prometheus(&self, out: &mut String) {
        let name = "http_requests_total";
        write_help_line(out, name, "Requests served, by status class.");
        write_type_line(out, name, "counter");
        for (class, n) in CLASSES.iter().zip(self.by_class()) {
            let labels = [format!("status=\"{class}\"")];
            write_metric_line(out, name, None, &labels, None::<(&str, u8)>, n, None);
        }

        let name = "http_request_duration_seconds";
        write_help_line(out, name, "Time from request to response.");
        write_type_line(out, name, "histogram");
        let counts = self.latency_counts();
        let mut cumulative = 0;
        let mut next = 0;
        for bound in EXPORTED_BOUNDS {
            let last = bucket_of(Duration::from_secs_f64(bound));
            cumulative += counts[next..=last].iter().sum::<u64>();
            next = last + 1;
            write_metric_line(
                out,
                name,
                Some("bucket"),
                &[],
                Some(("le", bound)),
                cumulative,
                None,
            );
        }
        let total: u64 = counts.iter().sum();
        write_metric_line(
            out,
            name,
            Some("bucket"),
            &[],
            Some(("le", "+Inf")),
            total,
            None,
        );
        let sum_us: u64 = self.sum(|s: &mut u64, t| *s += t.latency_sum_us);
        let sum = sum_us as f64 / 1e6;
        write_metric_line(out, name, Some("sum"), &[], None::<(&str, u8)>, sum, None);
        write_metric_line(
            out,
            name,
            Some("count"),
            &[],
            None::<(&str, u8)>,
            total,
            None,
        );

        self.render_routes(out);

        let name = "till_cache_lookups_total";
        write_help_line(
            out,
            name,
            "Catalog cache lookups, by whether the loader ran.",
        );
        write_type_line(out, name, "counter");
        for (result, count) in [("hit", &self.cache_hits), ("miss", &self.cache_misses)] {
            let labels = [format!("result=\"{result}\"")];
            let n = count.load(Ordering::Relaxed);
            write_metric_line(out, name, None, &labels, None::<(&str, u8)>, n, None);
        }

        let in_flight = self.in_flight() as f64;
        write_gauge(
            out,
            "till_http_in_flight",
            "Requests being served.",
            in_flight,
        );
        let waiting = self.waiting.load(Ordering::Relaxed) as f64;
        write_gauge(
            out,
            "till_http_waiting",
            "API requests waiting for their turn (API_MAX_IN_FLIGHT).",
            waiting,
        );
        let ws = self.ws_connections.load(Ordering::Relaxed) as f64;
        write_gauge(
            out,
            "till_ws_connections",
            "Open WebSocket connections.",
            ws,
        );
    }
}

/// Appends one unlabelled gauge in the Prometheus text format.
pub fn write_gauge(out: &mut String, name: &str, help: &str, value: f64) {
    write_help_line(out, name, help);
    write_type_line(out, name, "gauge");
    write_metric_line(out, name, None, &[], None::<(&str, u8)>, value, None);
}

/// Appends the job queue's gauges (web instances and the worker both export them).
pub fn write_queue(out: &mut String, q: &till_db::jobs::QueueStats) {
    write_gauge(
        out,
        "till_jobs_backlog",
        "Jobs queued or running.",
        q.backlog as f64,
    );
    write_gauge(
        out,
        "till_jobs_failed",
        "Jobs that failed their last attempt.",
        q.failed as f64,
    );
    write_gauge(
        out,
        "till_jobs_oldest_due_seconds",
        "Age of the oldest due job no worker has claimed yet (0 when none).",
        q.oldest_due_seconds,
    );
}

/// The process-wide Prometheus recorder behind the `metrics` facade. Installed once; several
/// app instances in one process (the tests) share it.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static H: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    H.get_or_init(|| {
        let handle = PrometheusBuilder::new().install_recorder().ok()?;
        // Histograms recorded through the facade are kept sample by sample until drained;
        // without a scrape they would grow for ever, so drain them every few seconds.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            })
            .ok()?;
        Some(handle)
    })
    .as_ref()
}

const ROUTE_REQUESTS: &str = "http_route_requests_total";
const ROUTE_DURATION: &str = "http_route_request_duration_seconds";
const METHODS: [&str; 8] = [
    "GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "other",
];

fn method_index(method: &axum::http::Method) -> usize {
    use axum::http::Method;
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PATCH => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// One (route, method)'s counts by status class and its latency in the exported buckets.
#[derive(Default, Clone, Copy)]
struct RouteCell {
    by_class: [u64; 5],
    /// Non-cumulative counts per [`EXPORTED_BOUNDS`] bucket, then one for beyond the last.
    buckets: [u64; EXPORTED_BOUNDS.len() + 1],
    sum_us: u64,
}

impl RouteCell {
    fn add(&mut self, other: &RouteCell) {
        for (a, b) in self.by_class.iter_mut().zip(other.by_class) {
            *a += b;
        }
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }
}

/// A route's cells, one per method in [`METHODS`]. Routes are labelled by method, route
/// template and status class: a bounded set of series (unmatched paths share
/// `route="unmatched"`, and an unusual method is `other`), so a scanner cannot grow the scrape.
#[derive(Default, Clone)]
struct RouteCells([Option<RouteCell>; METHODS.len()]);

impl Metrics {
    /// The per-route families, every thread's cells summed, routes in name order.
    fn render_routes(&self, out: &mut String) {
        let routes = self.sum(|acc: &mut BTreeMap<Box<str>, RouteCells>, t| {
            for (route, cells) in &t.routes {
                let into: &mut RouteCells = acc.entry(route.clone()).or_default();
                for (a, c) in into.0.iter_mut().zip(&cells.0) {
                    if let Some(c) = c {
                        a.get_or_insert_with(RouteCell::default).add(c);
                    }
                }
            }
        });
        let cells = || {
            routes.iter().flat_map(|(route, cells)| {
                METHODS
                    .iter()
                    .zip(&cells.0)
                    .filter_map(move |(m, c)| Some((route, *m, c.as_ref()?)))
            })
        };
        write_help_line(
            out,
            ROUTE_REQUESTS,
            "Requests served, by method, route template and status class.",
        );
        write_type_line(out, ROUTE_REQUESTS, "counter");
        for (route, method, cell) in cells() {
            for (class, count) in CLASSES.iter().zip(&cell.by_class) {
                let n = *count;
                if n > 0 {
                    let labels = [
                        format!("method=\"{method}\""),
                        format!("route=\"{}\"", label_value(route)),
                        format!("status=\"{class}\""),
                    ];
                    write_metric_line(
                        out,
                        ROUTE_REQUESTS,
                        None,
                        &labels,
                        None::<(&str, u8)>,
                        n,
                        None,
                    );
                }
            }
        }
        write_help_line(
            out,
            ROUTE_DURATION,
            "Time from request to response, by method and route template.",
        );
        write_type_line(out, ROUTE_DURATION, "histogram");
        for (route, method, cell) in cells() {
            let labels = [
                format!("method=\"{method}\""),
                format!("route=\"{}\"", label_value(route)),
            ];
            let mut cumulative = 0;
            for (bound, count) in EXPORTED_BOUNDS.iter().zip(&cell.buckets) {
                cumulative += count;
                write_metric_line(
                    out,
                    ROUTE_DURATION,
                    Some("bucket"),
                    &labels,
                    Some(("le", *bound)),
                    cumulative,
                    None,
                );
            }
            cumulative += cell.buckets[EXPORTED_BOUNDS.len()];
            write_metric_line(
                out,
                ROUTE_DURATION,
                Some("bucket"),
                &labels,
                Some(("le", "+Inf")),
                cumulative,
                None,
            );
            let sum = cell.sum_us as f64 / 1e6;
            write_metric_line(
                out,
                ROUTE_DURATION,
                Some("sum"),
                &labels,
                None::<(&str, u8)>,
                sum,
                None,
            );
            write_metric_line(
                out,
                ROUTE_DURATION,
                Some("count"),
                &labels,
                None::<(&str, u8)>,
                cumulative,
                None,
            );
        }
    }
}

/// A label value in the text format: backslash, quote and newline escaped.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
    use axum::http::Method;

    #[test]
    fn percentiles_follow_the_distribution() {
        let m = Metrics::default();
        for _ in 0..90 {
            m.record(&Method::GET, None, 200, Duration::from_millis(2));
        }
        for _ in 0..10 {
            m.record(&Method::GET, None, 500, Duration::from_millis(100));
        }
        let p50 = m.percentile_ms(50.0);
        let p99 = m.percentile_ms(99.0);
        assert!((2.0..2.2).contains(&p50), "{p50}");
        assert!((100.0..109.0).contains(&p99), "{p99}");
        assert_eq!(m.last_minute(), (100, 10));
        assert_eq!((m.total(), m.errors_5xx()), (100, 10));
    }

    #[test]
    fn in_flight_counts_until_dropped_and_records_on_finish() {
        let m = Metrics::default();
        let served = m.begin();
        let abandoned = m.begin();
        assert_eq!(m.in_flight(), 2);
        served.finish(&Method::GET, None, 204);
        drop(abandoned);
        assert_eq!((m.in_flight(), m.total()), (0, 1));
    }

    #[test]
    fn counts_recorded_on_several_threads_are_summed() {
        let m = Metrics::default();
        let begun = m.begin();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..25 {
                        let route = Some("/api/v1/orders");
                        m.record(&Method::POST, route, 201, Duration::from_millis(4));
                    }
                });
            }
            // A request may finish on another thread than the one it began on.
            s.spawn(move || drop(begun));
        });
        assert_eq!(
            (m.total(), m.in_flight(), m.last_minute()),
            (100, 0, (100, 0))
        );
        let mut out = String::new();
        m.render_prometheus(&mut out);
        let orders = r#"method="POST",route="/api/v1/orders""#;
        for line in [
            format!(r#"http_route_requests_total{{{orders},status="2xx"}} 100"#),
            format!(r#"http_route_request_duration_seconds_bucket{{{orders},le="0.0025"}} 0"#),
            format!(r#"http_route_request_duration_seconds_bucket{{{orders},le="0.005"}} 100"#),
            format!(r#"http_route_request_duration_seconds_count{{{orders}}} 100"#),
            format!(r#"http_route_request_duration_seconds_sum{{{orders}}} 0.4"#),
            "http_request_duration_seconds_count 100".to_string(),
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing from\n{out}");
        }
    }

    #[test]
    fn prometheus_text_is_derived_from_the_same_counts() {
        let m = Metrics::default();
        for _ in 0..3 {
            m.record(&Method::GET, None, 200, Duration::from_millis(3));
        }
        m.record(&Method::GET, None, 503, Duration::from_millis(200));
        let _waiting = m.waiting();
        drop(m.waiting());
        let mut out = String::new();
        m.render_prometheus(&mut out);
        for line in [
            "http_requests_total{status=\"2xx\"} 3",
            "http_requests_total{status=\"5xx\"} 1",
            "http_request_duration_seconds_bucket{le=\"0.0025\"} 0",
            "http_request_duration_seconds_bucket{le=\"0.005\"} 3",
            "http_request_duration_seconds_bucket{le=\"0.25\"} 4",
            "http_request_duration_seconds_bucket{le=\"+Inf\"} 4",
            "http_request_duration_seconds_count 4",
            "http_request_duration_seconds_sum 0.209",
            "# TYPE http_request_duration_seconds histogram",
            "till_http_in_flight 0",
            "till_http_waiting 1",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing from\n{out}");
        }
    }
}
