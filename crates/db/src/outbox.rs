//! The transactional outbox: events are written in the same transaction as the change they
//! describe, then published by one instance at a time in `seq` order.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::AssertSqlSafe;
use sqlx::{PgConnection, PgPool};

use crate::DbError;

/// Advisory-lock key held by the active publisher; one publisher keeps `seq` in delivery order.
const PUBLISHER_LOCK: i64 = 0x7469_6c6c_6f75_7462; // "tilloutb"

/// The PostgreSQL NOTIFY channel a publishing round signals on commit.
pub const PUBLISHED_CHANNEL: &str = "till_outbox_published";

/// An event as the live path (publisher, subscribers, WebSocket replay) reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub seq: i64,
    pub topic: String,
    /// The stored payload without its `data`, the whole changed object (~1.6 KB for an order):
    /// only webhooks send that, and `till worker` reads it from the table itself. Leaving it in
    /// PostgreSQL saves decoding, re-encoding and publishing it once per event on every instance.
    /// (A payload that is not an object passes through unchanged, where `- 'data'` would fail
    /// the whole batch.)
    pub payload: Value,
    pub created_at: DateTime<Utc>,
    /// What webhook receivers dedupe by; the same on every delivery of the event.
    pub event_id: uuid::Uuid,
}

/// The columns of an [`EventRow`], from `outbox` aliased `o` (a macro, so that `concat!` can
/// splice them into each query's literal text).
macro_rules! event_row_columns {
    () => {
        "o.id, o.seq, o.topic,
         CASE jsonb_typeof(o.payload) WHEN 'object' THEN o.payload - 'data'
              ELSE o.payload END AS payload,
         o.created_at, o.event_id"
    };
}

/// Records an event; call inside the transaction of the change.
pub async fn enqueue(
    conn: &mut PgConnection,
    topic: &str,
    payload: &Value,
) -> Result<i64, DbError> {
    Ok(
        sqlx::query_scalar("INSERT INTO outbox (topic, payload) VALUES ($1, $2) RETURNING id")
            .bind(topic)
            .bind(payload)
            .fetch_one(conn)
            .await?,
    )
}

/// In `conn`'s transaction: if no other instance is publishing, assigns `seq` to up to `limit`
/// unpublished events and returns them in `seq` order. `None` when another publisher is active.
/// The caller publishes them and commits; a rollback leaves them unpublished for the next round.
pub async fn claim(conn: &mut PgConnection, limit: i64) -> Result<Option<Vec<EventRow>>, DbError> {
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(PUBLISHER_LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(None);
    }
    // `seq` comes from a one-row counter moved in this transaction, not from a sequence: a
    // round that rolls back (Redis refused the publish) gives its numbers back, so the
    // published `seq`s have no holes and a receiver can tell a missed event from none.
    let mut rows: Vec<EventRow> = sqlx::query_as(concat!(
        "WITH pending AS (
             SELECT id, row_number() OVER (ORDER BY id) AS n
             FROM (SELECT id FROM outbox WHERE seq IS NULL ORDER BY id LIMIT $1 FOR UPDATE) p
         ), counter AS (
             UPDATE outbox_counter SET last_seq = last_seq + (SELECT count(*) FROM pending)
             WHERE id = 1 AND EXISTS (SELECT 1 FROM pending)
             RETURNING last_seq - (SELECT count(*) FROM pending) AS base
         )
         UPDATE outbox o SET seq = counter.base + pending.n, published_at = now()
         FROM pending, counter WHERE o.id = pending.id
         RETURNING ",
        event_row_columns!()
    ))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    if !rows.is_empty() {
        // Wakes webhook deliverers (LISTEN in `till worker`) when this round commits.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(PUBLISHED_CHANNEL)
            .execute(&mut *conn)
            .await?;
    }
    rows.sort_by_key(|r| r.seq);
    Ok(Some(rows))
}

/// Published events after `seq`, oldest first (catch-up for subscribers and clients).
pub async fn after(pool: &PgPool, seq: i64, limit: i64) -> Result<Vec<EventRow>, DbError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        event_row_columns!(),
        " FROM outbox o WHERE o.seq > $1 ORDER BY o.seq LIMIT $2"
    ))
    .bind(seq)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The newest published `seq` (0 when none).
pub async fn last_seq(pool: &PgPool) -> Result<i64, DbError> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(max(seq), 0) FROM outbox WHERE seq IS NOT NULL")
            .fetch_one(pool)
            .await?,
    )
}

/// Deletes published events older than `hours` (they stay a while for catch-up and for
/// `GET /events`), never one an active webhook endpoint has not been sent yet.
pub async fn purge_published(pool: &PgPool, hours: i64) -> Result<u64, DbError> {
    Ok(sqlx::query(
        "DELETE FROM outbox WHERE seq IS NOT NULL
           AND published_at < now() - make_interval(hours => $1::int)
           AND seq <= COALESCE((SELECT min(cursor_seq) FROM webhook_endpoints WHERE active), seq)",
    )
    .bind(hours)
    .execute(pool)
    .await?
    .rows_affected())
}

/// A published event as webhook receivers see it (a delivery's body, `GET /events`): `data`
/// already as JSON text, so neither parses the payload.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WireEvent {
    pub seq: i64,
    pub topic: String,
    pub created_at: DateTime<Utc>,
    pub event_id: uuid::Uuid,
    pub data: String,
    /// The endpoint a `ping` is addressed to.
    pub ping_endpoint: Option<String>,
}

/// `data` is the changed object the payload carries for webhooks (older events: the payload
/// minus its routing fields). Worked out here only, for deliveries and `GET /events` alike.
const WIRE_COLS: &str = "seq, topic, created_at, event_id, \
     COALESCE(payload -> 'data', payload - '{type,at,audience,customer_id}'::text[])::text AS data, \
     payload ->> 'endpoint_id' AS ping_endpoint";

/// Published events after `seq` (optionally of one type), oldest first: what webhook deliveries
/// send, and what `GET /events` gives a receiver reconciling what it may have missed.
pub async fn wire_after(
    pool: &PgPool,
    seq: i64,
    topic: Option<&str>,
    limit: i64,
) -> Result<Vec<WireEvent>, DbError> {
    let sql = format!(
        "SELECT {WIRE_COLS} FROM outbox
         WHERE seq > $1 AND ($2::text IS NULL OR topic = $2) ORDER BY seq LIMIT $3"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(seq)
        .bind(topic)
        .bind(limit)
        .fetch_all(pool)
        .await?)
}

/// The published events with these `seq`s, ready for webhook bodies (a batch of retries).
pub async fn wire_by_seqs(pool: &PgPool, seqs: &[i64]) -> Result<Vec<WireEvent>, DbError> {
    let sql = format!("SELECT {WIRE_COLS} FROM outbox WHERE seq = ANY($1)");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(seqs)
        .fetch_all(pool)
        .await?)
}
