//! The job queue and `till worker`: retries with growing delays, crash recovery after SIGKILL,
//! graceful shutdown, priorities, delays, recurring jobs, and the admin listing.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use till_db::jobs::{self, NewJob};
use till_server::worker::{Worker, WorkerConfig};
use till_test_support::*;
use uuid::Uuid;

fn quick_config() -> WorkerConfig {
    WorkerConfig {
        concurrency: 2,
        lease: Duration::from_secs(2),
        poll: Duration::from_millis(30),
        backoff_base: Duration::from_millis(200),
        backoff_cap: Duration::from_secs(5),
        shutdown_grace: Duration::from_secs(5),
        health_addr: "127.0.0.1:0".parse().unwrap(),
    }
}

async fn enqueue(app: &TestApp, job: NewJob<'_>) -> Uuid {
    let mut c = app.state.db.write.acquire().await.unwrap();
    jobs::enqueue(&mut c, job).await.unwrap().expect("enqueued")
}

async fn wait_status(app: &TestApp, id: Uuid, status: &str, within: Duration) -> jobs::JobRow {
    let until = Instant::now() + within;
    loop {
        let j = jobs::get(&app.state.db.write, id).await.unwrap();
        if j.status == status {
            return j;
        }
        assert!(
            Instant::now() < until,
            "job {id} still {} (wanted {status}): {j:?}",
            j.status
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn effects(app: &TestApp, id: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'test.effect' AND entity_id = $1",
    )
    .bind(id.to_string())
    .fetch_one(&app.state.db.write)
    .await
    .unwrap()
}

fn spawn_worker(app_db: &str, name: &str) -> Child {
    spawn_worker_with(app_db, name, "127.0.0.1:0")
}

fn spawn_worker_with(app_db: &str, name: &str, health_addr: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_till"))
        .arg("worker")
        .env("DATABASE_URL", app_db)
        .env_remove("REDIS_URL")
        .env("TILL_WORKER_TEST_JOBS", "1")
        .env("WORKER_HEALTH_ADDR", health_addr)
        .env("WORKER_LEASE_SECONDS", "2")
        .env("WORKER_POLL_MS", "30")
        .env("WORKER_SHUTDOWN_GRACE_SECONDS", "10")
        .env("INSTANCE_ID", name)
        .env("LOG_FORMAT", "pretty")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start till worker")
}

#[tokio::test]
async fn a_job_failing_twice_runs_three_times_with_growing_delays() {
    let app = TestApp::spawn().await;
    let calls = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let mut w = Worker::new(app.state.app.clone(), quick_config());
    let seen = calls.clone();
    w.register("flaky", move |_, job| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(Instant::now());
            if job.attempts < 3 {
                anyhow::bail!("planned failure {}", job.attempts);
            }
            Ok(())
        }
    });
    let id = enqueue(&app, NewJob::new("flaky", json!({}))).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(w.run(async move {
        let _ = stopped.await;
    }));
    let job = wait_status(&app, id, "done", Duration::from_secs(10)).await;
    let _ = stop.send(());
    run.await.unwrap().unwrap();

    assert_eq!(job.attempts, 3);
    assert_eq!(job.last_error, None);
    let t = calls.lock().unwrap().clone();
    assert_eq!(t.len(), 3);
    let (d1, d2) = (t[1] - t[0], t[2] - t[1]);
    assert!(
        d1 >= Duration::from_millis(200),
        "first retry waits the base delay: {d1:?}"
    );
    assert!(
        d2 >= Duration::from_millis(400),
        "second retry waits twice as long: {d2:?}"
    );
    assert!(d2 > d1);
}

#[tokio::test]
async fn a_job_that_always_fails_ends_failed_with_its_error() {
    let app = TestApp::spawn().await;
    let mut w = Worker::new(app.state.app.clone(), quick_config());
    w.register("doomed", |_, _| async {
        anyhow::bail!("supplier API said no")
    });
    let id = enqueue(
        &app,
        NewJob {
            max_attempts: 2,
            ..NewJob::new("doomed", json!({}))
        },
    )
    .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(w.run(async move {
        let _ = stopped.await;
    }));
    let job = wait_status(&app, id, "failed", Duration::from_secs(10)).await;
    let _ = stop.send(());
    run.await.unwrap().unwrap();
    assert_eq!(job.attempts, 2);
    assert_eq!(job.last_error.as_deref(), Some("supplier API said no"));
}

