//! Orders: placing, paying (at the till, or online through a payment intent), refunding, moving along the lifecycle and expiring unpaid ones.
//! This module holds what the use cases share: who is acting ([`Caller`]), the error they
//! answer with ([`OrderError`]), the Order's JSON shape and its live event.

mod expire;
mod intents;
mod pay;
mod place;
mod refund;
mod transition;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use till_db::orders::{Line, Order, Payment, Refund, StatusChange};
use till_db::{DbError, PgConnection};
use till_domain::{
    balance_due, payment_status, Channel, Discount, FieldErrors, Fulfilment, OrderStatus,
    PaymentStatus, TransitionError,
};
use uuid::Uuid;

pub use expire::cancel_expired_unpaid;
pub use intents::{create_intent, IntentInput};
pub(crate) use pay::record_payment;
pub use pay::{pay, PaymentInput};
pub use place::{place, LineInputBody, PlaceInput};
pub use refund::{refund, RefundInput};
pub use transition::transition;

use crate::idempotency::IdempotencyError;
pub use crate::Caller;

/// Why an order use case refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// No such order, or not one the caller may see.
    #[error("no such order")]
    NotFound,
    /// The caller's role may not do this; `None` for the generic refusal.
    #[error("forbidden: {}", .0.unwrap_or("role not allowed"))]
    Forbidden(Option<&'static str>),
    #[error(transparent)]
    InvalidTransition(TransitionError),
    /// `If-Match` named another version.
    #[error("the order changed since it was read")]
    PreconditionFailed,
    #[error("payment of {amount_cents} is more than the balance due ({balance_due_cents})")]
    Overpayment {
        balance_due_cents: i64,
        amount_cents: i64,
    },
    #[error("refund of {amount_cents} is more than the refundable {refundable_cents}")]
    OverRefund {
        refundable_cents: i64,
        amount_cents: i64,
    },
    /// Tracked lines the stock cannot cover (as `till_db::checkout` reports them).
    #[error("insufficient stock")]
    InsufficientStock {
        lines: Vec<till_db::stock::Shortage>,
        /// The location whose stock was short.
        location_id: Option<Uuid>,
    },
    /// The order's state forbids this (e.g. paying a cancelled order).
    #[error("{0}")]
    Conflict(&'static str),
    /// Cancelling an order that still holds money (`paid − refunded > 0`): refund it first.
    #[error("the order holds {refundable_cents} that must be refunded before it is cancelled")]
    MoneyOnOrder { refundable_cents: i64 },
    /// A cash payment or refund with no open register shift to land in, while
    /// `SHIFTS_REQUIRED` is set.
    #[error("no open register shift")]
    NoOpenShift,
    /// The customer already holds `limit` pending, not fully paid online orders.
    #[error("at most {limit} open online orders per customer")]
    OpenOrdersCap { limit: u32 },
    #[error("invalid order: {0}")]
    Validation(FieldErrors),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl OrderError {
    /// A single-field validation error.
    pub fn field(field: &str, msg: &str) -> Self {
        let mut e = FieldErrors::default();
        e.add(field, msg);
        OrderError::Validation(e)
    }
}

/// The Order of the HTTP contract. `number` is a string so clients never do arithmetic on it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Order)]
pub struct OrderView<'a> {
    pub id: Uuid,
    pub number: String,
    pub channel: Channel,
    pub status: OrderStatus,
    pub fulfilment: Fulfilment,
    pub customer_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    #[schema(value_type = Vec<Line>)]
    pub lines: &'a [Line],
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub tax_cents: i64,
    pub total_cents: i64,
    pub paid_cents: i64,
    pub refunded_cents: i64,
    pub balance_due_cents: i64,
    pub payment_status: PaymentStatus,
    #[schema(value_type = Vec<Payment>)]
    pub payments: &'a [Payment],
    #[schema(value_type = Vec<Refund>)]
    pub refunds: &'a [Refund],
    /// The discount as requested (`{"type": "percent", …}`), or null.
    #[schema(value_type = Option<Discount>)]
    pub discount: &'a Option<Value>,
    #[schema(value_type = Option<String>)]
    pub note: &'a Option<String>,
    #[schema(value_type = Option<String>)]
    pub delivery_address: &'a Option<String>,
    #[schema(value_type = String)]
    pub currency: &'a str,
    /// Where the order's stock was taken.
    pub location_id: Option<Uuid>,
    pub register_id: Option<Uuid>,
    pub shift_id: Option<Uuid>,
    pub version: i64,
    #[schema(value_type = Vec<StatusChange>)]
    pub status_history: &'a [StatusChange],
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Receipts issued so far (`GET /orders/{id}/receipt`); each after the first says COPY.
    pub receipt_count: i32,
}

impl<'a> From<&'a Order> for OrderView<'a> {
    fn from(o: &'a Order) -> Self {
        OrderView {
            id: o.id,
            number: o.number.to_string(),
            channel: o.channel,
            status: o.status,
            fulfilment: o.fulfilment,
            customer_id: o.customer_id,
            created_by: o.created_by,
            lines: &o.lines,
            subtotal_cents: o.subtotal_cents,
            discount_cents: o.discount_cents,
            tax_cents: o.tax_cents,
            total_cents: o.total_cents,
            paid_cents: o.paid_cents,
            refunded_cents: o.refunded_cents,
            balance_due_cents: balance_due(o.total_cents, o.paid_cents),
            payment_status: payment_status(o.total_cents, o.paid_cents, o.refunded_cents),
            payments: &o.payments,
            refunds: &o.refunds,
            discount: &o.discount,
            note: &o.note,
            delivery_address: &o.delivery_address,
            currency: &o.currency,
            location_id: o.location_id,
            register_id: o.register_id,
            shift_id: o.shift_id,
            version: o.version,
            status_history: &o.status_history,
            created_at: o.created_at,
            updated_at: o.updated_at,
            receipt_count: o.receipt_count,
        }
    }
}

