//! Orders with their lines, payments, refunds and status history.
//!
//! An order is always loaded whole, in one statement: the child rows come back as JSON arrays
//! from correlated subqueries, so a page of 100 orders is one round trip, not 1 + 4×100.
//! Writes take the order row with `FOR NO KEY UPDATE` (see [`lock`]) so that concurrent
//! payments, refunds and transitions on one order queue instead of racing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use till_domain::{Channel, Fulfilment, OrderStatus, PaymentMethod};
use uuid::Uuid;

use crate::cursor::{self, Page};
use crate::DbError;

/// A line as stored: price, tax rate and name copied from the product at order time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Line {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub unit_price_cents: i64,
    pub quantity: i64,
    pub tax_rate_bp: i64,
    #[serde(skip_serializing)]
    pub track_stock: bool,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub tax_cents: i64,
    pub total_cents: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payment {
    pub id: Uuid,
    pub method: PaymentMethod,
    pub amount_cents: i64,
    pub tendered_cents: Option<i64>,
    pub change_cents: i64,
    pub reference: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// One restocked product of a refund.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Restock {
    pub product_id: Uuid,
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refund {
    pub id: Uuid,
    pub amount_cents: i64,
    pub reason: String,
    pub restock: Vec<Restock>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: OrderStatus,
    pub at: DateTime<Utc>,
    pub by: Option<Uuid>,
}

/// The row as read, before the text columns are parsed into domain enums.
#[derive(sqlx::FromRow)]
struct OrderRow {
    id: Uuid,
    number: i64,
    channel: String,
    status: String,
    fulfilment: String,
    customer_id: Option<Uuid>,
    created_by: Option<Uuid>,
    subtotal_cents: i64,
    discount_cents: i64,
    tax_cents: i64,
    total_cents: i64,
    paid_cents: i64,
    refunded_cents: i64,
    discount: Option<Value>,
    note: Option<String>,
    delivery_address: Option<String>,
    currency: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    lines: Json<Vec<Line>>,
    payments: Json<Vec<Payment>>,
    refunds: Json<Vec<Refund>>,
    status_history: Json<Vec<StatusChange>>,
}

/// A whole order.
#[derive(Debug, Clone)]
pub struct Order {
    pub id: Uuid,
    pub number: i64,
    pub channel: Channel,
    pub status: OrderStatus,
    pub fulfilment: Fulfilment,
    pub customer_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub tax_cents: i64,
    pub total_cents: i64,
    pub paid_cents: i64,
    pub refunded_cents: i64,
    pub discount: Option<Value>,
    pub note: Option<String>,
    pub delivery_address: Option<String>,
    pub currency: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub lines: Vec<Line>,
    pub payments: Vec<Payment>,
    pub refunds: Vec<Refund>,
    pub status_history: Vec<StatusChange>,
}

fn parse<T: std::str::FromStr>(col: &str, v: &str) -> Result<T, DbError> {
    v.parse().map_err(|_| {
        DbError::Other(sqlx::Error::Decode(
            format!("orders.{col}: unexpected value {v:?}").into(),
        ))
    })
}

impl TryFrom<OrderRow> for Order {
    type Error = DbError;
    fn try_from(r: OrderRow) -> Result<Self, DbError> {
        Ok(Order {
            id: r.id,
            number: r.number,
            channel: parse("channel", &r.channel)?,
            status: parse("status", &r.status)?,
            fulfilment: parse("fulfilment", &r.fulfilment)?,
            customer_id: r.customer_id,
            created_by: r.created_by,
            subtotal_cents: r.subtotal_cents,
            discount_cents: r.discount_cents,
            tax_cents: r.tax_cents,
            total_cents: r.total_cents,
            paid_cents: r.paid_cents,
            refunded_cents: r.refunded_cents,
            discount: r.discount,
            note: r.note,
            delivery_address: r.delivery_address,
            currency: r.currency,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            lines: r.lines.0,
            payments: r.payments.0,
            refunds: r.refunds.0,
            status_history: r.status_history.0,
        })
    }
}

fn into_orders(rows: Vec<OrderRow>) -> Result<Vec<Order>, DbError> {
    rows.into_iter().map(Order::try_from).collect()
}

const HEAD_COLS: &str = "o.id, o.number, o.channel, o.status, o.fulfilment, o.customer_id, \
    o.created_by, o.subtotal_cents, o.discount_cents, o.tax_cents, o.total_cents, o.paid_cents, \
    o.refunded_cents, o.discount, o.note, o.delivery_address, o.currency, o.version, \
    o.created_at, o.updated_at";

/// Every column of [`OrderRow`] for rows aliased `o`.
fn select_whole() -> String {
    format!(
        "SELECT {HEAD_COLS},
           (SELECT COALESCE(json_agg(l ORDER BY l.line_no), '[]') FROM order_lines l WHERE l.order_id = o.id) AS lines,
           (SELECT COALESCE(json_agg(p ORDER BY p.created_at, p.id), '[]') FROM payments p WHERE p.order_id = o.id) AS payments,
           (SELECT COALESCE(json_agg(r ORDER BY r.created_at, r.id), '[]') FROM refunds r WHERE r.order_id = o.id) AS refunds,
           (SELECT COALESCE(json_agg(h ORDER BY h.seq), '[]') FROM order_status_history h WHERE h.order_id = o.id) AS status_history"
    )
}

/// A product as an order line needs it.
#[derive(Debug, Clone, sqlx::FromRow, Deserialize)]
pub struct ProductForOrder {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub tax_rate_bp: i32,
    pub active: bool,
    pub track_stock: bool,
}

/// The whole order, or `NotFound`.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Order, DbError> {
    let sql = format!("{} FROM orders o WHERE o.id = $1", select_whole());
    let row: OrderRow = sqlx::query_as(&sql).bind(id).fetch_one(conn).await?;
    row.try_into()
}

