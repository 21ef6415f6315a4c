//! Health, readiness and metrics endpoints (no `/api/v1` prefix, not rate limited).

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::json;
use subtle::ConstantTimeEq;
use till_domain::Role;

use crate::auth::{self, AuthOutcome};
use crate::error::ApiError;
use crate::metrics;
use crate::openapi::schemas::{Detailed, ErrorBody, Health, LbMetrics, Status};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(liveness))
        .routes(routes!(readiness))
        .routes(routes!(detailed))
        .routes(routes!(lb_metrics))
        .routes(routes!(prometheus))
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

/// The instance and its dependencies.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses(
        (status = 200, description = "`healthy`, or `degraded` while Redis is down", body = Health),
        (status = 503, description = "`unhealthy`: the database is down", body = Health),
    )
)]
async fn health(State(state): State<AppState>) -> Response {
    let (db, cache) = tokio::join!(state.db.ping(), state.store.ping());
    let database = match &db {
        Ok(d) => json!({"status": "up", "response_time_ms": ms(*d)}),
        Err(_) => json!({"status": "down", "response_time_ms": null}),
    };
    let cache_json = match (&cache, state.store.is_redis()) {
        (Ok(d), true) => json!({"status": "up", "response_time_ms": ms(*d), "backend": "redis"}),
        (Ok(_), false) => json!({"status": "up", "response_time_ms": 0.0, "backend": "in_process"}),
        (Err(_), _) => json!({"status": "down", "response_time_ms": null, "backend": "redis"}),
    };
    let (code, status) = match (db.is_ok(), cache.is_ok()) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unhealthy"),
        (true, false) => (StatusCode::OK, "degraded"),
        (true, true) => (StatusCode::OK, "healthy"),
    };
    let body = json!({
        "status": status,
        "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "version": env!("CARGO_PKG_VERSION"),
        "environment": state.config.runtime.app_env.as_str(),
        "instance": state.config.runtime.instance_id,
        "uptime_seconds": state.started.elapsed().as_secs(),
        "database": database,
        "cache": cache_json,
    });
    (code, axum::Json(body)).into_response()
}

/// 200 while the process serves.
#[utoipa::path(
    get,
    path = "/health/liveness",
    tag = "health",
    responses((status = 200, description = "`alive`", body = Status))
)]
async fn liveness() -> Response {
    liveness_answer()
}

/// Where the liveness probe is; a `GET` of it is answered by the outer edge itself (see
/// `layers::EdgeKind`), other methods (`HEAD`) through the router.
pub const LIVENESS_PATH: &str = "/health/liveness";

/// The liveness answer: the same bytes as `Json(json!({"status": "alive"}))`, without building
/// and serialising a map on every probe, tagged with its route for the metrics.
pub fn liveness_answer() -> Response {
    let mut resp = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        r#"{"status":"alive"}"#,
    )
        .into_response();
    resp.extensions_mut()
        .insert(crate::layers::RouteTag::Fixed(LIVENESS_PATH));
    resp
}

/// Whether this instance should get traffic.
#[utoipa::path(
    get,
    path = "/health/readiness",
    tag = "health",
    responses(
        (status = 200, description = "`ready`", body = Status),
        (status = 503, description = "`not_ready` with a `reason` (database unreachable, migrations pending, draining)", body = Status),
    )
)]
async fn readiness(State(state): State<AppState>) -> Response {
    let not_ready = |reason: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "not_ready", "reason": reason})),
        )
            .into_response()
    };
    if state.is_draining() {
        return not_ready("draining");
    }
    match state.db.pending_migrations().await {
        Err(_) => not_ready("database unreachable"),
        Ok(n) if n > 0 => {
            state.schema_ready.store(false, Ordering::Relaxed);
            not_ready("migrations pending")
        }
        Ok(_) => {
            state.schema_ready.store(true, Ordering::Relaxed);
            axum::Json(json!({"status": "ready"})).into_response()
        }
    }
}

/// Admin session/token, or `Authorization: Bearer $HEALTH_TOKEN` for monitoring systems.
async fn may_see_details(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if let (Some(expected), Some(sent)) = (&state.config.auth.health_token, auth::bearer(headers)) {
        if bool::from(sent.as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
            return Ok(());
        }
    }
    match auth::resolve(state, headers).await {
        AuthOutcome::Authenticated(p) if p.role == Role::Admin => Ok(()),
        AuthOutcome::Authenticated(_) => Err(ApiError::forbidden()),
        AuthOutcome::Unavailable(cause) => {
            Err(ApiError::unavailable("Sign-in service unavailable.").with_source(cause))
        }
        _ => Err(ApiError::unauthorized()),
    }
}

