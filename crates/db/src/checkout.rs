//! Order creation in two round trips, for the busiest write in a shop.
//!
//! 1. [`prepare`] reads, in one statement outside any transaction: the stored answer for the
//!    request's idempotency key (if any), the products of the basket, the order number, the
//!    database's clock and whether the named customer exists. The caller prices the order and
//!    builds its whole answer (and event, and audit entries) from that.
//! 2. [`place`] writes everything in one statement (the function `till_place_order`, given one
//!    JSON document whose keys are column names: `PlaceArgs`), which PostgreSQL runs as one
//!    transaction: the order, its lines and first history entry, the stock of every tracked
//!    line, their ledger movements (whose trigger enqueues any low-stock alert), the audit
//!    entries, the outbox event and the idempotency key with its answer. Either all of it
//!    commits or none of it does.
//!
//! Why this is still exactly-once and never oversold:
//! - Stock: the function locks the tracked product rows in ascending id order (sorted, then
//!   locked as rows leave the sort) before it reads or writes them, so concurrent orders queue
//!   in the same order and none can deadlock. It then reads their stock at the order's location
//!   (`stock_levels`) under the lock; if any
//!   line is short it writes nothing and returns every short line
//!   ([`PlaceError::Insufficient`]). `products_stock_on_hand_check` stays as the last line of
//!   defence.
//! - Idempotency: the function first takes the key's advisory lock (the same lock id as
//!   [`idempotency::claim`]: both use `till_idempotency_lock_id`); held by another request
//!   being written now → [`PlaceError::KeyInUse`] (409). The key row is inserted by the same
//!   statement, so a request whose key was stored by one that already committed fails on the
//!   primary key ([`PlaceError::KeyTaken`]) and the caller replays the stored answer. A
//!   duplicate slipping in before the first takes the lock waits on its uncommitted key row and
//!   then fails the same way. No request can make a second order.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::Actor;
use crate::idempotency::{self, Stored};
use crate::orders::{Order, ProductForOrder};
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
    conn: &mut PgConnection,
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
    .fetch_one(conn)
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
    /// The event's payload without `data`: the function adds the stored answer (the order as
    /// placed, with the location, register and shift it resolved) as `data`.
    pub event: &'a Value,
    pub idem_scope: &'a str,
    pub idem_key: &'a str,
    pub idem_hash: &'a str,
    pub answer_status: u16,
    pub answer_body: &'a Value,
    pub answer_headers: &'a Value,
    /// For online orders: how many pending, not fully paid online orders the customer may hold;
    /// this one is refused ([`PlaceError::OpenOrdersCap`]) when they already hold that many.
    pub open_orders_cap: Option<u32>,
    /// The order's `location_id`, when named, must be a pickup location (a customer's pickup).
    pub pickup_location_only: bool,
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
    /// The customer already holds `open_orders_cap` open online orders (counted under a lock
    /// per customer, so concurrent requests cannot both slip under it).
    OpenOrdersCap,
    /// The location the order names is unknown, inactive, or not a pickup location when it
    /// had to be one.
    UnknownLocation,
    /// The register the order names does not exist or is inactive.
    UnknownRegister,
    Db(DbError),
}

/// The SQLSTATE `till_place_order` raises when the key's lock is held by another request.
const KEY_IN_USE: &str = "TL409";
/// The SQLSTATE `till_place_order` raises when the customer is at the open-orders cap.
const OPEN_ORDERS_CAP: &str = "TL429";
/// The SQLSTATE `till_place_order` raises when the order's location cannot take it.
const UNKNOWN_LOCATION: &str = "TL423";
/// The SQLSTATE `till_place_order` raises when the named register is unknown or inactive.
const UNKNOWN_REGISTER: &str = "TL422";

impl From<sqlx::Error> for PlaceError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            match db.code().as_deref() {
                Some(KEY_IN_USE) => return PlaceError::KeyInUse,
                Some(OPEN_ORDERS_CAP) => return PlaceError::OpenOrdersCap,
                Some(UNKNOWN_LOCATION) => return PlaceError::UnknownLocation,
                Some(UNKNOWN_REGISTER) => return PlaceError::UnknownRegister,
                _ => {}
            }
        }
        match DbError::from(e) {
            DbError::Unique(v) if v.constraint == idempotency::PKEY => PlaceError::KeyTaken,
            e => PlaceError::Db(e),
        }
    }
}

/// The one argument of `till_place_order`
/// (migrations/20261130100000_place_order_by_name.sql, 20261130200000_payment_intents.sql,
/// 20261201100000_register_shifts.sql, 20261201400000_locations.sql,
/// 20261202100001_order_event_carries_the_stored_answer.sql): every key is the column it fills,
/// read there with `jsonb_populate_record(NULL::<table>, …)`.
#[derive(Serialize)]
struct PlaceArgs<'a> {
    order: OrderRow<'a>,
    lines: Vec<LineRow<'a>>,
    /// One per tracked line, in line order.
    takes: Vec<Take>,
    movement_reason: &'a str,
    audit: Vec<AuditRow<'a>>,
    event: EventRow<'a>,
    idempotency: KeyRow<'a>,
    /// migrations/20261130200000_payment_intents.sql: the open-orders cap, online orders only.
    open_orders_cap: Option<u32>,
    /// migrations/20261201400000_locations.sql: a named location must be pickup-enabled.
    pickup_location_only: bool,
}

