//! Refunding (manager+): money back, optionally with goods back on the shelf. At most
//! `paid − refunded` can go back; a restock line may return at most what the order sold of that
//! product minus what came back already (by cancel or return).

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::json;
use till_db::audit::{self, Actor};
use till_db::orders::{self, NewRefund, Order, Refund, Restock};
use till_db::stock::{self, MovementContext};
use till_db::PgConnection;
use till_domain::{FieldErrors, MovementReason, PaymentMethod};
use uuid::Uuid;

use super::pay::landing_shift;
use super::{record_event, Caller, OrderError};
use crate::idempotency::{self, Answer, Begun, IdempotencyKey};
use crate::App;

const MAX_REASON: usize = 500;

/// A refund request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundInput {
    pub amount_cents: i64,
    pub reason: String,
    /// Goods coming back to stock.
    #[serde(default)]
    pub restock: Vec<Restock>,
    /// The tender the money goes back in; absent: the method of the order's first payment.
    pub method: Option<PaymentMethod>,
    /// The till's register; absent: the order's register.
    pub register_id: Option<Uuid>,
}

/// Refunds `input` on order `id` under idempotency `key` (the caller has checked the role);
/// `render` shapes the stored and replayed answer.
pub async fn refund(
    app: &App,
    caller: &Caller,
    actor: &Actor,
    id: Uuid,
    input: &RefundInput,
    key: &IdempotencyKey,
    render: impl FnOnce(&Refund, &Order) -> Answer,
) -> Result<Answer, OrderError> {
    let reason = check(input)?;
    let mut run = match idempotency::begin::<OrderError>(app, caller.user_id, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let head = orders::lock(&mut run.tx, id).await?;
    let refundable = head.paid_cents - head.refunded_cents;
    if input.amount_cents > refundable {
        return Err(OrderError::OverRefund {
            refundable_cents: refundable,
            amount_cents: input.amount_cents,
        });
    }
    let method = match input.method {
        Some(m) => m,
        None => orders::first_payment_method(&mut run.tx, id)
            .await?
            .unwrap_or(PaymentMethod::Cash),
    };
    let shift_id = landing_shift(
        app,
        &mut run.tx,
        input.register_id,
        head.register_id,
        caller.user_id,
        method,
    )
    .await?;
    restock(&mut run.tx, id, &input.restock, caller.user_id).await?;
    let refund = orders::add_refund(
        &mut run.tx,
        id,
        NewRefund {
            amount_cents: input.amount_cents,
            method,
            reason,
            restock: &input.restock,
            by: caller.user_id,
            shift_id,
        },
    )
    .await?;
    let data = json!({"refund_id": refund.id, "amount_cents": input.amount_cents, "method": method, "reason": reason, "restock": input.restock, "shift_id": shift_id});
    audit::record(&mut run.tx, actor, "order.refund", "order", id, data).await?;
    let order = orders::get(&mut run.tx, id).await?;
    record_event(&mut run.tx, "order.refunded", &order).await?;
    let answer = run.finish::<OrderError>(render(&refund, &order)).await?;
    app.after_commit(!input.restock.is_empty());
    Ok(answer)
}

fn check(b: &RefundInput) -> Result<&str, OrderError> {
    let mut errs = FieldErrors::new();
    if b.amount_cents <= 0 {
        errs.add("amount_cents", "must be more than 0");
    } else if let Err(e) = till_domain::limits::check_amount_cents(b.amount_cents) {
        errs.add("amount_cents", e.message());
    }
    let reason = b.reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        errs.add("reason", format!("must be 1 to {MAX_REASON} characters"));
    }
    let mut seen = HashSet::new();
    for (i, r) in b.restock.iter().enumerate() {
        if !(1..=till_domain::Quantity::MAX).contains(&r.quantity) {
            errs.add(
                format!("restock[{i}].quantity"),
                "must be between 1 and 1000",
            );
        }
        if !seen.insert(r.product_id) {
            errs.add(format!("restock[{i}].product_id"), "appears more than once");
        }
    }
    if errs.is_empty() {
        Ok(reason)
    } else {
        Err(OrderError::Validation(errs))
    }
}

/// Checks each restock line against what the order can still return, then writes `return`
/// movements for all of them.
async fn restock(
    conn: &mut PgConnection,
    order_id: Uuid,
    lines: &[Restock],
    by: Uuid,
) -> Result<(), OrderError> {
    if lines.is_empty() {
        return Ok(());
    }
    let left: HashMap<Uuid, (bool, i64)> = orders::returnable(conn, order_id)
        .await?
        .into_iter()
        .map(|r| (r.product_id, (r.track_stock, r.sold - r.returned)))
        .collect();
    let mut errs = FieldErrors::new();
    for (i, r) in lines.iter().enumerate() {
        match left.get(&r.product_id) {
            None => {
                errs.add(format!("restock[{i}].product_id"), "is not on this order");
            }
            Some((false, _)) => {
                errs.add(format!("restock[{i}].product_id"), "does not track stock");
            }
            Some((true, n)) if r.quantity > *n => {
                errs.add(
                    format!("restock[{i}].quantity"),
                    format!("at most {n} can still be returned"),
                );
            }
            Some(_) => {}
        }
    }
    if !errs.is_empty() {
        return Err(OrderError::Validation(errs));
    }
    let back: Vec<(Uuid, i64)> = lines.iter().map(|r| (r.product_id, r.quantity)).collect();
    let ctx = MovementContext {
        reason: MovementReason::Return,
        order_id: Some(order_id),
        user_id: Some(by),
    };
    stock::put(conn, &back, ctx).await?;
    Ok(())
}