/// Pools, request counts, latency, cache, WebSocket, memory and job backlog.
#[utoipa::path(
    get,
    path = "/health/detailed",
    tag = "health",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Instance internals", body = Detailed),
        (status = 401, description = "`unauthorized`: neither an admin nor `HEALTH_TOKEN`", body = ErrorBody),
        (status = 403, description = "`forbidden`: signed in, but not an admin", body = ErrorBody),
    )
)]
async fn detailed(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    may_see_details(&state, &headers).await?;
    let m = &state.metrics;
    let (size, idle, max) = state.db.pool_status();
    // Redis has no pool: commands share one multiplexed connection that reconnects by itself.
    let redis = state
        .store
        .redis_established()
        .map(|established| json!({"mode": "multiplexed", "established": established}));
    let (rss, peak) = metrics::memory();
    let backlog = till_db::jobs::backlog(&state.db.write).await.ok();
    Ok(axum::Json(json!({
        "instance": state.config.runtime.instance_id,
        "uptime_seconds": state.started.elapsed().as_secs(),
        "pools": {
            "database": {"size": size, "idle": idle, "max": max},
            "redis": redis,
        },
        "requests": {
            "total": m.total(),
            "5xx": m.errors_5xx(),
            "in_flight": m.in_flight(),
        },
        "latency_ms": {"p50": m.percentile_ms(50.0), "p95": m.percentile_ms(95.0), "p99": m.percentile_ms(99.0)},
        "cache": {"hit_rate": m.cache_hit_rate()},
        "websocket": {"connections": m.ws_connections.load(Ordering::Relaxed)},
        "memory": {"rss_bytes": rss, "peak_rss_bytes": peak},
        "jobs": {"backlog": backlog},
    }))
    .into_response())
}

/// Load-balancer figures over the last minute.
#[utoipa::path(
    get,
    path = "/health/metrics",
    tag = "health",
    responses((status = 200, description = "Connections, request rate, error rate, p95", body = LbMetrics))
)]
async fn lb_metrics(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    let (requests, errors) = m.last_minute();
    let error_rate = if requests == 0 {
        0.0
    } else {
        errors as f64 / requests as f64
    };
    axum::Json(json!({
        "active_connections": m.in_flight().max(0) + m.ws_connections.load(Ordering::Relaxed).max(0),
        "requests_per_minute": requests,
        "error_rate": error_rate,
        "p95_ms": m.percentile_ms(95.0),
    }))
    .into_response()
}

/// Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "Metrics in the Prometheus text format", body = String, content_type = "text/plain"))
)]
async fn prometheus(State(state): State<AppState>) -> Response {
    let mut text = String::new();
    state.metrics.render_prometheus(&mut text);
    let (size, idle, _) = state.db.pool_status();
    let help = "Connections of the primary database pool";
    metrics::write_gauge(
        &mut text,
        "till_db_pool_size",
        &format!("{help}."),
        size as f64,
    );
    metrics::write_gauge(
        &mut text,
        "till_db_pool_idle",
        &format!("{help} now idle."),
        idle as f64,
    );
    // Dependencies as this instance sees them, and the job queue (in PostgreSQL, so every
    // instance reports the same figures: alert rules take the max over instances).
    let (db, cache) = tokio::join!(state.db.ping(), state.store.ping());
    let up = |ok: bool| if ok { 1.0 } else { 0.0 };
    metrics::write_gauge(
        &mut text,
        "till_database_up",
        "1 when this instance reaches PostgreSQL.",
        up(db.is_ok()),
    );
    metrics::write_gauge(
        &mut text,
        "till_redis_up",
        "1 when this instance reaches Redis (always 1 in single-instance mode).",
        up(cache.is_ok()),
    );
    if db.is_ok() {
        if let Ok(q) = till_db::jobs::stats(&state.db.write).await {
            metrics::write_queue(&mut text, &q);
        }
    }
    // Counters recorded elsewhere through the `metrics` facade.
    if let Some(handle) = metrics::prometheus() {
        text.push_str(&handle.render());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
