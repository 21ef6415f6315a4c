//! Webhook endpoints, their deliveries and every attempt.
//!
//! Flow: the outbox publisher stamps a gap-free `seq` on each committed event → a worker leases
//! an endpoint that is behind ([`lease_endpoint`]), sends the events after its cursor, and
//! records them and moves the cursor in one statement ([`record_batch`]) → first attempts that
//! failed are retried from the delivery rows ([`claim`], [`settle`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::cursor::{self, Page};
use crate::DbError;

const ENDPOINT_COLS: &str = "id, url, events, description, active, disabled_reason, secret, \
     previous_secret, previous_valid_until, consecutive_failures, cursor_seq, created_at, \
     updated_at, version";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub active: bool,
    pub disabled_reason: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_valid_until: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    /// The last event this endpoint was sent (or skipped as not subscribed).
    pub cursor_seq: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl EndpointRow {
    /// The secrets that sign a delivery now: the current one, and the previous one during its
    /// grace period after a rotation.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut s = vec![self.secret.as_str()];
        if let (Some(prev), Some(until)) = (&self.previous_secret, self.previous_valid_until) {
            if until > now {
                s.push(prev);
            }
        }
        s
    }
}

pub struct NewEndpoint<'a> {
    pub id: Uuid,
    pub url: &'a str,
    pub events: &'a [String],
    pub description: &'a str,
    pub secret: &'a str,
    pub created_by: Uuid,
}

/// A new endpoint receives the events published from now on.
pub async fn insert(conn: &mut PgConnection, e: NewEndpoint<'_>) -> Result<EndpointRow, DbError> {
    let sql = format!(
        "INSERT INTO webhook_endpoints (id, url, events, description, secret, created_by,
                                        cursor_seq)
         VALUES ($1, $2, $3, $4, $5, $6, (SELECT last_seq FROM outbox_counter WHERE id = 1))
         RETURNING {ENDPOINT_COLS}"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(e.id)
        .bind(e.url)
        .bind(e.events)
        .bind(e.description)
        .bind(e.secret)
        .bind(e.created_by)
        .fetch_one(conn)
        .await?)
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<EndpointRow, DbError> {
    let sql = format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = $1");
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(DbError::NotFound)
}

pub async fn get_for_update(conn: &mut PgConnection, id: Uuid) -> Result<EndpointRow, DbError> {
    let sql = format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = $1 FOR UPDATE");
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(DbError::NotFound)
}

pub async fn list(
    pool: &PgPool,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> Result<Page<EndpointRow>, DbError> {
    let sql = format!(
        "SELECT {ENDPOINT_COLS} FROM webhook_endpoints
         WHERE ($1::timestamptz IS NULL OR (created_at, id) > ($1, $2))
         ORDER BY created_at, id LIMIT $3"
    );
    let rows: Vec<EndpointRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit as i64 + 1)
        .fetch_all(pool)
        .await?;
    Ok(Page::from_rows(rows, limit, |e| (e.created_at, e.id)))
}

pub fn decode_cursor(c: &str) -> Option<(DateTime<Utc>, Uuid)> {
    cursor::decode(c)
}

#[derive(Default)]
pub struct EndpointPatch<'a> {
    pub url: Option<&'a str>,
    pub events: Option<&'a [String]>,
    pub description: Option<&'a str>,
    /// `Some(true)` re-enables a disabled endpoint (its reason and failure count are cleared).
    pub active: Option<bool>,
}

pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    p: EndpointPatch<'_>,
) -> Result<EndpointRow, DbError> {
    let sql = format!(
        "UPDATE webhook_endpoints SET
             url = COALESCE($2, url), events = COALESCE($3, events),
             description = COALESCE($4, description), active = COALESCE($5, active),
             disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END,
             consecutive_failures = CASE WHEN $5 THEN 0 ELSE consecutive_failures END,
             -- Re-enabled: events from now on (those raised meanwhile are in GET /events).
             cursor_seq = CASE WHEN $5 AND NOT active
                               THEN (SELECT last_seq FROM outbox_counter WHERE id = 1)
                               ELSE cursor_seq END,
             updated_at = now(), version = version + 1
         WHERE id = $1 RETURNING {ENDPOINT_COLS}"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .bind(p.url)
        .bind(p.events)
        .bind(p.description)
        .bind(p.active)
        .fetch_one(conn)
        .await?)
}

