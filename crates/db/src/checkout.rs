//! Order creation in two round trips, for the busiest write in a shop.
//!
//! 1. [`prepare`] reads, in one statement outside any transaction: the stored answer for the
//!    request's idempotency key (if any), the products of the basket, the order number, the
//!    database's clock and whether the named customer exists. The caller prices the order and
//!    builds its whole answer (and event, and audit entries) from that.
//! 2. [`place`] writes everything in one statement (the function `till_place_order`), which
//!    PostgreSQL runs as one transaction:
//!    the order, its lines and first history entry, the stock of every tracked line, their
//!    ledger movements, any low-stock alert, the audit entries, the outbox event and the
//!    idempotency key with its answer. Either all of it commits or none of it does.
//!
//! Why this is still exactly-once and never oversold:
//! - Stock: the function locks the tracked product rows in ascending id order (sorted, then
//!   locked as rows leave the sort) before it reads or writes them, so concurrent orders queue
//!   in the same order and none can deadlock. It then reads their stock under the lock; if any
//!   line is short it writes nothing and returns every short line
//!   ([`PlaceError::Insufficient`]). `products_stock_on_hand_check` stays as the last line of
//!   defence.
//! - Idempotency: the function first takes the key's advisory lock; held by another request
//!   being written now → [`PlaceError::KeyInUse`] (409). The key row is inserted by the same
//!   statement, so a request whose key was stored by one that already committed fails on the
//!   primary key ([`PlaceError::KeyTaken`]) and the caller replays the stored answer. A
//!   duplicate slipping in before the first takes the lock waits on its uncommitted key row and
//!   then fails the same way. No request can make a second order.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::Actor;
use crate::idempotency::{self, Stored};
use crate::orders::{Line, Order, ProductForOrder};
use crate::stock::Shortage;
use crate::DbError;

/// What [`prepare`] read.
#[derive(Debug)]
pub struct Prepared {
    /// The key's stored answer, when this key was used before.
    pub stored: Option<Stored>,
    /// The products among the basket's ids that exist (active or not).
    pub products: Vec<ProductForOrder>,
    /// The new order's number (taken from `order_number_seq`; a failed order leaves a gap).
    pub number: i64,
    /// The database clock: the order's `created_at`, `updated_at` and first history entry.
    pub now: DateTime<Utc>,
    /// Whether the customer asked for exists; `None` when none was named.
    pub customer_exists: Option<bool>,
}

#[derive(sqlx::FromRow)]
struct PreparedRow {
    number: i64,
    now: DateTime<Utc>,
    customer_exists: Option<bool>,
    products: Json<Vec<ProductForOrder>>,
    request_hash: Option<String>,
    response_status: Option<i32>,
    response_body: Option<Value>,
    response_headers: Option<Value>,
}

/// Reads what an order needs before it can be priced; see the module comment.
pub async fn prepare(
    pool: &PgPool,
    scope: &str,
    key: &str,
    product_ids: &[Uuid],
    customer_id: Option<Uuid>,
) -> Result<Prepared, DbError> {
    let row: PreparedRow = sqlx::query_as(
        // migrations/20261122000000_place_order.sql: a function so its plan is kept.
        "SELECT number, now, customer_exists, products, request_hash, response_status,
                response_body, response_headers
         FROM till_prepare_order($1, $2, $3, $4)",
    )
    .bind(scope)
    .bind(key)
    .bind(product_ids)
    .bind(customer_id)
    .fetch_one(pool)
    .await?;
    let stored = row.request_hash.map(|request_hash| Stored {
        request_hash,
        response_status: row.response_status,
        response_body: row.response_body,
        response_headers: row.response_headers.unwrap_or(Value::Null),
    });
    Ok(Prepared {
        stored,
        products: row.products.0,
        number: row.number,
        now: row.now,
        customer_exists: row.customer_exists,
    })
}

/// An audit entry written with the order.
pub struct AuditEntry {
    pub action: &'static str,
    pub data: Value,
}

/// Everything [`place`] writes. The order is priced by the caller (till-domain's
/// `price_order`) and complete: its number and clock come from [`prepare`].
pub struct Placement<'a> {
    pub order: &'a Order,
    /// The `sale` movements' reason text.
    pub movement_reason: &'a str,
    pub actor: &'a Actor,
    pub audit: &'a [AuditEntry],
    pub event_topic: &'a str,
    pub event: &'a Value,
    pub idem_scope: &'a str,
    pub idem_key: &'a str,
    pub idem_hash: &'a str,
    pub answer_status: u16,
    pub answer_body: &'a Value,
    pub answer_headers: &'a Value,
}

