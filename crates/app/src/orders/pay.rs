//! Paying an order: one tender (split tenders are several payments). The order row is locked
//! for the check-and-write, so concurrent tenders can never pay more than the total. Cashier+
//! take any method; customers never record payments themselves (they pay online through a
//! payment intent that the provider confirms, see [`super::create_intent`] and
//! [`crate::payments`]); `staff` cannot. [`record_payment`] is the one way money lands on an
//! order, for staff tenders and provider-confirmed intents alike: same ledger, same event.

use serde::Deserialize;
use serde_json::json;
use till_db::audit::{self, Actor};
use till_db::orders::{self, Head, NewPayment, Order, Payment};
use till_db::shifts;
use till_db::PgConnection;
use till_domain::{
    balance_due, completes_on_full_payment, limits, payment_status, FieldErrors, OrderStatus,
    PaymentMethod, Role,
};
use uuid::Uuid;

use super::{record_event, Caller, OrderError};
use crate::idempotency::{self, Answer, Begun, IdempotencyKey};
use crate::App;

const MAX_REFERENCE: usize = 200;

/// One tender.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    pub method: PaymentMethod,
    pub amount_cents: i64,
    /// Cash handed over (cash only; absent means exact cash).
    pub tendered_cents: Option<i64>,
    pub reference: Option<String>,
    /// The till's register; absent: the order's register.
    pub register_id: Option<Uuid>,
}

/// Pays `input` on order `id` under idempotency `key`; `render` shapes the answer that is
/// stored with the payment and replayed for retries.
pub async fn pay(
    app: &App,
    caller: &Caller,
    actor: &Actor,
    id: Uuid,
    input: &PaymentInput,
    key: &IdempotencyKey,
    render: impl FnOnce(&Payment, &Order) -> Answer,
) -> Result<Answer, OrderError> {
    if caller.role == Role::Customer {
        return Err(OrderError::Forbidden(Some(
            "Customers pay online through a payment intent, not by recording a payment.",
        )));
    }
    if !caller.role.is_cashier_or_above() {
        return Err(OrderError::Forbidden(None));
    }
    let (tendered, change, reference) = check(input)?;
    let mut run = match idempotency::begin::<OrderError>(app, caller.user_id, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let head = orders::lock(&mut run.tx, id).await?;
    if !caller.can_see(head.customer_id) {
        return Err(OrderError::NotFound);
    }
    let shift_id = landing_shift(
        app,
        &mut run.tx,
        input.register_id,
        head.register_id,
        caller.user_id,
        input.method,
    )
    .await?;
    let (payment, order) = record_payment(
        &mut run.tx,
        &head,
        NewPayment {
            method: input.method,
            amount_cents: input.amount_cents,
            tendered_cents: tendered,
            change_cents: change,
            reference,
            created_by: Some(caller.user_id),
            intent_id: None,
            shift_id,
        },
    )
    .await?;
    let data = json!({"payment_id": payment.id, "method": input.method, "amount_cents": input.amount_cents, "shift_id": shift_id});
    audit::record(&mut run.tx, actor, "order.payment", "order", id, data).await?;
    let answer = run.finish::<OrderError>(render(&payment, &order)).await?;
    app.after_commit(false);
    Ok(answer)
}

/// The register shift money lands in, locked `FOR SHARE` until the caller's transaction ends
/// (see `till_db::shifts`): the open shift of the register named (`asked`, which must be an
/// active register) or else of the order's register; failing that, the open shift the caller
/// is on; else none, which `SHIFTS_REQUIRED` refuses for cash (409 `no_open_shift`).
pub(crate) async fn landing_shift(
    app: &App,
    conn: &mut PgConnection,
    asked: Option<Uuid>,
    order_register: Option<Uuid>,
    caller: Uuid,
    method: PaymentMethod,
) -> Result<Option<Uuid>, OrderError> {
    if let Some(r) = asked {
        if !shifts::register_active(conn, r).await? {
            return Err(OrderError::field(
                "register_id",
                "no such register, or it is inactive",
            ));
        }
    }
    let shift = shifts::lock_open_for_money(conn, asked.or(order_register), Some(caller)).await?;
    if shift.is_none() && method == PaymentMethod::Cash && app.config.shop.shifts_required {
        return Err(OrderError::NoOpenShift);
    }
    Ok(shift)
}

/// Records payment `p` on the order whose row the caller has locked (`head`), in the caller's
/// transaction: refuses a cancelled order (409) and more than the balance due (422
/// `overpayment`), completes an in-store order that becomes fully paid, and writes the live
/// event. Returns the payment and the order as it is now.
pub(crate) async fn record_payment(
    conn: &mut PgConnection,
    head: &Head,
    p: NewPayment<'_>,
) -> Result<(Payment, Order), OrderError> {
    let status = head.status()?;
    if status == OrderStatus::Cancelled {
        return Err(OrderError::Conflict(
            "This order is cancelled; it cannot take payments.",
        ));
    }
    let due = balance_due(head.total_cents, head.paid_cents);
    if p.amount_cents > due {
        return Err(OrderError::Overpayment {
            balance_due_cents: due,
            amount_cents: p.amount_cents,
        });
    }
    let paid = head.paid_cents + p.amount_cents;
    let complete = completes_on_full_payment(
        status,
        head.fulfilment()?,
        payment_status(head.total_cents, paid, head.refunded_cents),
    );
    let payment = orders::add_payment(conn, head.id, p, complete).await?;
    let order = orders::get(conn, head.id).await?;
    // `order.paid` once the balance is settled by this payment; a part payment is an update.
    let topic = if head.paid_cents < head.total_cents && paid >= head.total_cents {
        "order.paid"
    } else {
        "order.updated"
    };
    record_event(conn, topic, &order).await?;
    Ok((payment, order))
}

/// Amount > 0; `tendered_cents` only for cash and at least the amount (absent: exact cash).
/// Returns (tendered, change, reference).
fn check(b: &PaymentInput) -> Result<(Option<i64>, i64, Option<&str>), OrderError> {
    let mut errs = FieldErrors::new();
    if b.amount_cents <= 0 {
        errs.add("amount_cents", "must be more than 0");
    } else if let Err(e) = limits::check_amount_cents(b.amount_cents) {
        errs.add("amount_cents", e.message());
    }
    if let Some(Err(e)) = b.tendered_cents.map(limits::check_amount_cents) {
        errs.add("tendered_cents", e.message());
    }
    let (tendered, change) = match (b.method, b.tendered_cents) {
        (PaymentMethod::Cash, None) => (Some(b.amount_cents), 0),
        (PaymentMethod::Cash, Some(t)) if t < b.amount_cents => {
            errs.add("tendered_cents", "must be at least amount_cents");
            (None, 0)
        }
        // Saturating: an out-of-range pair (a negative amount, a tender near i64::MAX) has its
        // errors recorded above and must not overflow before they are answered.
        (PaymentMethod::Cash, Some(t)) => (Some(t), t.saturating_sub(b.amount_cents)),
        (_, Some(_)) => {
            errs.add("tendered_cents", "is only for cash payments");
            (None, 0)
        }
        (_, None) => (None, 0),
    };
    let reference = b
        .reference
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if reference.is_some_and(|r| r.chars().count() > MAX_REFERENCE) {
        errs.add(
            "reference",
            format!("must be at most {MAX_REFERENCE} characters"),
        );
    }
    if errs.is_empty() {
        Ok((tendered, change, reference))
    } else {
        Err(OrderError::Validation(errs))
    }
}