/// Makes `secret` current; the old one keeps signing until `previous_valid_until`.
pub async fn rotate(
    conn: &mut PgConnection,
    id: Uuid,
    secret: &str,
    previous_valid_until: DateTime<Utc>,
) -> Result<EndpointRow, DbError> {
    let sql = format!(
        "UPDATE webhook_endpoints SET previous_secret = secret, secret = $2,
             previous_valid_until = $3, updated_at = now(), version = version + 1
         WHERE id = $1 RETURNING {ENDPOINT_COLS}"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .bind(secret)
        .bind(previous_valid_until)
        .fetch_one(conn)
        .await?)
}

/// Deletes an endpoint and its deliveries (with their attempts). Deliveries have no foreign key
/// to their endpoint (it cost every delivery row a lookup). The endpoint's row goes first, which
/// locks it until this transaction ends: a worker recording a batch for it (which locks the
/// same row) has either committed, and its rows are deleted by the second statement, or finds
/// the endpoint gone and writes nothing.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<bool, DbError> {
    let n = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// Deliveries

#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_sequence: i64,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub last_duration_ms: Option<i32>,
    #[serde(skip)]
    pub last_excerpt: Option<String>,
}

const DELIVERY_COLS: &str = "id, endpoint_id, event_id, event_seq AS event_sequence, event_type, \
     status, attempts, last_status_code, last_error, \
     CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at, delivered_at, \
     created_at, last_duration_ms, last_excerpt";

#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
#[schema(as = WebhookAttempt)]
pub struct AttemptRow {
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    /// The first bytes of the receiver's answer.
    pub response_excerpt: Option<String>,
}

/// Newest event first.
pub async fn deliveries(
    pool: &PgPool,
    endpoint_id: Uuid,
    status: Option<&str>,
    before_seq: Option<i64>,
    limit: usize,
) -> Result<Page<DeliveryRow>, DbError> {
    let sql = format!(
        "SELECT {DELIVERY_COLS} FROM webhook_deliveries
         WHERE endpoint_id = $1 AND ($2::text IS NULL OR status = $2)
           AND ($3::bigint IS NULL OR event_seq < $3)
         ORDER BY event_seq DESC LIMIT $4"
    );
    let rows: Vec<DeliveryRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(endpoint_id)
        .bind(status)
        .bind(before_seq)
        .bind(limit as i64 + 1)
        .fetch_all(pool)
        .await?;
    Ok(Page::from_rows(rows, limit, |d| d.event_sequence))
}

pub fn decode_delivery_cursor(c: &str) -> Option<i64> {
    cursor::decode(c)
}

pub async fn delivery(pool: &PgPool, id: Uuid) -> Result<DeliveryRow, DbError> {
    let sql = format!("SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE id = $1");
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(DbError::NotFound)
}

pub async fn attempts(pool: &PgPool, delivery_id: Uuid) -> Result<Vec<AttemptRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT attempt, started_at, duration_ms, status_code, error, response_excerpt
         FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt",
    )
    .bind(delivery_id)
    .fetch_all(pool)
    .await?)
}

/// Sends the delivery again now, with one more attempt allowed if it had used them all.
pub async fn retry(conn: &mut PgConnection, id: Uuid) -> Result<DeliveryRow, DbError> {
    let sql = format!(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(),
             max_attempts = GREATEST(max_attempts, attempts + 1), delivered_at = NULL
         WHERE id = $1 RETURNING {DELIVERY_COLS}"
    );
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(DbError::NotFound)
}

/// Leases one active endpoint whose cursor is behind the last published event (the one served
/// longest ago first) for `lease_ms`. Concurrent workers lease different endpoints.
pub async fn lease_endpoint(
    pool: &PgPool,
    worker: &str,
    lease_ms: i64,
) -> Result<Option<EndpointRow>, DbError> {
    let sql = format!(
        "UPDATE webhook_endpoints SET lease_owner = $1,
             lease_until = now() + make_interval(secs => $2::double precision / 1000)
         WHERE id = (
             SELECT id FROM webhook_endpoints
             WHERE active AND (lease_until IS NULL OR lease_until <= now())
               AND cursor_seq < (SELECT last_seq FROM outbox_counter WHERE id = 1)
             ORDER BY lease_until NULLS FIRST LIMIT 1
             FOR UPDATE SKIP LOCKED)
         RETURNING {ENDPOINT_COLS}"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(worker)
        .bind(lease_ms)
        .fetch_optional(pool)
        .await?)
}

