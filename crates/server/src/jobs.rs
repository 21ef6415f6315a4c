//! The job kinds `till worker` runs in production, and (behind `TILL_WORKER_TEST_JOBS=1`) two
//! kinds the worker tests use to observe retries and crash recovery through a real process.

use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use till_app::App;
use till_db::audit::{self, Actor};
use till_db::{jobs::JobRow, outbox};

use crate::worker::{Worker, WorkerConfig};

const DONE_JOBS_KEEP_HOURS: i64 = 72;
/// docs/api.md: idempotency keys are kept at least 24 h.
const IDEMPOTENCY_KEEP_HOURS: i64 = 24;

/// Raises `stock.low` to staff when a product's stock crossed its threshold (the job is
/// enqueued in the transaction that moved the stock). Skipped if it was restocked meanwhile.
async fn stock_low_alert(app: &App, job: &JobRow) -> anyhow::Result<()> {
    let id: uuid::Uuid = job.payload["product_id"]
        .as_str()
        .context("product_id")?
        .parse()?;
    let mut tx = app.db.write.begin().await?;
    let Some(p) = till_db::products::get(&mut tx, id, true).await? else {
        return Ok(());
    };
    if !p.track_stock || p.stock_on_hand > p.low_stock_threshold {
        return Ok(());
    }
    let payload = json!({
        "type": "stock.low",
        "at": chrono::Utc::now(),
        "audience": "staff",
        "product": {
            "id": p.id,
            "sku": p.sku,
            "name": p.name,
            "stock_on_hand": p.stock_on_hand,
            "low_stock_threshold": p.low_stock_threshold,
        },
    });
    outbox::enqueue(&mut tx, "stock.low", &payload).await?;
    tx.commit().await?;
    Ok(())
}

pub fn production_worker(app: App, config: WorkerConfig) -> Worker {
    let mut w = Worker::new(app, config);
    w.register("outbox.purge", |app, _job| async move {
        // Published events stay EVENT_RETENTION_DAYS for `GET /events` and live replay, and
        // their webhook deliveries as long.
        let hours = (app.config.webhooks.event_retention.as_secs() / 3600) as i64;
        let n = outbox::purge_published(&app.db.write, hours).await?;
        let d = till_db::webhooks::purge(&app.db.write, hours / 24).await?;
        tracing::info!(deleted = n, deliveries = d, "purged old events");
        Ok(())
    })
    .every("outbox.purge", Duration::from_secs(3600));
    w.register("orders.expire_unpaid", |app, _job| async move {
        let n = till_app::orders::cancel_expired_unpaid(&app).await?;
        if n > 0 {
            tracing::info!(cancelled = n, "cancelled unpaid online orders");
        }
        Ok(())
    })
    .every("orders.expire_unpaid", Duration::from_secs(60));
    w.register("idempotency.purge", |app, _job| async move {
        let n =
            till_db::idempotency::purge_older_than(&app.db.write, IDEMPOTENCY_KEEP_HOURS).await?;
        tracing::info!(deleted = n, "purged idempotency keys");
        Ok(())
    })
    .every("idempotency.purge", Duration::from_secs(3600));
    w.register("stock.low_alert", |app, job| async move {
        stock_low_alert(&app, &job).await
    });
    w.register("jobs.purge", |app, _job| async move {
        let n = till_db::jobs::purge_done(&app.db.write, DONE_JOBS_KEEP_HOURS).await?;
        tracing::info!(deleted = n, "purged finished jobs");
        Ok(())
    })
    .every("jobs.purge", Duration::from_secs(6 * 3600));
    w.register("sessions.purge", |app, _job| async move {
        let n = till_db::sessions::purge_expired(&app.db.write).await?;
        tracing::info!(deleted = n, "purged expired sessions");
        Ok(())
    })
    .every("sessions.purge", Duration::from_secs(3600));
    if std::env::var("TILL_WORKER_TEST_JOBS").as_deref() == Ok("1") {
        register_test_jobs(&mut w);
    }
    w
}

/// Records the one observable effect of a test job.
async fn effect(app: &App, job: &JobRow) -> anyhow::Result<()> {
    let mut conn = app.db.write.acquire().await?;
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
    w.register("test.flaky", |app, job| async move {
        let succeed_on = job.payload["succeed_on"].as_i64().context("succeed_on")?;
        if i64::from(job.attempts) < succeed_on {
            anyhow::bail!("planned failure on attempt {}", job.attempts);
        }
        effect(&app, &job).await
    });
    // Works for `ms` milliseconds, then has its effect: a worker killed meanwhile leaves none.
    w.register("test.slow_effect", |app, job| async move {
        let ms = job.payload["ms"].as_u64().context("ms")?;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        effect(&app, &job).await
    });
}
