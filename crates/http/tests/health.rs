//! Health, readiness, drain and metrics endpoints with real dependencies up and down.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use till_test_support::*;

#[tokio::test]
async fn healthy_with_everything_up() {
    let app = TestApp::spawn().await;
    let (s, v) = body(app.get("/health", None).await).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["database"]["status"], "up");
    assert_eq!(v["cache"]["status"], "up");
    assert_eq!(v["cache"]["backend"], "redis");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["environment"], "development");
    for k in ["timestamp", "instance", "uptime_seconds"] {
        assert!(!v[k].is_null(), "{k}");
    }
    assert!(v["database"]["response_time_ms"].as_f64().unwrap() >= 0.0);
    let (s, v) = body(app.get("/health/liveness", None).await).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("alive")));
    let (s, v) = body(app.get("/health/readiness", None).await).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ready")));
}

#[tokio::test]
async fn degraded_when_redis_stops_and_healthy_when_it_returns() {
    let mut redis = PrivateRedis::start();
    let mut opts = Opts::new().await;
    opts.redis_url = Some(redis.url.clone());
    let app = TestApp::spawn_with(&opts).await;
    let admin = app.admin().await;
    assert_eq!(
        body(app.get("/health", None).await).await.1["status"],
        "healthy"
    );

    redis.stop();
    let (s, v) = body(app.get("/health", None).await).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["cache"]["status"], "down");
    assert_eq!(v["database"]["status"], "up");
    // Redis only caches sessions: the token keeps working from PostgreSQL.
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&admin.token))
            .await
            .status(),
        StatusCode::OK
    );
    // Readiness only depends on the database: the instance can still serve the public catalog.
    assert_eq!(
        app.get("/health/readiness", None).await.status(),
        StatusCode::OK
    );

    redis.restart();
    let mut healthy = false;
    for _ in 0..50 {
        if body(app.get("/health", None).await).await.1["status"] == "healthy" {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "recovers when Redis returns");
}

