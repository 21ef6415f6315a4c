//! Manual stock adjustments (manager+): goods received, damaged, counted or corrected. Each is
//! one movement in the ledger, audited, and the catalog cache is invalidated after the commit.

use serde::Deserialize;
use serde_json::json;
use till_db::audit::{self, Actor};
use till_db::inventory::{self, MovementError, MovementRow};
use till_db::products::{self, ProductRow};
use till_db::stock::Shortage;
use till_db::DbError;
use till_domain::{FieldErrors, MovementReason};
use uuid::Uuid;

use crate::idempotency::{self, Answer, Begun, IdempotencyError, IdempotencyKey};
use crate::App;

const MAX_NOTE: usize = 500;

/// An adjustment as asked for; every field is checked here (missing ones are field errors).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentInput {
    #[schema(value_type = Uuid, required = true)]
    pub product_id: Option<Uuid>,
    /// Units added (positive) or taken (negative); never 0.
    #[schema(value_type = i64, required = true)]
    pub delta: Option<i64>,
    /// One of `received`, `damage`, `count`, `correction`.
    #[schema(value_type = String, required = true)]
    pub reason: Option<String>,
    pub note: Option<String>,
    /// Where the stock moves (an active location); absent: the default location.
    pub location_id: Option<Uuid>,
}

/// Why an adjustment was refused.
#[derive(Debug, thiserror::Error)]
pub enum StockError {
    #[error("invalid adjustment: {0}")]
    Validation(FieldErrors),
    /// Taking `requested` would leave less than zero; `available` is the stock now.
    #[error("insufficient stock for {}", .0.product_id)]
    Insufficient(Shortage),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Applies a manual adjustment by `by`; `render` shapes the answer from the movement and the
/// product after it. With `key`, a retry gets that answer back instead of a second movement.
pub async fn adjust(
    app: &App,
    actor: &Actor,
    by: Uuid,
    input: &AdjustmentInput,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&MovementRow, &ProductRow) -> Answer,
) -> Result<Answer, StockError> {
    let mut errs = FieldErrors::default();
    if input.product_id.is_none() {
        errs.add("product_id", "is required");
    }
    match input.delta {
        None => {
            errs.add("delta", "is required");
        }
        Some(d) => {
            if let Err(e) = till_domain::limits::check_stock_delta(d) {
                errs.add("delta", e.message());
            }
        }
    }
    let reason = input
        .reason
        .as_deref()
        .and_then(|r| r.parse::<MovementReason>().ok())
        .filter(|r| r.is_manual_adjustment());
    if reason.is_none() {
        errs.add(
            "reason",
            "must be one of received, damage, count, correction",
        );
    }
    let note = input
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > MAX_NOTE) {
        errs.add("note", "must be at most 500 characters");
    }
    let (Some(product_id), Some(delta), Some(reason)) = (input.product_id, input.delta, reason)
    else {
        return Err(StockError::Validation(errs));
    };
    if !errs.is_empty() {
        return Err(StockError::Validation(errs));
    }
    let mut run = match idempotency::begin::<StockError>(app, by, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    let movement = inventory::apply_movement(
        tx,
        product_id,
        input.location_id,
        delta,
        reason,
        None,
        note,
        Some(by),
    )
    .await
    .map_err(|e| match e {
        // The product is named in the body, not the path: an error on the field.
        MovementError::ProductNotFound => {
            let mut errs = FieldErrors::default();
            errs.add("product_id", "no product with this id");
            StockError::Validation(errs)
        }
        MovementError::LocationNotFound => {
            let mut errs = FieldErrors::default();
            errs.add("location_id", "no such location, or it is inactive");
            StockError::Validation(errs)
        }
        MovementError::Insufficient(short) => StockError::Insufficient(short),
        MovementError::Db(e) => StockError::Db(e),
    })?;
    let product = products::get(tx, product_id, true)
        .await?
        .ok_or(DbError::NotFound)?;
    audit::record(
        tx,
        actor,
        "stock.adjust",
        "product",
        product.id,
        json!({"movement_id": movement.id, "delta": movement.delta, "reason": movement.reason,
               "balance_after": movement.balance_after, "note": movement.note,
               "location_id": movement.location_id}),
    )
    .await?;
    // For webhooks only: live clients learn about stock through `stock.low`.
    let event = json!({
        "type": "inventory.adjusted",
        "at": chrono::Utc::now(),
        "audience": "none",
        "data": {"movement": &movement, "product_id": product.id, "sku": &product.sku,
                 "stock_on_hand": product.stock_on_hand},
    });
    till_db::outbox::enqueue(tx, "inventory.adjusted", &event).await?;
    let answer = run
        .finish::<StockError>(render(&movement, &product))
        .await?;
    app.after_commit(false);
    app.invalidate_catalog().await;
    Ok(answer)
}