/// The order as a JSON value (what idempotent answers store).
pub fn order_json(o: &Order) -> Value {
    serde_json::to_value(OrderView::from(o)).unwrap_or(Value::Null)
}

/// Writes the event `topic` for `o` to the outbox in the caller's transaction; after the
/// commit, [`crate::App::after_commit`] wakes the publisher.
pub async fn record_event(conn: &mut PgConnection, topic: &str, o: &Order) -> Result<(), DbError> {
    till_db::outbox::enqueue(conn, topic, &event_payload(topic, o)).await?;
    Ok(())
}

/// What live clients are told for an event `topic`: they know `order.created` and
/// `order.updated`; webhooks get the finer topics (`order.paid`, `order.refunded`,
/// `order.cancelled`), which are updates to a live client.
fn live_type(topic: &str) -> &'static str {
    if topic == "order.created" {
        "order.created"
    } else {
        "order.updated"
    }
}

/// The outbox payload of event `topic` for `o`: for live clients a summary of the order
/// (`order`), for webhooks the whole order as `GET` returns it (`data`, stripped from live
/// frames). The customer id routes the event to its customer (it is not sent).
pub fn event_payload(topic: &str, o: &Order) -> Value {
    let full = order_json(o);
    let mut payload = event_envelope(topic, o, &full);
    if let Some(obj) = payload.as_object_mut() {
        obj.insert("data".into(), full);
    }
    payload
}

/// [`event_payload`] without its `data`, for `full`, the order's JSON (`order_json(o)`).
pub(crate) fn event_envelope(topic: &str, o: &Order, full: &Value) -> Value {
    let mut summary = serde_json::Map::new();
    for k in [
        "id",
        "number",
        "status",
        "channel",
        "fulfilment",
        "total_cents",
        "payment_status",
        "updated_at",
    ] {
        summary.insert(k.into(), full.get(k).cloned().unwrap_or(Value::Null));
    }
    serde_json::json!({
        "type": live_type(topic),
        "at": chrono::Utc::now(),
        "order": summary,
        "customer_id": o.customer_id,
    })
}