#[tokio::test]
async fn unhealthy_and_not_ready_when_the_database_is_unreachable() {
    let port = free_port();
    let mut opts = Opts::new().await;
    opts.db_url = format!("postgres://postgres@127.0.0.1:{port}/nowhere");
    let app = TestApp::spawn_with(&opts).await;
    let (s, v) = body(app.get("/health", None).await).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["status"], "unhealthy");
    assert_eq!(v["database"]["status"], "down");
    let (s, v) = body(app.get("/health/readiness", None).await).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["status"], "not_ready");
    assert_eq!(v["reason"], "database unreachable");
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            serde_json::json!({"email": "a@b.co", "password": "x"}),
        )
        .await;
    let v = expect_error(r, 503, "service_unavailable").await;
    assert!(!v.to_string().contains("postgres://"), "no internals: {v}");
    assert_eq!(
        app.get("/health/liveness", None).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn not_ready_while_migrations_are_behind() {
    let base = pg_url();
    let name = format!(
        "till_t_{}_{}",
        chrono::Utc::now().timestamp(),
        uuid::Uuid::new_v4().simple()
    );
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{base}/postgres"))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut opts = Opts::new().await;
    opts.db_url = format!("{base}/{name}");
    let app = TestApp::spawn_with(&opts).await;
    let (s, v) = body(app.get("/health/readiness", None).await).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["reason"], "migrations pending");
    expect_error(
        app.get("/api/v1/auth/me", None).await,
        503,
        "service_unavailable",
    )
    .await;

    app.state.db.migrate().await.unwrap();
    assert_eq!(
        app.get("/health/readiness", None).await.status(),
        StatusCode::OK
    );
    expect_error(app.get("/api/v1/auth/me", None).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn readiness_turns_503_during_drain_while_requests_are_still_served() {
    let mut app = TestApp::spawn_with(&Opts::new().await.set("SHUTDOWN_DRAIN_MS", "1500")).await;
    assert_eq!(
        app.get("/health/readiness", None).await.status(),
        StatusCode::OK
    );
    app.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (s, v) = body(app.get("/health/readiness", None).await).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["reason"], "draining");
    // Still serving during the drain window.
    assert_eq!(
        app.get("/health/liveness", None).await.status(),
        StatusCode::OK
    );
    let handle = app.handle.take().unwrap();
    let finished = tokio::time::timeout(Duration::from_secs(5), handle).await;
    assert!(finished.is_ok(), "server exits after the drain");
    assert!(
        app.http
            .get(format!("{}/health/liveness", app.url))
            .send()
            .await
            .is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn detailed_health_needs_admin_or_health_token() {
    let app =
        TestApp::spawn_with(&Opts::new().await.set("HEALTH_TOKEN", "monitor-token-123")).await;
    expect_error(app.get("/health/detailed", None).await, 401, "unauthorized").await;
    let cashier = app.user("cashier").await;
    expect_error(
        app.get("/health/detailed", Some(&cashier.token)).await,
        403,
        "forbidden",
    )
    .await;
    expect_error(
        app.get("/health/detailed", Some("wrong-token")).await,
        401,
        "unauthorized",
    )
    .await;
    let admin = app.admin().await;
    for token in [admin.token.as_str(), "monitor-token-123"] {
        let (s, v) = body(app.get("/health/detailed", Some(token)).await).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v["pools"]["database"]["max"].as_u64().unwrap() >= 1);
        assert!(v["requests"]["total"].as_u64().unwrap() >= 3);
        assert!(v["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
        assert!(v["memory"]["rss_bytes"].as_u64().unwrap() > 0);
        assert_eq!(v["jobs"]["backlog"], 0);
        for k in ["cache", "websocket"] {
            assert!(v[k].is_object(), "{k}");
        }
    }
}

#[tokio::test]
async fn load_balancer_and_prometheus_metrics() {
    let app = TestApp::spawn().await;
    for _ in 0..5 {
        app.get("/api/v1/missing", None).await;
    }
    let (s, v) = body(app.get("/health/metrics", None).await).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["requests_per_minute"].as_u64().unwrap() >= 5, "{v}");
    assert_eq!(v["error_rate"], 0.0);
    assert!(v["active_connections"].as_i64().unwrap() >= 1);
    assert!(v["p95_ms"].as_f64().unwrap() > 0.0);
    let r = app.req(Method::GET, "/metrics").send().await.unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("http_request_duration_seconds"), "{text}");
}

/// Per-route series carry the route template, never the raw path: a thousand order ids are one
/// series, and unknown paths (a scanner) share `route="unmatched"`.
#[tokio::test]
async fn per_route_metrics_are_labelled_by_template() {
    let app = TestApp::spawn().await;
    let anon = app.anon();
    for i in 0..3 {
        anon.get(&format!(
            "/api/v1/products/0190f0f0-0000-7000-8000-00000000000{i}"
        ))
        .await
        .expect_status(404);
        anon.get(&format!("/api/v1/scan-{i}"))
            .await
            .expect_status(404);
    }
    // The liveness probe is answered by the outer edge (GET) or the router (HEAD): counted under
    // its template either way, with the headers every answer carries.
    for method in [Method::GET, Method::GET, Method::HEAD] {
        let r = app
            .req(method.clone(), "/health/liveness")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{method}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_eq!(r.headers()["x-request-id"].len(), 36);
        if method == Method::GET {
            assert_eq!(r.text().await.unwrap(), r#"{"status":"alive"}"#);
        }
    }
    let text = app
        .req(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_route_requests_total")
                && l.contains(r#"route="/api/v1/products/{id}""#)
                && l.contains(r#"status="4xx""#)
        })
        .unwrap_or_else(|| panic!("no per-route series: {text}"));
    let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 3.0, "{line}");
    for method in ["GET", "HEAD"] {
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("http_route_requests_total")
                    && l.contains(&format!(r#"method="{method}""#))
                    && l.contains(r#"route="/health/liveness""#)
            })
            .unwrap_or_else(|| panic!("no liveness series for {method}: {text}"));
        let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= 1.0, "{line}");
    }
    assert!(text.contains(r#"route="unmatched""#), "{text}");
    assert!(!text.contains("scan-1"), "raw paths never become labels");
    assert!(!text.contains("00000000000"), "ids never become labels");
    assert!(
        text.contains("http_route_request_duration_seconds_bucket"),
        "latency per route is a histogram"
    );
}

/// The value of the unlabelled sample `name` in Prometheus text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
        .parse()
        .unwrap()
}

/// What the alert rules in monitoring/ read: dependencies as the instance sees them, and the job
/// queue (backlog, failures, and how long the oldest due job has waited for a worker).
#[tokio::test]
async fn prometheus_reports_dependencies_and_the_job_queue() {
    let app = TestApp::spawn().await;
    sqlx::query(
        "INSERT INTO jobs (id, kind, status, run_at) VALUES
           ($1, 'test', 'queued', now() - interval '90 seconds'),
           ($2, 'test', 'queued', now() + interval '1 hour'),
           ($3, 'test', 'failed', now() - interval '1 hour'),
           ($4, 'test', 'done', now() - interval '1 hour')",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(uuid::Uuid::now_v7())
    .bind(uuid::Uuid::now_v7())
    .bind(uuid::Uuid::now_v7())
    .execute(&app.state.db.write)
    .await
    .unwrap();
    let text = app.get("/metrics", None).await.text().await.unwrap();
    assert_eq!(sample(&text, "till_database_up"), 1.0);
    assert_eq!(sample(&text, "till_redis_up"), 1.0);
    assert_eq!(sample(&text, "till_jobs_backlog"), 2.0);
    assert_eq!(sample(&text, "till_jobs_failed"), 1.0);
    let waited = sample(&text, "till_jobs_oldest_due_seconds");
    assert!((89.0..200.0).contains(&waited), "{waited}");
}