/// One first attempt of an event sent from an endpoint's cursor.
#[derive(Debug, Clone)]
pub struct Sent {
    pub event_seq: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub outcome: Outcome,
}

/// Records a batch sent from an endpoint's cursor and moves the cursor to `scanned_to` (every
/// event up to it was either sent or not subscribed to), in one statement; the endpoint's run of
/// failures and its disabling as in [`settle`]. Nothing happens if this worker's lease was lost
/// (another worker is sending the same events again). Returns whether the lease was still held.
/// The endpoint is not leased again for `linger_ms` (see the dispatcher: a short batch waits for
/// more events rather than have every published order cost a lease round of its own).
#[allow(clippy::too_many_arguments)]
pub async fn record_batch(
    pool: &PgPool,
    worker: &str,
    endpoint_id: Uuid,
    scanned_to: i64,
    sent: &[Sent],
    max_attempts: i32,
    disable_after: i32,
    disable_reason: Option<&str>,
    linger_ms: i64,
) -> Result<bool, DbError> {
    let seq: Vec<i64> = sent.iter().map(|s| s.event_seq).collect();
    let event_id: Vec<Uuid> = sent.iter().map(|s| s.event_id).collect();
    let kind: Vec<&str> = sent.iter().map(|s| s.event_type.as_str()).collect();
    let o: Vec<&Outcome> = sent.iter().map(|s| &s.outcome).collect();
    let id: Vec<Uuid> = o.iter().map(|o| o.delivery_id).collect();
    let started: Vec<DateTime<Utc>> = o.iter().map(|o| o.started_at).collect();
    let duration: Vec<i32> = o.iter().map(|o| o.duration_ms).collect();
    let code: Vec<Option<i32>> = o.iter().map(|o| o.status_code).collect();
    let error: Vec<Option<String>> = o.iter().map(|o| o.error.clone()).collect();
    let excerpt: Vec<Option<String>> = o.iter().map(|o| o.excerpt.clone()).collect();
    let status: Vec<&str> = o.iter().map(|o| o.status).collect();
    let retry_at: Vec<Option<DateTime<Utc>>> = o.iter().map(|o| o.retry_at).collect();
    let (tail, any_success) = failure_run(o.iter().map(|o| o.status));
    let held: Option<bool> = sqlx::query_scalar(
        "WITH ep AS (
             SELECT id FROM webhook_endpoints WHERE id = $1 AND lease_owner = $2 FOR UPDATE
         ), o AS (
             SELECT * FROM unnest($3::uuid[], $4::bigint[], $5::uuid[], $6::text[],
                                  $7::timestamptz[], $8::int[], $9::int[], $10::text[],
                                  $11::text[], $12::text[], $13::timestamptz[])
                 AS o(id, seq, event_id, kind, started_at, duration_ms, code, error, excerpt,
                      status, retry_at)
             WHERE EXISTS (SELECT 1 FROM ep)
         ), ins AS (
             INSERT INTO webhook_deliveries (id, endpoint_id, event_seq, event_id, event_type,
                 status, attempts, max_attempts, next_attempt_at, last_status_code, last_error,
                 last_duration_ms, last_excerpt, delivered_at, created_at)
             SELECT o.id, $1, o.seq, o.event_id, o.kind, o.status, 1, $14,
                 COALESCE(o.retry_at, now()), o.code, o.error, o.duration_ms, o.excerpt,
                 CASE WHEN o.status = 'succeeded' THEN now() END, o.started_at
             FROM o
             ON CONFLICT (endpoint_id, event_seq) DO NOTHING
             RETURNING id, status
         ), att AS (
             -- A first-try success is recorded by its delivery row alone.
             INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms,
                                           status_code, error, response_excerpt)
             SELECT o.id, 1, o.started_at, o.duration_ms, o.code, o.error, o.excerpt
             FROM o JOIN ins ON ins.id = o.id WHERE o.status <> 'succeeded'
         )
         UPDATE webhook_endpoints e SET
             cursor_seq = GREATEST(cursor_seq, $15), lease_owner = NULL,
             lease_until = now() + make_interval(secs => $20::double precision / 1000),
             consecutive_failures = CASE WHEN $16 THEN $17 ELSE consecutive_failures + $17 END,
             active = CASE WHEN $18::text IS NOT NULL
                             OR (CASE WHEN $16 THEN $17 ELSE consecutive_failures + $17 END) >= $19
                           THEN false ELSE active END,
             disabled_reason = CASE
                 WHEN NOT active THEN disabled_reason
                 WHEN $18::text IS NOT NULL THEN $18
                 WHEN (CASE WHEN $16 THEN $17 ELSE consecutive_failures + $17 END) >= $19
                   THEN format('%s consecutive failed attempts', $19)
                 ELSE disabled_reason END
         FROM ep WHERE e.id = ep.id
         RETURNING true",
    )
    .bind(endpoint_id)
    .bind(worker)
    .bind(&id)
    .bind(&seq)
    .bind(&event_id)
    .bind(&kind)
    .bind(&started)
    .bind(&duration)
    .bind(&code)
    .bind(&error)
    .bind(&excerpt)
    .bind(&status)
    .bind(&retry_at)
    .bind(max_attempts)
    .bind(scanned_to)
    .bind(any_success)
    .bind(tail)
    .bind(disable_reason)
    .bind(disable_after)
    .bind(linger_ms)
    .fetch_optional(pool)
    .await?;
    Ok(held.unwrap_or(false))
}