/// The money and state columns a write decides on.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Head {
    pub id: Uuid,
    status: String,
    fulfilment: String,
    pub customer_id: Option<Uuid>,
    pub total_cents: i64,
    pub paid_cents: i64,
    pub refunded_cents: i64,
    pub version: i64,
}

impl Head {
    pub fn status(&self) -> Result<OrderStatus, DbError> {
        parse("status", &self.status)
    }
    pub fn fulfilment(&self) -> Result<Fulfilment, DbError> {
        parse("fulfilment", &self.fulfilment)
    }
}

/// Locks the order row for the rest of the transaction and returns its head, or `NotFound`.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Head, DbError> {
    Ok(sqlx::query_as(
        "SELECT id, status, fulfilment, customer_id, total_cents, paid_cents, refunded_cents, version
         FROM orders WHERE id = $1 FOR NO KEY UPDATE",
    )
    .bind(id)
    .fetch_one(conn)
    .await?)
}

/// Moves a locked order to `to`, bumps its version and appends to its history.
pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    to: OrderStatus,
    by: Option<Uuid>,
) -> Result<(), DbError> {
    sqlx::query(
        "WITH u AS (
             UPDATE orders SET status = $2, version = version + 1, updated_at = now()
             WHERE id = $1 RETURNING id
         )
         INSERT INTO order_status_history (order_id, seq, status, by)
         SELECT u.id, COALESCE((SELECT max(seq) FROM order_status_history WHERE order_id = $1), 0) + 1, $2, $3
         FROM u",
    )
    .bind(id)
    .bind(to.as_str())
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

pub struct NewPayment<'a> {
    pub method: PaymentMethod,
    pub amount_cents: i64,
    pub tendered_cents: Option<i64>,
    pub change_cents: i64,
    pub reference: Option<&'a str>,
    pub created_by: Uuid,
}