#[tokio::test]
async fn a_killed_workers_job_runs_again_after_the_lease_and_takes_effect_once() {
    let app = TestApp::spawn().await;
    let db = app.state.config.database.url.clone();
    let db = secrecy::ExposeSecret::expose_secret(&db).to_owned();
    let id = enqueue(&app, NewJob::new("test.slow_effect", json!({"ms": 1500}))).await;

    let mut first = spawn_worker(&db, "first");
    let running = wait_status(&app, id, "running", Duration::from_secs(15)).await;
    assert!(running.locked_by.as_deref().unwrap().starts_with("first"));
    first.kill().unwrap(); // SIGKILL: no chance to release the job
    first.wait().unwrap();
    assert_eq!(effects(&app, id).await, 0, "killed before the effect");

    let killed_at = Instant::now();
    let mut second = spawn_worker(&db, "second");
    let done = wait_status(&app, id, "done", Duration::from_secs(20)).await;
    second.kill().ok();
    second.wait().ok();
    assert!(
        killed_at.elapsed() >= Duration::from_millis(1500),
        "waited for the lease to expire"
    );
    assert_eq!(done.attempts, 2);
    assert!(done.locked_by.as_deref().unwrap().starts_with("second"));
    assert_eq!(
        effects(&app, id).await,
        1,
        "the effect happened exactly once"
    );
}

#[tokio::test]
async fn sigterm_lets_the_running_job_finish() {
    let app = TestApp::spawn().await;
    let db = secrecy::ExposeSecret::expose_secret(&app.state.config.database.url).to_owned();
    let id = enqueue(&app, NewJob::new("test.slow_effect", json!({"ms": 800}))).await;
    let mut w = spawn_worker(&db, "graceful");
    wait_status(&app, id, "running", Duration::from_secs(15)).await;
    let pid = w.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = w.wait().unwrap();
    assert!(status.success(), "clean exit: {status:?}");
    let job = jobs::get(&app.state.db.write, id).await.unwrap();
    assert_eq!(job.status, "done");
    assert_eq!(effects(&app, id).await, 1);
}

#[tokio::test]
async fn priorities_delays_and_recurring_jobs() {
    let app = TestApp::spawn().await;
    let order = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut cfg = quick_config();
    cfg.concurrency = 1;
    let mut w = Worker::new(app.state.app.clone(), cfg);
    for kind in ["low", "high", "later", "tick"] {
        let seen = order.clone();
        let k = kind.to_owned();
        w.register(kind, move |_, _| {
            let (seen, k) = (seen.clone(), k.clone());
            async move {
                seen.lock().unwrap().push(k);
                Ok(())
            }
        });
    }
    w.every("tick", Duration::from_secs(3600));
    let low = enqueue(&app, NewJob::new("low", json!({}))).await;
    let high = enqueue(
        &app,
        NewJob {
            priority: 10,
            ..NewJob::new("high", json!({}))
        },
    )
    .await;
    let later = enqueue(
        &app,
        NewJob {
            delay: Duration::from_millis(800),
            priority: 20,
            ..NewJob::new("later", json!({}))
        },
    )
    .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(w.run(async move {
        let _ = stopped.await;
    }));
    for id in [low, high, later] {
        wait_status(&app, id, "done", Duration::from_secs(10)).await;
    }
    let _ = stop.send(());
    run.await.unwrap().unwrap();
    let seen = order.lock().unwrap().clone();
    let pos = |k: &str| seen.iter().position(|s| s == k).unwrap();
    assert!(pos("high") < pos("low"), "{seen:?}");
    assert!(
        pos("later") > pos("low"),
        "a delayed job waits for its time: {seen:?}"
    );
    assert_eq!(seen.iter().filter(|s| *s == "tick").count(), 1);
    // The recurring job re-enqueued itself for an hour from now, once.
    let next: Vec<(String, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT status, run_at FROM jobs WHERE kind = 'tick' AND status = 'queued'")
            .fetch_all(&app.state.db.write)
            .await
            .unwrap();
    assert_eq!(next.len(), 1);
    assert!(next[0].1 > chrono::Utc::now() + chrono::Duration::minutes(59));
}

#[tokio::test]
async fn admins_list_jobs_by_status() {
    let app = TestApp::spawn().await;
    let queued = enqueue(&app, NewJob::new("some.kind", json!({"n": 1}))).await;
    let admin = app.admin().await;
    let (s, v) = body(
        app.get("/api/v1/admin/jobs?status=queued", Some(&admin.token))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], queued.to_string());
    assert_eq!(items[0]["attempts"], 0);
    assert_eq!(items[0]["kind"], "some.kind");
    let (_, v) = body(
        app.get("/api/v1/admin/jobs?status=failed", Some(&admin.token))
            .await,
    )
    .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 0);
    expect_error(
        app.get("/api/v1/admin/jobs?status=bogus", Some(&admin.token))
            .await,
        422,
        "validation_failed",
    )
    .await;
    let manager = app.user("manager").await;
    expect_error(
        app.get("/api/v1/admin/jobs", Some(&manager.token)).await,
        403,
        "forbidden",
    )
    .await;
}

