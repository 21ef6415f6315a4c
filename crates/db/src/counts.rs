//! Stock counts at one location, with as-of-count semantics.
//!
//! Each counted line is stamped by the statement that records it: `counted_at`, and the
//! location's on hand as that statement's snapshot saw it (`expected_at_count`: every movement committed
//! before, none committed after). Applying makes the stock `counted + Σ movements at that
//! location after the stamp`. Since the stock now is `expected_at_count + Σ movements after the
//! stamp` (every change of `stock_levels` is a movement), that is the stock now plus
//! `counted − expected_at_count`: the line's `delta`, written as one `count` movement. A sale
//! made while the shelf was being counted is therefore neither lost nor counted twice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::AssertSqlSafe;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::cursor::{self, Page};
use crate::DbError;

/// One counted product.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CountLine {
    pub product_id: Uuid,
    pub counted: i64,
    pub counted_at: DateTime<Utc>,
    /// On hand at the location when the line was counted.
    pub expected_at_count: i64,
    /// `counted − expected_at_count`: what applying adds.
    pub delta: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: Uuid,
    location_id: Uuid,
    status: String,
    note: Option<String>,
    created_by: Option<Uuid>,
    applied_by: Option<Uuid>,
    applied_at: Option<DateTime<Utc>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    lines: Json<Vec<CountLine>>,
}

/// A whole stock count.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StockCount {
    pub id: Uuid,
    pub location_id: Uuid,
    /// `open`, `applied` or `cancelled`.
    pub status: String,
    pub lines: Vec<CountLine>,
    pub note: Option<String>,
    pub created_by: Option<Uuid>,
    pub applied_by: Option<Uuid>,
    pub applied_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Row> for StockCount {
    fn from(r: Row) -> Self {
        StockCount {
            id: r.id,
            location_id: r.location_id,
            status: r.status,
            lines: r.lines.0,
            note: r.note,
            created_by: r.created_by,
            applied_by: r.applied_by,
            applied_at: r.applied_at,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const SELECT: &str = "SELECT c.id, c.location_id, c.status, c.note, c.created_by, c.applied_by, \
    c.applied_at, c.version, c.created_at, c.updated_at, \
    (SELECT COALESCE(json_agg(json_build_object('product_id', l.product_id, \
        'counted', l.counted, 'counted_at', l.counted_at, \
        'expected_at_count', l.expected_at_count, 'delta', l.counted - l.expected_at_count) \
        ORDER BY l.counted_at, l.product_id), '[]') \
     FROM stock_count_lines l WHERE l.count_id = c.id) AS lines \
    FROM stock_counts c";

pub async fn insert(
    conn: &mut PgConnection,
    location_id: Uuid,
    note: Option<&str>,
    by: Uuid,
) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO stock_counts (id, location_id, note, created_by) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(location_id)
    .bind(note)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(id)
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<StockCount>, DbError> {
    let row: Option<Row> = sqlx::query_as(AssertSqlSafe(format!("{SELECT} WHERE c.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(StockCount::from))
}

/// Locks the count row for the rest of the transaction and returns it whole.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<StockCount>, DbError> {
    let locked: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM stock_counts WHERE id = $1 FOR NO KEY UPDATE")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    if locked.is_none() {
        return Ok(None);
    }
    get(conn, id).await
}

/// Records (or re-records) counted lines, each stamped by this one statement: its time, and
/// the location's on hand as the statement's snapshot sees it.
pub async fn put_lines(
    conn: &mut PgConnection,
    id: Uuid,
    location_id: Uuid,
    lines: &[(Uuid, i64)],
) -> Result<(), DbError> {
    let ids: Vec<Uuid> = lines.iter().map(|l| l.0).collect();
    let counted: Vec<i64> = lines.iter().map(|l| l.1).collect();
    sqlx::query(
        "INSERT INTO stock_count_lines (count_id, product_id, counted, counted_at,
                                        expected_at_count)
         SELECT $1, u.product_id, u.counted, clock_timestamp(),
                COALESCE(till_on_hand(u.product_id, $2), 0)
         FROM unnest($3::uuid[], $4::bigint[]) AS u(product_id, counted)
         ON CONFLICT (count_id, product_id) DO UPDATE
         SET counted = EXCLUDED.counted, counted_at = EXCLUDED.counted_at,
             expected_at_count = EXCLUDED.expected_at_count",
    )
    .bind(id)
    .bind(location_id)
    .bind(&ids)
    .bind(&counted)
    .execute(&mut *conn)
    .await?;
    touch(conn, id).await
}

/// Bumps the version of a count that changed.
async fn touch(conn: &mut PgConnection, id: Uuid) -> Result<(), DbError> {
    sqlx::query("UPDATE stock_counts SET version = version + 1, updated_at = now() WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a locked count `applied` or `cancelled`.
pub async fn finish(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    by: Uuid,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE stock_counts SET status = $2,
             applied_by = CASE WHEN $2 = 'applied' THEN $3 END,
             applied_at = CASE WHEN $2 = 'applied' THEN now() END,
             version = version + 1, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

/// Keyset cursor of the count list: the last row's (created_at, id).
pub type CountCursor = (DateTime<Utc>, Uuid);

pub fn decode_cursor(c: &str) -> Option<CountCursor> {
    cursor::decode(c)
}

/// Counts newest first, optionally of one location and/or status.
pub async fn list(
    pool: &PgPool,
    location_id: Option<Uuid>,
    status: Option<&str>,
    before: Option<CountCursor>,
    limit: usize,
) -> Result<Page<StockCount>, DbError> {
    let rows: Vec<Row> = sqlx::query_as(AssertSqlSafe(format!(
        "{SELECT} WHERE ($1::uuid IS NULL OR c.location_id = $1)
           AND ($2::text IS NULL OR c.status = $2)
           AND ($3::timestamptz IS NULL OR (c.created_at, c.id) < ($3, $4))
         ORDER BY c.created_at DESC, c.id DESC LIMIT $5"
    )))
    .bind(location_id)
    .bind(status)
    .bind(before.map(|b| b.0))
    .bind(before.map(|b| b.1))
    .bind(limit as i64 + 1)
    .fetch_all(pool)
    .await?;
    let rows: Vec<StockCount> = rows.into_iter().map(StockCount::from).collect();
    Ok(Page::from_rows(rows, limit, |c| (c.created_at, c.id)))
}
