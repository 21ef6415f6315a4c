//! `POST /orders/{id}/refunds` (manager+): money back, optionally with goods back on the shelf.
//! At most `paid − refunded` can go back (422 `over_refund`); a restock line may return at most
//! what the order sold of that product minus what came back already (by cancel or return).

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use till_db::orders::{self, Restock};
use till_db::stock::{self, MovementContext};
use till_db::{audit, PgConnection};
use till_domain::{FieldErrors, MovementReason};
use uuid::Uuid;

use super::{after_commit, etag, order_json, record_event};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authed, Idempotent, ManagerPlus, RequestMeta, Started};
use crate::state::AppState;

const MAX_REASON: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    amount_cents: i64,
    reason: String,
    #[serde(default)]
    restock: Vec<Restock>,
}

pub async fn refund(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    idem: Idempotent<RefundBody>,
) -> ApiResult<Response> {
    let body = &idem.body;
    let reason = check_body(body)?;

    let mut run = match idem.key.begin(&state, who.user_id).await? {
        Started::Replay(resp) => return Ok(resp),
        Started::Fresh(run) => run,
    };
    let head = orders::lock(&mut run.tx, id).await?;
    let refundable = head.paid_cents - head.refunded_cents;
    if body.amount_cents > refundable {
        return Err(ApiError::unprocessable(
            "over_refund",
            format!("At most {refundable} can be refunded on this order."),
        )
        .with_details(json!({"refundable_cents": refundable, "amount_cents": body.amount_cents})));
    }
    restock(&mut run.tx, id, &body.restock, who.user_id).await?;
    let refund = orders::add_refund(
        &mut run.tx,
        id,
        body.amount_cents,
        reason,
        &body.restock,
        who.user_id,
    )
    .await?;
    let data = json!({"refund_id": refund.id, "amount_cents": body.amount_cents, "reason": reason, "restock": body.restock});
    audit::record(
        &mut run.tx,
        &meta.actor(&who),
        "order.refund",
        "order",
        id,
        data,
    )
    .await?;
    let order = orders::get(&mut run.tx, id).await?;
    record_event(&mut run.tx, "order.updated", &order).await?;
    let answer = json!({"refund": refund, "order": order_json(&order)});
    run.save(StatusCode::CREATED, answer, vec![etag(order.version)])
        .await?;
    let resp = run.commit().await?;
    after_commit(&state, !body.restock.is_empty());
    Ok(resp)
}

fn check_body(b: &RefundBody) -> ApiResult<&str> {
    let mut errs = FieldErrors::new();
    if b.amount_cents <= 0 {
        errs.add("amount_cents", "must be more than 0");
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
        Err(ApiError::validation(errs))
    }
}

/// Checks each restock line against what the order can still return, then writes `return`
/// movements for all of them.
async fn restock(
    conn: &mut PgConnection,
    order_id: Uuid,
    lines: &[Restock],
    by: Uuid,
) -> ApiResult<()> {
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
        return Err(ApiError::validation(errs));
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