/// Gives an endpoint's lease back without moving its cursor (nothing could be sent).
pub async fn release_endpoint(pool: &PgPool, worker: &str, id: Uuid) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE webhook_endpoints SET lease_owner = NULL, lease_until = now()
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(id)
    .bind(worker)
    .execute(pool)
    .await?;
    Ok(())
}

/// The failures at the end of a batch (attempts are in event order), and whether any succeeded.
fn failure_run<'a>(statuses: impl DoubleEndedIterator<Item = &'a str> + Clone) -> (i32, bool) {
    let total = statuses.clone().count();
    let tail = statuses.rev().take_while(|s| *s != "succeeded").count();
    (tail as i32, tail < total)
}

/// A delivery leased for sending.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_seq: i64,
    pub attempts: i32,
    pub max_attempts: i32,
}

/// Leases up to `limit` due deliveries of one endpoint (the one whose oldest due delivery waits
/// longest, among endpoints with nothing in flight) for `lease_ms`, counting the attempt. One
/// endpoint's deliveries are sent by one loop at a time, so a slow endpoint holds one loop and
/// never the others; `SKIP LOCKED` lets many workers claim side by side.
pub async fn claim(
    pool: &PgPool,
    worker: &str,
    limit: i64,
    lease_ms: i64,
) -> Result<Vec<Claimed>, DbError> {
    Ok(sqlx::query_as(
        "WITH ep AS (
             SELECT d.endpoint_id FROM webhook_deliveries d
             JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.active
             WHERE d.status = 'pending' AND d.next_attempt_at <= now()
               AND (d.locked_until IS NULL OR d.locked_until <= now())
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries f
                               WHERE f.endpoint_id = d.endpoint_id AND f.status = 'pending'
                                 AND f.locked_until > now())
             ORDER BY d.next_attempt_at LIMIT 1
         ), batch AS (
             SELECT d.id FROM webhook_deliveries d, ep
             WHERE d.endpoint_id = ep.endpoint_id AND d.status = 'pending'
               AND d.next_attempt_at <= now()
               AND (d.locked_until IS NULL OR d.locked_until <= now())
             ORDER BY d.event_seq LIMIT $2
             FOR UPDATE OF d SKIP LOCKED
         )
         UPDATE webhook_deliveries d
         SET locked_until = now() + make_interval(secs => $3::double precision / 1000),
             locked_by = $1, attempts = d.attempts + 1
         FROM batch WHERE d.id = batch.id
         RETURNING d.id, d.endpoint_id, d.event_seq, d.attempts, d.max_attempts",
    )
    .bind(worker)
    .bind(limit)
    .bind(lease_ms)
    .fetch_all(pool)
    .await?)
}

/// How one attempt went.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub delivery_id: Uuid,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub excerpt: Option<String>,
    /// `succeeded`, `failed` (for good) or `pending` (retry at `retry_at`).
    pub status: &'static str,
    pub retry_at: Option<DateTime<Utc>>,
}

