//! `POST /orders/{id}/transitions {"to"}`: moves an order along API.md's lifecycle table.
//! Staff-side roles may make any allowed move; a customer may only cancel their own order while
//! it is `pending`. Cancelling puts back what the order took and has not yet returned.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use till_db::orders;
use till_db::stock::{self, MovementContext};
use till_db::{audit, DbError, PgConnection};
use till_domain::{check_transition, MovementReason, OrderStatus};
use uuid::Uuid;

use super::{after_commit, can_see, etag, if_match, order_json, record_event};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AnyUser, Authed, Json, RequestMeta};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    to: OrderStatus,
}

pub async fn transition(
    State(state): State<AppState>,
    who: Authed<AnyUser>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(body): Json<TransitionBody>,
) -> ApiResult<impl IntoResponse> {
    let expected = if_match(&headers)?;
    let mut tx = state.db.write.begin().await.map_err(DbError::from)?;
    let head = orders::lock(&mut tx, id).await?;
    if !can_see(&who, head.customer_id) {
        return Err(ApiError::not_found());
    }
    let from = head.status()?;
    if !who.role.is_staff_side()
        && (body.to != OrderStatus::Cancelled || from != OrderStatus::Pending)
    {
        return Err(ApiError::forbidden_msg(
            "Customers can only cancel their own orders while they are pending.",
        ));
    }
    if expected.is_some_and(|v| v != head.version) {
        return Err(ApiError::precondition_failed());
    }
    check_transition(from, body.to, head.fulfilment()?).map_err(|e| {
        ApiError::conflict("invalid_transition", e.to_string()).with_details(json!(e))
    })?;
    if body.to == OrderStatus::Cancelled {
        return_stock(&mut tx, id, Some(who.user_id)).await?;
    }
    orders::set_status(&mut tx, id, body.to, Some(who.user_id)).await?;
    if who.role.is_staff_side() {
        audit::record(
            &mut tx,
            &meta.actor(&who),
            "order.transition",
            "order",
            id,
            json!({"from": from, "to": body.to}),
        )
        .await?;
    }
    let order = orders::get(&mut tx, id).await?;
    record_event(&mut tx, "order.updated", &order).await?;
    tx.commit().await.map_err(DbError::from)?;
    after_commit(&state, body.to == OrderStatus::Cancelled);
    Ok(([etag(order.version)], Json(order_json(&order))))
}

/// The worker's job: cancels unpaid `online` orders still `pending` after
/// `ORDER_UNPAID_TTL_MINUTES`, returning their stock. Each order is its own transaction that
/// re-checks the order under lock, so a rerun (after a crash) or a payment arriving meanwhile
/// never cancels twice or cancels a paid order. Returns how many were cancelled.
pub async fn cancel_expired_unpaid(state: &AppState) -> ApiResult<usize> {
    let ttl = state.config.order_unpaid_ttl.as_secs() as i64;
    let mut cancelled = 0;
    loop {
        let ids = orders::expired_unpaid(&state.db.write, ttl, 100).await?;
        if ids.is_empty() {
            break;
        }
        let mut progressed = false;
        for id in ids {
            let mut tx = state.db.write.begin().await.map_err(DbError::from)?;
            let head = orders::lock(&mut tx, id).await?;
            let paid = orders::get(&mut tx, id).await?.paid_cents;
            let still_due = head.status()? == OrderStatus::Pending && paid == 0;
            if !still_due {
                continue;
            }
            return_stock(&mut tx, id, None).await?;
            orders::set_status(&mut tx, id, OrderStatus::Cancelled, None).await?;
            let order = orders::get(&mut tx, id).await?;
            record_event(&mut tx, "order.updated", &order).await?;
            tx.commit().await.map_err(DbError::from)?;
            cancelled += 1;
            progressed = true;
        }
        if !progressed {
            break;
        }
    }
    if cancelled > 0 {
        crate::routes::catalog_cache::invalidate(state).await;
    }
    Ok(cancelled)
}

/// Puts back, per tracked product, what the order sold minus what already came back.
async fn return_stock(conn: &mut PgConnection, order_id: Uuid, by: Option<Uuid>) -> ApiResult<()> {
    let back: Vec<(Uuid, i64)> = orders::returnable(conn, order_id)
        .await?
        .into_iter()
        .filter(|r| r.track_stock && r.sold > r.returned)
        .map(|r| (r.product_id, r.sold - r.returned))
        .collect();
    let ctx = MovementContext {
        reason: MovementReason::Cancel,
        order_id: Some(order_id),
        user_id: by,
    };
    stock::put(conn, &back, ctx).await?;
    Ok(())
}