/// Records a payment on a locked order: adds it to `paid_cents`, bumps the version and, when
/// `complete` is set, moves the order to `completed` with a history entry. Returns the payment.
pub async fn add_payment(
    conn: &mut PgConnection,
    order_id: Uuid,
    p: NewPayment<'_>,
    complete: bool,
) -> Result<Payment, DbError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        created_at: DateTime<Utc>,
    }
    let row: Row = sqlx::query_as(
        "WITH pay AS (
             INSERT INTO payments (id, order_id, method, amount_cents, tendered_cents, change_cents,
                                   reference, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             RETURNING id, created_at
         ), u AS (
             UPDATE orders SET paid_cents = paid_cents + $4, version = version + 1, updated_at = now(),
                 status = CASE WHEN $9 THEN 'completed' ELSE status END
             WHERE id = $2 RETURNING id
         ), h AS (
             INSERT INTO order_status_history (order_id, seq, status, by)
             SELECT u.id, COALESCE((SELECT max(seq) FROM order_status_history WHERE order_id = $2), 0) + 1,
                    'completed', $8
             FROM u WHERE $9
         )
         SELECT id, created_at FROM pay",
    )
    .bind(Uuid::now_v7())
    .bind(order_id)
    .bind(p.method.as_str())
    .bind(p.amount_cents)
    .bind(p.tendered_cents)
    .bind(p.change_cents)
    .bind(p.reference)
    .bind(p.created_by)
    .bind(complete)
    .fetch_one(conn)
    .await?;
    Ok(Payment {
        id: row.id,
        method: p.method,
        amount_cents: p.amount_cents,
        tendered_cents: p.tendered_cents,
        change_cents: p.change_cents,
        reference: p.reference.map(str::to_owned),
        created_by: Some(p.created_by),
        created_at: row.created_at,
    })
}

/// Records a refund on a locked order and adds it to `refunded_cents`. Stock is the caller's.
pub async fn add_refund(
    conn: &mut PgConnection,
    order_id: Uuid,
    amount_cents: i64,
    reason: &str,
    restock: &[Restock],
    by: Uuid,
) -> Result<Refund, DbError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        created_at: DateTime<Utc>,
    }
    let row: Row = sqlx::query_as(
        "WITH r AS (
             INSERT INTO refunds (id, order_id, amount_cents, reason, restock, created_by)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, created_at
         ), u AS (
             UPDATE orders SET refunded_cents = refunded_cents + $3, version = version + 1,
                 updated_at = now()
             WHERE id = $2
         )
         SELECT id, created_at FROM r",
    )
    .bind(Uuid::now_v7())
    .bind(order_id)
    .bind(amount_cents)
    .bind(reason)
    .bind(Json(restock))
    .bind(by)
    .fetch_one(conn)
    .await?;
    Ok(Refund {
        id: row.id,
        amount_cents,
        reason: reason.to_owned(),
        restock: restock.to_vec(),
        created_by: Some(by),
        created_at: row.created_at,
    })
}

/// Per product line of an order: what was sold and what has come back since (cancel/return).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Returnable {
    pub product_id: Uuid,
    pub track_stock: bool,
    pub sold: i64,
    pub returned: i64,
}

pub async fn returnable(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Vec<Returnable>, DbError> {
    Ok(sqlx::query_as(
        "SELECT l.product_id, bool_or(l.track_stock) AS track_stock, sum(l.quantity)::bigint AS sold,
                COALESCE((SELECT sum(m.delta) FROM inventory_movements m
                          WHERE m.order_id = $1 AND m.product_id = l.product_id
                            AND m.reason IN ('cancel', 'return')), 0)::bigint AS returned
         FROM order_lines l WHERE l.order_id = $1
         GROUP BY l.product_id ORDER BY l.product_id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?)
}

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
    let columns: Vec<OrderRow> = sqlx::query_as(&sql)
        .bind(&statuses)
        .bind(per_column)
        .fetch_all(pool)
        .await?;
    let sql = format!(
        "{} FROM orders o WHERE o.status IN ('completed', 'delivered')
         ORDER BY o.updated_at DESC, o.id DESC LIMIT $1",
        select_whole()
    );
    let recent: Vec<OrderRow> = sqlx::query_as(&sql).bind(done).fetch_all(pool).await?;
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

/// Unpaid `online` orders still `pending` that were created more than `ttl_secs` ago.
pub async fn expired_unpaid(
    pool: &PgPool,
    ttl_secs: i64,
    limit: i64,
) -> Result<Vec<Uuid>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM orders
         WHERE status = 'pending' AND channel = 'online' AND paid_cents = 0
           AND created_at < now() - make_interval(secs => $1::float8)
         ORDER BY created_at LIMIT $2",
    )
    .bind(ttl_secs as f64)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