/// Records a batch of attempts of one endpoint, sets each delivery's new state (only if this
/// worker still holds its lease), and keeps the endpoint's run of consecutive failures:
/// reset by a success, disabled at `disable_after` or by `disable_reason` (a 410).
/// Returns the endpoint's `disabled_reason` if this call disabled it.
pub async fn settle(
    pool: &PgPool,
    worker: &str,
    endpoint_id: Uuid,
    outcomes: &[Outcome],
    disable_after: i32,
    disable_reason: Option<&str>,
) -> Result<Option<String>, DbError> {
    if outcomes.is_empty() {
        return Ok(None);
    }
    let mut tx = pool.begin().await?;
    let ids: Vec<Uuid> = outcomes.iter().map(|o| o.delivery_id).collect();
    let attempt: Vec<i32> = outcomes.iter().map(|o| o.attempt).collect();
    let started: Vec<DateTime<Utc>> = outcomes.iter().map(|o| o.started_at).collect();
    let duration: Vec<i32> = outcomes.iter().map(|o| o.duration_ms).collect();
    let code: Vec<Option<i32>> = outcomes.iter().map(|o| o.status_code).collect();
    let error: Vec<Option<String>> = outcomes.iter().map(|o| o.error.clone()).collect();
    let excerpt: Vec<Option<String>> = outcomes.iter().map(|o| o.excerpt.clone()).collect();
    let status: Vec<&str> = outcomes.iter().map(|o| o.status).collect();
    let retry_at: Vec<Option<DateTime<Utc>>> = outcomes.iter().map(|o| o.retry_at).collect();
    sqlx::query(
        "WITH o AS (
             SELECT * FROM unnest($1::uuid[], $2::int[], $3::timestamptz[], $4::int[], $5::int[],
                                  $6::text[], $7::text[], $8::text[], $9::timestamptz[])
                 AS o(id, attempt, started_at, duration_ms, code, error, excerpt, status, retry_at)
         ), att AS (
             INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms,
                                           status_code, error, response_excerpt)
             SELECT id, attempt, started_at, duration_ms, code, error, excerpt FROM o
             ON CONFLICT DO NOTHING
         )
         UPDATE webhook_deliveries d SET
             status = o.status, last_status_code = o.code, last_error = o.error,
             last_duration_ms = o.duration_ms, last_excerpt = o.excerpt,
             next_attempt_at = COALESCE(o.retry_at, d.next_attempt_at),
             delivered_at = CASE WHEN o.status = 'succeeded' THEN now() END,
             locked_until = NULL, locked_by = NULL
         FROM o WHERE d.id = o.id AND d.locked_by = $10 AND d.status = 'pending'",
    )
    .bind(&ids)
    .bind(&attempt)
    .bind(&started)
    .bind(&duration)
    .bind(&code)
    .bind(&error)
    .bind(&excerpt)
    .bind(&status)
    .bind(&retry_at)
    .bind(worker)
    .execute(&mut *tx)
    .await?;
    let (tail_failures, any_success) = failure_run(outcomes.iter().map(|o| o.status));
    let disabled: Option<Option<String>> = sqlx::query_scalar(
        "UPDATE webhook_endpoints SET
             consecutive_failures = CASE WHEN $2 THEN $3 ELSE consecutive_failures + $3 END,
             active = CASE WHEN $4::text IS NOT NULL
                             OR (CASE WHEN $2 THEN $3 ELSE consecutive_failures + $3 END) >= $5
                           THEN false ELSE active END,
             disabled_reason = CASE
                 WHEN NOT active THEN disabled_reason
                 WHEN $4::text IS NOT NULL THEN $4
                 WHEN (CASE WHEN $2 THEN $3 ELSE consecutive_failures + $3 END) >= $5
                   THEN format('%s consecutive failed attempts', $5)
                 ELSE disabled_reason END,
             updated_at = now()
         WHERE id = $1
         RETURNING CASE WHEN NOT active THEN disabled_reason END",
    )
    .bind(endpoint_id)
    .bind(any_success)
    .bind(tail_failures)
    .bind(disable_reason)
    .bind(disable_after)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(disabled.flatten())
}

/// Deletes deliveries (and their attempts) older than the event retention.
pub async fn purge(pool: &PgPool, days: i64) -> Result<u64, DbError> {
    Ok(sqlx::query(
        "DELETE FROM webhook_deliveries
         WHERE status <> 'pending' AND created_at < now() - make_interval(days => $1::int)",
    )
    .bind(days)
    .execute(pool)
    .await?
    .rows_affected())
}