/// A recurring job never stops for good: a copy that fails every attempt is followed by the
/// next period's run, and a worker that starts while PostgreSQL is unreachable schedules its
/// recurring jobs once it is back.
#[tokio::test]
async fn recurring_jobs_survive_failures_and_a_database_that_is_down_at_start() {
    let mut opts = Opts::new().await;
    let proxy = TcpProxy::start_to(target_of(&opts.db_url).await).await;
    opts.db_url = reroute(&opts.db_url, proxy.addr);
    let app = TestApp::spawn_with(&opts).await;
    let calls = Arc::new(Mutex::new(0_u32));
    let mut w = Worker::new(app.state.app.clone(), quick_config());
    let seen = calls.clone();
    w.register("nightly", move |_, _| {
        let seen = seen.clone();
        async move {
            *seen.lock().unwrap() += 1;
            anyhow::bail!("the supplier is closed")
        }
    });
    w.every("nightly", Duration::from_secs(1));
    proxy.stop();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(w.run(async move {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        *calls.lock().unwrap(),
        0,
        "nothing can run without the database"
    );
    proxy.start().await;
    // Three attempts fail the first copy for good; the next copy runs a period later.
    let until = Instant::now() + Duration::from_secs(15);
    while *calls.lock().unwrap() < 4 {
        assert!(Instant::now() < until, "the recurring job stopped for good");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    run.await.unwrap().unwrap();
    let failed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE kind = 'nightly' AND status = 'failed'",
    )
    .fetch_one(&app.state.db.write)
    .await
    .unwrap();
    assert!(failed >= 1);
}

/// `till worker` answers its own health check and Prometheus scrape: healthy while its loops
/// turn and PostgreSQL answers, with job outcomes counted per kind.
#[tokio::test]
async fn the_worker_process_serves_health_and_metrics() {
    let app = TestApp::spawn().await;
    let db = app.state.config.database.url.clone();
    let db = secrecy::ExposeSecret::expose_secret(&db).to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let id = enqueue(&app, NewJob::new("test.slow_effect", json!({"ms": 10}))).await;
    let mut worker = spawn_worker_with(&db, "probe", &format!("127.0.0.1:{port}"));
    wait_status(&app, id, "done", Duration::from_secs(15)).await;
    let http = reqwest::Client::new();
    let health: serde_json::Value = http
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["database"], "up");
    assert!(health["worker"].as_str().unwrap().starts_with("probe"));
    let metrics = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    worker.kill().ok();
    worker.wait().ok();
    assert!(metrics.contains("till_worker_up 1"), "{metrics}");
    assert!(metrics.contains("till_database_up 1"), "{metrics}");
    assert!(
        metrics.contains("till_jobs_oldest_due_seconds"),
        "{metrics}"
    );
    assert!(metrics.contains("till_worker_backlog"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("till_worker_jobs_total")
                && l.contains(r#"kind="test.slow_effect""#)
                && l.contains(r#"outcome="done""#)
                && l.ends_with(" 1")),
        "{metrics}"
    );
}
