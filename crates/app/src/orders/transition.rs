//! Moving an order along the lifecycle table. Staff-side roles may make any allowed move; a
//! customer may only cancel their own order while it is `pending`. Cancelling puts back what
//! the order took and has not yet returned, and is refused while the order holds money
//! (`paid − refunded > 0`): a cancelled order must not silently keep anyone's money, so a
//! manager refunds first (whoever asks, by whatever route, the worker included).

use serde_json::json;
use till_db::audit::{self, Actor};
use till_db::orders::{self, Order};
use till_domain::{check_transition, OrderStatus};
use uuid::Uuid;

use super::expire::return_stock;
use super::{record_event, Caller, OrderError};
use crate::idempotency::{self, Answer, Begun, IdempotencyKey};
use crate::{App, Precondition};

/// Moves order `id` to `to` if its version satisfies `expected`; `render` shapes the answer
/// from the order as it is now. With `key`, a retry gets that answer back (not a 409 for a move
/// already made).
#[allow(clippy::too_many_arguments)]
pub async fn transition(
    app: &App,
    caller: &Caller,
    actor: &Actor,
    id: Uuid,
    to: OrderStatus,
    expected: &Precondition,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&Order) -> Answer,
) -> Result<Answer, OrderError> {
    let mut run = match idempotency::begin::<OrderError>(app, caller.user_id, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    let head = orders::lock(tx, id).await?;
    if !caller.can_see(head.customer_id) {
        return Err(OrderError::NotFound);
    }
    let from = head.status()?;
    if !caller.role.is_staff_side()
        && (to != OrderStatus::Cancelled || from != OrderStatus::Pending)
    {
        return Err(OrderError::Forbidden(Some(
            "Customers can only cancel their own orders while they are pending.",
        )));
    }
    if !expected.matches(head.version) {
        return Err(OrderError::PreconditionFailed);
    }
    check_transition(from, to, head.fulfilment()?).map_err(OrderError::InvalidTransition)?;
    refuse_cancel_with_money(to, head.paid_cents, head.refunded_cents)?;
    if to == OrderStatus::Cancelled {
        return_stock(tx, id, Some(caller.user_id)).await?;
    }
    orders::set_status(tx, id, to, Some(caller.user_id)).await?;
    if caller.role.is_staff_side() {
        audit::record(
            tx,
            actor,
            "order.transition",
            "order",
            id,
            json!({"from": from, "to": to}),
        )
        .await?;
    }
    let order = orders::get(tx, id).await?;
    let topic = if to == OrderStatus::Cancelled {
        "order.cancelled"
    } else {
        "order.updated"
    };
    record_event(tx, topic, &order).await?;
    let answer = run.finish::<OrderError>(render(&order)).await?;
    app.after_commit(to == OrderStatus::Cancelled);
    Ok(answer)
}

/// Rule: an order with money on it cannot be cancelled; the refundable amount says how much a
/// manager must refund first.
pub(super) fn refuse_cancel_with_money(
    to: OrderStatus,
    paid_cents: i64,
    refunded_cents: i64,
) -> Result<(), OrderError> {
    let refundable_cents = paid_cents - refunded_cents;
    if to == OrderStatus::Cancelled && refundable_cents > 0 {
        return Err(OrderError::MoneyOnOrder { refundable_cents });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cancelling_an_order_with_money_on_it_is_refused() {
        use OrderStatus::{Cancelled, Confirmed};
        assert!(matches!(
            refuse_cancel_with_money(Cancelled, 500, 200),
            Err(OrderError::MoneyOnOrder {
                refundable_cents: 300
            })
        ));
        assert!(refuse_cancel_with_money(Cancelled, 500, 500).is_ok());
        assert!(refuse_cancel_with_money(Cancelled, 0, 0).is_ok());
        assert!(refuse_cancel_with_money(Confirmed, 500, 0).is_ok());
    }
}
