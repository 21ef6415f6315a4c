//! The worker's own small HTTP listener (`WORKER_HEALTH_ADDR`): `GET /health` for the container
//! health check and `GET /metrics` for Prometheus. A worker has no API, but an operator still
//! needs to know it is alive (its loops turn, PostgreSQL answers) and what it is doing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use till_app::App;
use tokio::net::TcpListener;

/// A claim loop that has not turned for this long is stuck: the worker reports unhealthy.
const STUCK_AFTER: Duration = Duration::from_secs(60);

/// What the worker's loops report as they go.
#[derive(Default)]
pub struct WorkerStats {
    /// Unix time (ms) a claim loop last finished a turn (claimed, idled or failed to claim).
    last_turn_ms: AtomicU64,
    /// Jobs running now.
    pub running: AtomicI64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl WorkerStats {
    pub fn turned(&self) {
        self.last_turn_ms.store(now_ms(), Ordering::Relaxed);
    }

    fn since_last_turn(&self) -> Duration {
        let last = self.last_turn_ms.load(Ordering::Relaxed);
        Duration::from_millis(now_ms().saturating_sub(last))
    }
}

#[derive(Clone)]
struct Ctx {
    app: App,
    stats: Arc<WorkerStats>,
    id: Arc<str>,
}

/// Binds `addr` (so a taken port fails the start, loudly) and serves until the process ends.
pub async fn bind(
    addr: SocketAddr,
    app: App,
    stats: Arc<WorkerStats>,
    id: &str,
) -> anyhow::Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let ctx = Ctx {
        app,
        stats,
        id: id.into(),
    };
    let router = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(ctx);
    let serve = async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "worker health listener stopped");
        }
    };
    Ok((local, serve))
}

async fn health(State(ctx): State<Ctx>) -> Response {
    let db = ctx.app.db.ping().await;
    let backlog = till_db::jobs::backlog(&ctx.app.db.write).await.ok();
    let idle_for = ctx.stats.since_last_turn();
    let ok = db.is_ok() && idle_for < STUCK_AFTER;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ok { "ok" } else { "unhealthy" },
        "worker": &*ctx.id,
        "database": if db.is_ok() { "up" } else { "down" },
        "seconds_since_loop_turn": idle_for.as_secs(),
        "running": ctx.stats.running.load(Ordering::Relaxed),
        "backlog": backlog,
    });
    (status, Json(body)).into_response()
}

async fn metrics(State(ctx): State<Ctx>) -> Response {
    let mut out = String::new();
    let backlog = till_db::jobs::backlog(&ctx.app.db.write).await;
    let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
        till_http::metrics::write_gauge(out, name, help, v)
    };
    gauge(
        &mut out,
        "till_worker_up",
        "1 while this worker process runs",
        1.0,
    );
    gauge(
        &mut out,
        "till_database_up",
        "1 when this worker reaches PostgreSQL",
        if backlog.is_ok() { 1.0 } else { 0.0 },
    );
    gauge(
        &mut out,
        "till_worker_backlog",
        "Jobs queued or running",
        backlog.unwrap_or(0) as f64,
    );
    if let Ok(q) = till_db::jobs::stats(&ctx.app.db.write).await {
        till_http::metrics::write_queue(&mut out, &q);
    }
    gauge(
        &mut out,
        "till_worker_running",
        "Jobs this worker is running",
        ctx.stats.running.load(Ordering::Relaxed) as f64,
    );
    gauge(
        &mut out,
        "till_worker_seconds_since_loop_turn",
        "Seconds since a claim loop last turned",
        ctx.stats.since_last_turn().as_secs_f64(),
    );
    if let Some(h) = till_http::metrics::prometheus() {
        out.push_str(&h.render());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
