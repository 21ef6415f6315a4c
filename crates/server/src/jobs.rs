//! The job kinds `till worker` runs in production, and (behind `TILL_WORKER_TEST_JOBS=1`) two
//! kinds the worker tests use to observe retries and crash recovery through a real process.

use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use till_db::audit::{self, Actor};
use till_db::{jobs::JobRow, outbox};
use till_http::AppState;

use crate::worker::{Worker, WorkerConfig};

/// Delivered events stay this long so reconnecting clients can replay them.
const OUTBOX_KEEP_HOURS: i64 = 24;
const DONE_JOBS_KEEP_HOURS: i64 = 72;

pub fn production_worker(state: AppState, config: WorkerConfig) -> Worker {
    let mut w = Worker::new(state, config);
    w.register("outbox.purge", |state, _job| async move {
        let n = outbox::purge_published(&state.db.write, OUTBOX_KEEP_HOURS).await?;
        tracing::info!(deleted = n, "purged delivered events");
        Ok(())
    })
    .every("outbox.purge", Duration::from_secs(3600));
    w.register("jobs.purge", |state, _job| async move {
        let n = till_db::jobs::purge_done(&state.db.write, DONE_JOBS_KEEP_HOURS).await?;
        tracing::info!(deleted = n, "purged finished jobs");
        Ok(())
    })
    .every("jobs.purge", Duration::from_secs(6 * 3600));
    if std::env::var("TILL_WORKER_TEST_JOBS").as_deref() == Ok("1") {
        register_test_jobs(&mut w);
    }
    w
}

/// Records the one observable effect of a test job.
async fn effect(state: &AppState, job: &JobRow) -> anyhow::Result<()> {
    let mut conn = state.db.write.acquire().await?;
    audit::record(
        &mut conn,
        &Actor::default(),
        "test.effect",
        "job",
        job.id,
        json!({"attempt": job.attempts}),
    )
    .await?;
    Ok(())
}

/// Job kinds for tests only; `till worker` registers them when `TILL_WORKER_TEST_JOBS=1`.
pub fn register_test_jobs(w: &mut Worker) {
    // Fails until attempt `succeed_on`, then has its effect.
    w.register("test.flaky", |state, job| async move {
        let succeed_on = job.payload["succeed_on"].as_i64().context("succeed_on")?;
        if i64::from(job.attempts) < succeed_on {
            anyhow::bail!("planned failure on attempt {}", job.attempts);
        }
        effect(&state, &job).await
    });
    // Works for `ms` milliseconds, then has its effect: a worker killed meanwhile leaves none.
    w.register("test.slow_effect", |state, job| async move {
        let ms = job.payload["ms"].as_u64().context("ms")?;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        effect(&state, &job).await
    });
}
