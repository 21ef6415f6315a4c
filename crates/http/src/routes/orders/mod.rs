//! Orders: creation at the till and online, the lifecycle, payments, refunds, reading and the
//! staff board. One file per action; this module holds the router, the Order JSON shape and
//! the helpers they share (visibility, ETag / If-Match).

mod board;
mod create;
mod payments;
mod read;
mod refunds;
pub mod transitions;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use till_db::orders::{Line, Order, Payment, Refund, StatusChange};
use till_domain::{balance_due, payment_status, Channel, Fulfilment, OrderStatus, PaymentStatus};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::Principal;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/orders", post(create::create).get(read::list))
        .route("/orders/board", get(board::board))
        .route("/orders/{id}", get(read::read))
        .route("/orders/{id}/transitions", post(transitions::transition))
        .route("/orders/{id}/payments", post(payments::pay))
        .route("/orders/{id}/refunds", post(refunds::refund))
        .route("/customers/{id}/orders", get(read::customer_orders))
}

/// The Order of API.md. `number` is a string so clients never do arithmetic on it.
#[derive(Debug, Serialize)]
pub struct OrderView<'a> {
    pub id: Uuid,
    pub number: String,
    pub channel: Channel,
    pub status: OrderStatus,
    pub fulfilment: Fulfilment,
    pub customer_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    pub lines: &'a [Line],
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub tax_cents: i64,
    pub total_cents: i64,
    pub paid_cents: i64,
    pub refunded_cents: i64,
    pub balance_due_cents: i64,
    pub payment_status: PaymentStatus,
    pub payments: &'a [Payment],
    pub refunds: &'a [Refund],
    /// The discount as requested (`{"type": "percent", …}`), or null.
    pub discount: &'a Option<Value>,
    pub note: &'a Option<String>,
    pub delivery_address: &'a Option<String>,
    pub currency: &'a str,
    pub version: i64,
    pub status_history: &'a [StatusChange],
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
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
            version: o.version,
            status_history: &o.status_history,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// The order as a JSON value (what idempotent answers store).
pub fn order_json(o: &Order) -> Value {
    serde_json::to_value(OrderView::from(o)).unwrap_or(Value::Null)
}

/// Writes the live event for `o` to the outbox in the caller's transaction; after the commit,
/// [`after_commit`] wakes the publisher.
pub async fn record_event(
    conn: &mut till_db::PgConnection,
    kind: &str,
    o: &Order,
) -> ApiResult<()> {
    till_db::outbox::enqueue(conn, kind, &event_payload(kind, o)).await?;
    Ok(())
}

/// The live event of kind `kind` for `o`: a summary of the order, not the whole of it. The
/// customer id routes the event to its customer (it is not sent).
pub fn event_payload(kind: &str, o: &Order) -> Value {
    let full = order_json(o);
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
        "type": kind,
        "at": chrono::Utc::now(),
        "order": summary,
        "customer_id": o.customer_id,
    })
}

/// After a commit that wrote events (and maybe moved stock): publish now, and let cached
/// catalog pages pick up the new stock levels.
pub fn after_commit(state: &AppState, stock_moved: bool) {
    state.hub.kick();
    if stock_moved {
        crate::routes::catalog_cache::invalidate_soon(state);
    }
}

/// Staff see every order; a customer only orders of their own customer record.
pub fn can_see(p: &Principal, customer_id: Option<Uuid>) -> bool {
    p.role.is_staff_side() || (p.customer_id.is_some() && p.customer_id == customer_id)
}

/// `ETag: "<version>"`.
pub fn etag(version: i64) -> (HeaderName, HeaderValue) {
    (
        header::ETAG,
        HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("")),
    )
}

/// The version an `If-Match` header asks for: `None` when absent or `*`. Accepts `"3"`,
/// `W/"3"` and a bare `3`; anything else cannot match any version, so it is a 412.
pub fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| ApiError::precondition_failed())?
        .trim();
    if s == "*" {
        return Ok(None);
    }
    let s = s.strip_prefix("W/").unwrap_or(s);
    let s = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s);
    s.parse::<i64>()
        .map(Some)
        .map_err(|_| ApiError::precondition_failed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_forms() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::IF_MATCH, HeaderValue::from_str(v).unwrap());
            if_match(&m)
        };
        assert_eq!(if_match(&HeaderMap::new()).unwrap(), None);
        assert_eq!(h("\"3\"").unwrap(), Some(3));
        assert_eq!(h("W/\"4\"").unwrap(), Some(4));
        assert_eq!(h("5").unwrap(), Some(5));
        assert_eq!(h("*").unwrap(), None);
        assert!(h("\"abc\"").is_err());
    }
}
