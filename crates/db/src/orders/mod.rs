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
use sqlx::AssertSqlSafe;
use sqlx::PgConnection;
use till_domain::{Channel, Fulfilment, OrderStatus, PaymentMethod};
use uuid::Uuid;

use crate::DbError;

mod money;
mod read;

pub use money::{
    add_payment, add_refund, first_payment_method, returnable, NewPayment, NewRefund, Returnable,
};
pub use read::{
    board, customer_exists, decode_cursor, expired_open, expired_with_money, list, Board, Filter,
    ListCursor, BOARD_COLUMNS,
};

/// A line as stored: price, tax rate and name copied from the product at order time.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = OrderLine)]
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

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Payment {
    pub id: Uuid,
    pub method: PaymentMethod,
    pub amount_cents: i64,
    pub tendered_cents: Option<i64>,
    pub change_cents: i64,
    pub reference: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// The payment intent this payment settled (online card payments confirmed by the
    /// provider); absent for payments taken by staff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent_id: Option<Uuid>,
    /// The register shift it landed in, if any.
    #[serde(default)]
    pub shift_id: Option<Uuid>,
}

/// One restocked product of a refund.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Restock {
    pub product_id: Uuid,
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Refund {
    pub id: Uuid,
    /// The tender the money went back in (null only on refunds older than tender methods).
    #[serde(default)]
    pub method: Option<PaymentMethod>,
    pub amount_cents: i64,
    pub reason: String,
    pub restock: Vec<Restock>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// The register shift it landed in, if any.
    #[serde(default)]
    pub shift_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
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
    location_id: Uuid,
    register_id: Option<Uuid>,
    shift_id: Option<Uuid>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    lines: Json<Vec<Line>>,
    payments: Json<Vec<Payment>>,
    refunds: Json<Vec<Refund>>,
    status_history: Json<Vec<StatusChange>>,
    receipt_count: i32,
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
    /// Where the order's stock was taken (and goes back to): its register's location, the
    /// pickup location, or the default one. `None` only before the order is written, when the
    /// database resolves it.
    pub location_id: Option<Uuid>,
    /// The register of a POS order (named, or that of its creator's open shift).
    pub register_id: Option<Uuid>,
    /// The register shift that was open when it was placed.
    pub shift_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub lines: Vec<Line>,
    pub payments: Vec<Payment>,
    pub refunds: Vec<Refund>,
    pub status_history: Vec<StatusChange>,
    /// Receipts issued so far; each after the first is a copy.
    pub receipt_count: i32,
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
            location_id: Some(r.location_id),
            register_id: r.register_id,
            shift_id: r.shift_id,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            lines: r.lines.0,
            payments: r.payments.0,
            refunds: r.refunds.0,
            status_history: r.status_history.0,
            receipt_count: r.receipt_count,
        })
    }
}

fn into_orders(rows: Vec<OrderRow>) -> Result<Vec<Order>, DbError> {
    rows.into_iter().map(Order::try_from).collect()
}

const HEAD_COLS: &str = "o.id, o.number, o.channel, o.status, o.fulfilment, o.customer_id, \
    o.created_by, o.subtotal_cents, o.discount_cents, o.tax_cents, o.total_cents, o.paid_cents, \
    o.refunded_cents, o.discount, o.note, o.delivery_address, o.currency, o.location_id, o.register_id, o.shift_id, o.version, \
    o.created_at, o.updated_at, o.receipt_count";

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
    let row: OrderRow = sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(conn)
        .await?;
    row.try_into()
}

/// Counts one more receipt for the order (not a change of the order: its version stays) and
/// returns how many there have been, this one included.
pub async fn count_receipt(conn: &mut PgConnection, id: Uuid) -> Result<i32, DbError> {
    Ok(sqlx::query_scalar(
        "UPDATE orders SET receipt_count = receipt_count + 1 WHERE id = $1 RETURNING receipt_count",
    )
    .bind(id)
    .fetch_one(conn)
    .await?)
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
    pub register_id: Option<Uuid>,
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
        "SELECT id, status, fulfilment, customer_id, total_cents, paid_cents, refunded_cents, version,
                register_id
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
