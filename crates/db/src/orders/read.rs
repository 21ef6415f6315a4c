//! Reading orders in bulk: the filtered, keyset-paginated list, the staff board, and the
//! worker's queries for expired online orders that are not fully paid.

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use till_domain::{Channel, OrderStatus};
use uuid::Uuid;

use super::{into_orders, select_whole, Order, OrderRow};
use crate::cursor::{self, Page};
use crate::DbError;

/// Filters of `GET /orders` (and `/customers/{id}/orders`). `created_before` is exclusive.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<OrderStatus>,
    pub channel: Option<Channel>,
    pub customer_id: Option<Uuid>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
}

pub type ListCursor = (DateTime<Utc>, Uuid);

pub fn decode_cursor(c: &str) -> Option<ListCursor> {
    cursor::decode(c)
}

/// Newest first, keyset on (created_at, id). Only the filters given reach the SQL, so each
/// combination gets a plan that can use its index.
pub async fn list(
    pool: &PgPool,
    f: &Filter,
    after: Option<ListCursor>,
    limit: usize,
) -> Result<Page<Order>, DbError> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(select_whole());
    q.push(" FROM orders o WHERE TRUE");
    if let Some(s) = f.status {
        q.push(" AND o.status = ").push_bind(s.as_str());
    }
    if let Some(c) = f.channel {
        q.push(" AND o.channel = ").push_bind(c.as_str());
    }
    if let Some(c) = f.customer_id {
        q.push(" AND o.customer_id = ").push_bind(c);
    }
    if let Some(t) = f.created_from {
        q.push(" AND o.created_at >= ").push_bind(t);
    }
    if let Some(t) = f.created_before {
        q.push(" AND o.created_at < ").push_bind(t);
    }
    if let Some((at, id)) = after {
        q.push(" AND (o.created_at, o.id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY o.created_at DESC, o.id DESC LIMIT ")
        .push_bind(limit as i64 + 1);
    let rows: Vec<OrderRow> = q.build_query_as().fetch_all(pool).await?;
    Ok(Page::from_rows(into_orders(rows)?, limit, |o| {
        (o.created_at, o.id)
    }))
}

/// Statuses shown as board columns, in board order.
pub const BOARD_COLUMNS: [OrderStatus; 5] = [
    OrderStatus::Pending,
    OrderStatus::Confirmed,
    OrderStatus::Preparing,
    OrderStatus::Ready,
    OrderStatus::OutForDelivery,
];

pub struct Board {
    /// (status, count of orders in it) for every board column, zero included.
    pub counts: Vec<(OrderStatus, i64)>,
    /// Up to `per_column` oldest orders of each column, oldest first.
    pub columns: Vec<Order>,
    /// Up to `done` completed/delivered orders, most recently changed first.
    pub recent_done: Vec<Order>,
}

/// The board in three statements: counts, the columns (one index range per status via
/// LATERAL), and the recently finished orders.
pub async fn board(pool: &PgPool, per_column: i64, done: i64) -> Result<Board, DbError> {
    let statuses: Vec<&str> = BOARD_COLUMNS.iter().map(|s| s.as_str()).collect();
    let counted: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM orders WHERE status = ANY($1) GROUP BY status",
    )
    .bind(&statuses)
    .fetch_all(pool)
    .await?;
    let counts = BOARD_COLUMNS
        .iter()
        .map(|s| {
            let n = counted
                .iter()
                .find(|(st, _)| st == s.as_str())
                .map_or(0, |c| c.1);
            (*s, n)
        })
        .collect();
    let sql = format!(
        "{} FROM unnest($1::text[]) AS s(st)
         CROSS JOIN LATERAL (SELECT * FROM orders WHERE status = s.st
                             ORDER BY created_at, id LIMIT $2) o
         ORDER BY o.created_at, o.id",
        select_whole()
    );
    let columns: Vec<OrderRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(&statuses)
        .bind(per_column)
        .fetch_all(pool)
        .await?;
    let sql = format!(
        "{} FROM orders o WHERE o.status IN ('completed', 'delivered')
         ORDER BY o.updated_at DESC, o.id DESC LIMIT $1",
        select_whole()
    );
    let recent: Vec<OrderRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(done)
        .fetch_all(pool)
        .await?;
    Ok(Board {
        counts,
        columns: into_orders(columns)?,
        recent_done: into_orders(recent)?,
    })
}

/// Whether a customer record exists.
pub async fn customer_exists(conn: &mut PgConnection, id: Uuid) -> Result<bool, DbError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1)")
            .bind(id)
            .fetch_one(conn)
            .await?,
    )
}

/// `online` orders still `pending`, not fully paid and with no money on them (nothing paid, or
/// all of it refunded), created more than `ttl_secs` ago: what the worker may cancel.
pub async fn expired_open(pool: &PgPool, ttl_secs: i64, limit: i64) -> Result<Vec<Uuid>, DbError> {
    expired(pool, ttl_secs, limit, "paid_cents = refunded_cents").await
}

/// Like [`expired_open`], but with money on them (`paid − refunded > 0`): the worker must not
/// cancel these (a refund is a manager's decision), so it only reports them.
pub async fn expired_with_money(
    pool: &PgPool,
    ttl_secs: i64,
    limit: i64,
) -> Result<Vec<Uuid>, DbError> {
    expired(pool, ttl_secs, limit, "paid_cents > refunded_cents").await
}

async fn expired(
    pool: &PgPool,
    ttl_secs: i64,
    limit: i64,
    money: &'static str,
) -> Result<Vec<Uuid>, DbError> {
    // The predicate matches the partial index `orders_open_online_idx`.
    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT id FROM orders
         WHERE status = 'pending' AND channel = 'online' AND paid_cents < total_cents
           AND {money}
           AND created_at < now() - make_interval(secs => $1::float8)
         ORDER BY created_at LIMIT $2"
    )))
    .bind(ttl_secs as f64)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
