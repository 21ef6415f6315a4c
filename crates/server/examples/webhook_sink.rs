//! A webhook receiver for the benchmark (`loadtests/checkout.sh` with `BASELINE=webhooks`):
//! listens on several ports (one endpoint each), answers 200 (the last port after `--slow-ms`),
//! and keeps, per port, the events received, the distinct event ids and the delivery lag
//! (received − the event's `created_at`).
//!
//!   cargo run --release --example webhook_sink -- --ports 5 --slow-ms 100
//!
//! Prints `PORTS p1,p2,…` once listening. `GET /stats` on a port → `{received, distinct,
//! lag_ms: {p50, p99, max}}`; `POST /reset` forgets what it saw.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// The allocator `till` runs with: glibc's malloc and free were a third of this receiver's
/// CPU in the benchmark, CPU the checkout it measures then did not get.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Default)]
struct Seen {
    received: u64,
    ids: HashSet<String>,
    lags_ms: Vec<f64>,
}

#[derive(serde::Deserialize)]
struct Event {
    id: String,
    created_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
struct Sink {
    seen: Arc<Mutex<Seen>>,
    delay: Duration,
}

async fn receive(State(s): State<Sink>, body: Bytes) -> &'static str {
    let now = Utc::now();
    if !s.delay.is_zero() {
        tokio::time::sleep(s.delay).await;
    }
    // Only the two fields it keeps: this receiver shares the machine with the checkout it
    // measures, so it should cost as little as a receiver elsewhere would cost Till.
    let event: Option<Event> = serde_json::from_slice(&body).ok();
    let mut seen = s.seen.lock().unwrap();
    seen.received += 1;
    if let Some(Event { id, created_at }) = event {
        if seen.ids.insert(id) {
            if let Some(c) = created_at {
                seen.lags_ms
                    .push((now - c).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            }
        }
    }
    "ok"
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn stats(State(s): State<Sink>) -> Json<Value> {
    let seen = s.seen.lock().unwrap();
    let mut lags = seen.lags_ms.clone();
    lags.sort_by(|a, b| a.total_cmp(b));
    Json(json!({
        "received": seen.received,
        "distinct": seen.ids.len(),
        "lag_ms": {"p50": pct(&lags, 0.5), "p99": pct(&lags, 0.99), "max": lags.last().copied().unwrap_or(0.0)},
    }))
}

async fn reset(State(s): State<Sink>) -> &'static str {
    *s.seen.lock().unwrap() = Seen::default();
    "ok"
}

// One thread: it shares the benchmark's machine with what it measures, and a second runtime
// thread only adds wake-ups between the two.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let ports = arg("--ports", 5).max(1);
    let slow = Duration::from_millis(arg("--slow-ms", 100));
    let mut bound = Vec::new();
    for i in 0..ports {
        let sink = Sink {
            seen: Arc::default(),
            delay: if i + 1 == ports { slow } else { Duration::ZERO },
        };
        let app = Router::new()
            .route("/hook", post(receive))
            .route("/stats", get(stats))
            .route("/reset", post(reset))
            .with_state(sink);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        bound.push(listener.local_addr()?.port().to_string());
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    println!("PORTS {}", bound.join(","));
    std::future::pending::<()>().await;
    Ok(())
}