/// An `orders` row.
#[derive(Serialize)]
struct OrderRow<'a> {
    id: Uuid,
    number: i64,
    channel: &'a str,
    status: &'a str,
    fulfilment: &'a str,
    customer_id: Option<Uuid>,
    created_by: Option<Uuid>,
    subtotal_cents: i64,
    discount_cents: i64,
    tax_cents: i64,
    total_cents: i64,
    discount: &'a Option<Value>,
    note: &'a Option<String>,
    delivery_address: &'a Option<String>,
    currency: &'a str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The location named by the request; the function resolves it when absent.
    location_id: Option<Uuid>,
    /// migrations/20261201100000_register_shifts.sql: the register a POS order names (the
    /// function resolves it, and the shift, when absent).
    register_id: Option<Uuid>,
}

/// An `order_lines` row (its `order_id` is the order's).
#[derive(Serialize)]
struct LineRow<'a> {
    line_no: i32,
    product_id: Uuid,
    sku: &'a str,
    name: &'a str,
    unit_price_cents: i64,
    quantity: i64,
    tax_rate_bp: i64,
    track_stock: bool,
    subtotal_cents: i64,
    discount_cents: i64,
    tax_cents: i64,
    total_cents: i64,
}

/// Stock taken for a tracked line, and the id of its ledger movement.
#[derive(Serialize)]
struct Take {
    movement_id: Uuid,
    product_id: Uuid,
    quantity: i64,
}

/// An `audit_log` row.
#[derive(Serialize)]
struct AuditRow<'a> {
    id: Uuid,
    actor_id: Option<Uuid>,
    action: &'a str,
    entity_type: &'a str,
    entity_id: String,
    data: &'a Value,
    request_id: &'a Option<String>,
    ip: &'a Option<String>,
    at: DateTime<Utc>,
}

/// An `outbox` row.
#[derive(Serialize)]
struct EventRow<'a> {
    topic: &'a str,
    payload: &'a Value,
}

/// An `idempotency_keys` row: the key and its stored answer.
#[derive(Serialize)]
struct KeyRow<'a> {
    scope: &'a str,
    key: &'a str,
    request_hash: &'a str,
    response_status: u16,
    response_body: &'a Value,
    response_headers: &'a Value,
}

impl<'a> PlaceArgs<'a> {
    fn new(p: &Placement<'a>) -> Self {
        let o = p.order;
        PlaceArgs {
            order: OrderRow {
                id: o.id,
                number: o.number,
                channel: o.channel.as_str(),
                status: o.status.as_str(),
                fulfilment: o.fulfilment.as_str(),
                customer_id: o.customer_id,
                created_by: o.created_by,
                subtotal_cents: o.subtotal_cents,
                discount_cents: o.discount_cents,
                tax_cents: o.tax_cents,
                total_cents: o.total_cents,
                discount: &o.discount,
                note: &o.note,
                delivery_address: &o.delivery_address,
                currency: &o.currency,
                created_at: o.created_at,
                updated_at: o.updated_at,
                location_id: o.location_id,
                register_id: o.register_id,
            },
            lines: o
                .lines
                .iter()
                .zip(1..)
                .map(|(l, line_no)| LineRow {
                    line_no,
                    product_id: l.product_id,
                    sku: &l.sku,
                    name: &l.name,
                    unit_price_cents: l.unit_price_cents,
                    quantity: l.quantity,
                    tax_rate_bp: l.tax_rate_bp,
                    track_stock: l.track_stock,
                    subtotal_cents: l.subtotal_cents,
                    discount_cents: l.discount_cents,
                    tax_cents: l.tax_cents,
                    total_cents: l.total_cents,
                })
                .collect(),
            takes: o
                .lines
                .iter()
                .filter(|l| l.track_stock)
                .map(|l| Take {
                    movement_id: Uuid::now_v7(),
                    product_id: l.product_id,
                    quantity: l.quantity,
                })
                .collect(),
            movement_reason: p.movement_reason,
            audit: p
                .audit
                .iter()
                .map(|a| AuditRow {
                    id: Uuid::now_v7(),
                    actor_id: p.actor.user_id,
                    action: a.action,
                    entity_type: "order",
                    entity_id: o.id.to_string(),
                    data: &a.data,
                    request_id: &p.actor.request_id,
                    ip: &p.actor.ip,
                    at: o.created_at,
                })
                .collect(),
            event: EventRow {
                topic: p.event_topic,
                payload: p.event,
            },
            idempotency: KeyRow {
                scope: p.idem_scope,
                key: p.idem_key,
                request_hash: p.idem_hash,
                response_status: p.answer_status,
                response_body: p.answer_body,
                response_headers: p.answer_headers,
            },
            open_orders_cap: p.open_orders_cap,
            pickup_location_only: p.pickup_location_only,
        }
    }
}

/// Where a placed order landed: the location its stock was taken from, its register and
/// register shift (both null for online orders, and for POS orders placed with no register and
/// no open shift). The stored answer already carries them; the caller adds them to its own copy.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct Placed {
    pub location_id: Option<Uuid>,
    pub register_id: Option<Uuid>,
    pub shift_id: Option<Uuid>,
}

/// Writes the order and all that goes with it in one statement; see the module comment.
pub async fn place(conn: &mut PgConnection, p: Placement<'_>) -> Result<Placed, PlaceError> {
    let args = Json(PlaceArgs::new(&p));
    let out: Json<Value> = sqlx::query_scalar("SELECT till_place_order($1)")
        .bind(args)
        .fetch_one(conn)
        .await?;
    let bad =
        |e: serde_json::Error| PlaceError::Db(DbError::Other(sqlx::Error::Decode(Box::new(e))));
    match out.0 {
        // Short lines come back as an array, a placed order as an object.
        v @ Value::Array(_) => Err(PlaceError::Insufficient(
            serde_json::from_value(v).map_err(bad)?,
        )),
        v => serde_json::from_value(v).map_err(bad),
    }
}
