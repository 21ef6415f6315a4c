//! `till worker`'s own Prometheus endpoint (`WORKER_METRICS_ADDR`): that this worker runs, whether
//! it reaches PostgreSQL, the job queue, and what the `metrics` facade recorded in this process.
//! Prometheus scrapes it beside the web instances, so a worker that died is seen as down at once
//! (`TillWorkerDown`), not only once due jobs start to wait.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use till_app::App;
use till_http::metrics;

/// The Prometheus text this worker serves.
pub async fn render(app: &App) -> String {
    let mut text = String::new();
    metrics::write_gauge(
        &mut text,
        "till_worker_up",
        "1 while this worker process runs.",
        1.0,
    );
    let db = app.db.ping().await.is_ok();
    metrics::write_gauge(
        &mut text,
        "till_database_up",
        "1 when this worker reaches PostgreSQL.",
        if db { 1.0 } else { 0.0 },
    );
    if db {
        if let Ok(q) = till_db::jobs::stats(&app.db.write).await {
            metrics::write_queue(&mut text, &q);
        }
    }
    if let Some(handle) = metrics::prometheus() {
        text.push_str(&handle.render());
    }
    text
}

async fn handler(State(app): State<App>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&app).await,
    )
}

/// Binds `addr` and serves `GET /metrics` in the background; returns the bound address (for
/// port 0) and the task, which the caller aborts when the worker stops.
pub async fn spawn(
    app: App,
    addr: SocketAddr,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("WORKER_METRICS_ADDR {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let router = Router::new()
        .route("/metrics", get(handler))
        .with_state(app);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("worker metrics endpoint stopped: {e}");
        }
    });
    Ok((bound, task))
}