/// Why [`place`] wrote nothing.
#[derive(Debug)]
pub enum PlaceError {
    /// These tracked lines lack stock (read under the lock, so `available` is exact).
    Insufficient(Vec<Shortage>),
    /// A request with the same idempotency key is being written right now.
    KeyInUse,
    /// The idempotency key was stored by a concurrent request that committed first.
    KeyTaken,
    Db(DbError),
}

/// The SQLSTATE `till_place_order` raises when the key's lock is held by another request.
const KEY_IN_USE: &str = "TL409";

impl From<sqlx::Error> for PlaceError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if db.code().as_deref() == Some(KEY_IN_USE) {
                return PlaceError::KeyInUse;
            }
        }
        match DbError::from(e) {
            DbError::Unique(c) if c == idempotency::PKEY => PlaceError::KeyTaken,
            e => PlaceError::Db(e),
        }
    }
}

/// Writes the order and all that goes with it in one statement; see the module comment.
pub async fn place(pool: &PgPool, p: Placement<'_>) -> Result<(), PlaceError> {
    let o = p.order;
    let lines = &o.lines;
    let col = |f: fn(&Line) -> i64| lines.iter().map(f).collect::<Vec<i64>>();
    let tracked: Vec<&Line> = lines.iter().filter(|l| l.track_stock).collect();
    // The statement lives in migrations/20261122000000_place_order.sql (see there for why it
    // is a function); the arguments are bound in the function's order.
    let sql = format!("SELECT till_place_order({})", placeholders(44));
    let short: Option<Json<Vec<Shortage>>> = sqlx::query_scalar(&sql)
        .bind(o.id)
        .bind(o.number)
        .bind(o.channel.as_str())
        .bind(o.fulfilment.as_str())
        .bind(o.customer_id)
        .bind(o.created_by)
        .bind(o.subtotal_cents)
        .bind(o.discount_cents)
        .bind(o.tax_cents)
        .bind(o.total_cents)
        .bind(&o.discount)
        .bind(&o.note)
        .bind(&o.delivery_address)
        .bind(&o.currency)
        .bind(o.created_at)
        .bind(lines.iter().map(|l| l.product_id).collect::<Vec<Uuid>>())
        .bind(lines.iter().map(|l| l.sku.as_str()).collect::<Vec<&str>>())
        .bind(lines.iter().map(|l| l.name.as_str()).collect::<Vec<&str>>())
        .bind(col(|l| l.unit_price_cents))
        .bind(col(|l| l.quantity))
        .bind(
            lines
                .iter()
                .map(|l| l.tax_rate_bp as i32)
                .collect::<Vec<i32>>(),
        )
        .bind(lines.iter().map(|l| l.track_stock).collect::<Vec<bool>>())
        .bind(col(|l| l.subtotal_cents))
        .bind(col(|l| l.discount_cents))
        .bind(col(|l| l.tax_cents))
        .bind(col(|l| l.total_cents))
        .bind(tracked.iter().map(|l| l.product_id).collect::<Vec<Uuid>>())
        .bind(tracked.iter().map(|l| l.quantity).collect::<Vec<i64>>())
        .bind(
            tracked
                .iter()
                .map(|_| Uuid::now_v7())
                .collect::<Vec<Uuid>>(),
        )
        .bind(p.movement_reason)
        .bind(p.actor.user_id)
        .bind(&p.actor.request_id)
        .bind(&p.actor.ip)
        .bind(
            p.audit
                .iter()
                .map(|_| Uuid::now_v7())
                .collect::<Vec<Uuid>>(),
        )
        .bind(p.audit.iter().map(|a| a.action).collect::<Vec<&str>>())
        .bind(p.audit.iter().map(|a| &a.data).collect::<Vec<&Value>>())
        .bind(p.event_topic)
        .bind(p.event)
        .bind(p.idem_scope)
        .bind(p.idem_key)
        .bind(p.idem_hash)
        .bind(i32::from(p.answer_status))
        .bind(p.answer_body)
        .bind(p.answer_headers)
        .fetch_one(pool)
        .await?;
    match short {
        None => Ok(()),
        Some(Json(lines)) => Err(PlaceError::Insufficient(lines)),
    }
}

/// `$1, $2, …, $n`.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
