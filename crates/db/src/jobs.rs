//! The PostgreSQL job queue worked by `till worker`: claim with `FOR UPDATE SKIP LOCKED`, a lease
//! so a crashed worker's job runs again, retries with backoff, priorities, delayed and
//! recurring jobs (a `dedupe_key` keeps one pending copy of each).

use sqlx::AssertSqlSafe;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::cursor::Page;
use crate::DbError;

#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
#[schema(as = Job)]
pub struct JobRow {
    pub id: Uuid,
    pub kind: String,
    pub payload: Value,
    pub status: String,
    pub priority: i32,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub dedupe_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLS: &str =
    "id, kind, payload, status, priority, attempts, max_attempts, run_at, locked_until, \
                    locked_by, last_error, dedupe_key, created_at, updated_at";

#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub payload: Value,
    pub priority: i32,
    pub delay: Duration,
    pub max_attempts: i32,
    /// At most one queued/running job per key (recurring jobs, alerts).
    pub dedupe_key: Option<&'a str>,
}

impl<'a> NewJob<'a> {
    pub fn new(kind: &'a str, payload: Value) -> Self {
        NewJob {
            kind,
            payload,
            priority: 0,
            delay: Duration::ZERO,
            max_attempts: 10,
            dedupe_key: None,
        }
    }
}

/// Enqueues a job; `None` when a pending job with the same `dedupe_key` already exists.
/// Call inside the transaction of the change that needs the job, so it exists iff the change does.
pub async fn enqueue(conn: &mut PgConnection, job: NewJob<'_>) -> Result<Option<Uuid>, DbError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO jobs (id, kind, payload, priority, run_at, max_attempts, dedupe_key)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5), $6, $7)
         ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running')
         DO NOTHING RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(job.kind)
    .bind(job.payload)
    .bind(job.priority)
    .bind(job.delay.as_secs_f64())
    .bind(job.max_attempts)
    .bind(job.dedupe_key)
    .fetch_optional(conn)
    .await?)
}

/// Takes the most urgent due job (or one whose lease ran out) for `worker`, leased for `lease`.
pub async fn claim(
    pool: &PgPool,
    worker: &str,
    lease: Duration,
    kinds: &[String],
) -> Result<Option<JobRow>, DbError> {
    let sql = format!(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $1,
                locked_until = now() + make_interval(secs => $2), updated_at = now()
         WHERE id = (
             SELECT id FROM jobs
             WHERE ((status = 'queued' AND run_at <= now()) OR (status = 'running' AND locked_until < now()))
               AND kind = ANY($3)
             ORDER BY priority DESC, run_at, id
             LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING {COLS}"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(worker)
        .bind(lease.as_secs_f64())
        .bind(kinds)
        .fetch_optional(pool)
        .await?)
}

/// Extends the lease of a job this worker still holds; false when it lost it.
pub async fn heartbeat(
    pool: &PgPool,
    id: Uuid,
    worker: &str,
    lease: Duration,
) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "UPDATE jobs SET locked_until = now() + make_interval(secs => $3), updated_at = now()
         WHERE id = $1 AND locked_by = $2 AND status = 'running'",
    )
    .bind(id)
    .bind(worker)
    .bind(lease.as_secs_f64())
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// Marks the job done (only if this worker still holds it).
pub async fn complete(conn: &mut PgConnection, id: Uuid, worker: &str) -> Result<bool, DbError> {
    Ok(sqlx::query(
        "UPDATE jobs SET status = 'done', locked_until = NULL, last_error = NULL, updated_at = now()
         WHERE id = $1 AND locked_by = $2 AND status = 'running'",
    )
    .bind(id)
    .bind(worker)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Records a failure: queued again after `retry_in`, or `failed` for good when `None`.
pub async fn fail(
    pool: &PgPool,
    id: Uuid,
    worker: &str,
    error: &str,
    retry_in: Option<Duration>,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE jobs SET status = CASE WHEN $4::float8 IS NULL THEN 'failed' ELSE 'queued' END,
                run_at = CASE WHEN $4::float8 IS NULL THEN run_at ELSE now() + make_interval(secs => $4) END,
                locked_until = NULL, locked_by = NULL, last_error = $3, updated_at = now()
         WHERE id = $1 AND locked_by = $2",
    )
    .bind(id)
    .bind(worker)
    .bind(error)
    .bind(retry_in.map(|d| d.as_secs_f64()))
    .execute(pool)
    .await?;
    Ok(())
}

/// Gives a job back unfinished (graceful shutdown): due at once, the attempt not counted.
pub async fn release(pool: &PgPool, id: Uuid, worker: &str) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE jobs SET status = 'queued', run_at = now(), attempts = greatest(attempts - 1, 0),
                locked_until = NULL, locked_by = NULL, updated_at = now()
         WHERE id = $1 AND locked_by = $2 AND status = 'running'",
    )
    .bind(id)
    .bind(worker)
    .execute(pool)
    .await?;
    Ok(())
}

/// Jobs queued or running: the backlog shown on `/health/detailed`.
pub async fn backlog(pool: &PgPool) -> Result<i64, DbError> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')")
            .fetch_one(pool)
            .await?,
    )
}

/// The queue as monitoring sees it (`/metrics`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueStats {
    /// Queued or running.
    pub backlog: i64,
    /// Given up after their last attempt (kept for inspection and retry).
    pub failed: i64,
    /// How long the oldest due, unclaimed job has waited; 0 when none waits. Grows without
    /// bound when no worker runs.
    pub oldest_due_seconds: f64,
}

/// Each figure is read through an index (`jobs_ready_idx`, `jobs_status_idx`), so a scrape stays
/// cheap however many finished jobs the table holds.
pub async fn stats(pool: &PgPool) -> Result<QueueStats, DbError> {
    let (backlog, failed, oldest_due_seconds): (i64, i64, f64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')),
                (SELECT count(*) FROM jobs WHERE status = 'failed'),
                COALESCE((SELECT extract(epoch FROM now() - min(run_at)) FROM jobs
                          WHERE status = 'queued' AND run_at <= now()), 0)::float8",
    )
    .fetch_one(pool)
    .await?;
    Ok(QueueStats {
        backlog,
        failed,
        oldest_due_seconds,
    })
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<JobRow, DbError> {
    let sql = format!("SELECT {COLS} FROM jobs WHERE id = $1");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(pool)
        .await?)
}

/// Newest first, optionally one status; keyset on (created_at, id).
pub async fn list(
    pool: &PgPool,
    status: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> Result<Page<JobRow>, DbError> {
    let sql = format!(
        "SELECT {COLS} FROM jobs
         WHERE ($1::text IS NULL OR status = $1)
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4"
    );
    let rows: Vec<JobRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(status)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit as i64 + 1)
        .fetch_all(pool)
        .await?;
    Ok(Page::from_rows(rows, limit, |j| (j.created_at, j.id)))
}

/// Deletes finished jobs older than `hours`.
pub async fn purge_done(pool: &PgPool, hours: i64) -> Result<u64, DbError> {
    Ok(sqlx::query(
        "DELETE FROM jobs WHERE status = 'done' AND updated_at < now() - make_interval(hours => $1::int)",
    )
    .bind(hours)
    .execute(pool)
    .await?
    .rows_affected())
}
