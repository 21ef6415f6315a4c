//! Creating a payment intent: the order's customer (or cashier+) asks the payment provider to
//! take the balance due. Nothing is paid yet; the provider's signed callback settles the intent
//! ([`crate::payments`]). Idempotent like every money write: the intent and its answer are
//! stored in one transaction.

use serde::Deserialize;
use till_db::orders;
use till_db::payment_intents::{self, Intent};
use till_domain::{balance_due, OrderStatus, Role};
use uuid::Uuid;

use super::{Caller, OrderError};
use crate::idempotency::{self, Answer, Begun, IdempotencyKey};
use crate::App;

/// The body of `POST /orders/{id}/payment-intents`: empty (`{}`); the amount is always the
/// balance due, never the client's choice.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentInput {}

/// Creates an intent for order `id`'s balance due under idempotency `key`; `render` shapes
/// the stored and replayed answer.
pub async fn create_intent(
    app: &App,
    caller: &Caller,
    id: Uuid,
    key: &IdempotencyKey,
    render: impl FnOnce(&Intent) -> Answer,
) -> Result<Answer, OrderError> {
    if caller.role != Role::Customer && !caller.role.is_cashier_or_above() {
        return Err(OrderError::Forbidden(None));
    }
    let mut run = match idempotency::begin::<OrderError>(app, caller.user_id, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let head = orders::lock(&mut run.tx, id).await?;
    if !caller.can_see(head.customer_id) {
        return Err(OrderError::NotFound);
    }
    match head.status()? {
        OrderStatus::Cancelled => {
            return Err(OrderError::Conflict(
                "This order is cancelled; it cannot take payments.",
            ))
        }
        OrderStatus::Delivered => {
            return Err(OrderError::Conflict(
                "This order was delivered; payments for it are taken by staff.",
            ))
        }
        _ => {}
    }
    let due = balance_due(head.total_cents, head.paid_cents);
    if due == 0 {
        return Err(OrderError::Conflict("Nothing is due on this order."));
    }
    let intent = payment_intents::create(&mut run.tx, id, due, caller.user_id).await?;
    run.finish::<OrderError>(render(&intent)).await
}
