//! The stock ledger over HTTP: manual adjustments, the movement history, the low-stock list.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use till_db::inventory::{self, MovementError};
use till_db::{audit, products, DbError};
use till_domain::{FieldErrors, MovementReason};
use uuid::Uuid;

use super::catalog_cache;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authed, Json, ManagerPlus, PageQuery, Query, RequestMeta, StaffSide};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inventory/adjustments", post(adjust))
        .route("/inventory/movements", get(movements))
        .route("/inventory/low-stock", get(low_stock))
}

impl From<MovementError> for ApiError {
    fn from(e: MovementError) -> Self {
        match e {
            MovementError::ProductNotFound => ApiError::not_found(),
            MovementError::Insufficient {
                product_id,
                requested,
                available,
            } => ApiError::conflict(
                "insufficient_stock",
                format!("Only {available} in stock; {requested} requested."),
            )
            .with_details(json!({
                "product_id": product_id,
                "requested": requested,
                "available": available,
            })),
            MovementError::Db(e) => e.into(),
        }
    }
}

/// Largest single adjustment; keeps `stock + delta` far from overflow.
const MAX_ABS_DELTA: i64 = 1_000_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustmentBody {
    product_id: Option<Uuid>,
    delta: Option<i64>,
    reason: Option<String>,
    note: Option<String>,
}

async fn adjust(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    Json(body): Json<AdjustmentBody>,
) -> ApiResult<Response> {
    let mut errs = FieldErrors::default();
    if body.product_id.is_none() {
        errs.add("product_id", "is required");
    }
    match body.delta {
        None => {
            errs.add("delta", "is required");
        }
        Some(0) => {
            errs.add("delta", "must not be 0");
        }
        Some(d) if d.abs() > MAX_ABS_DELTA => {
            errs.add("delta", "must be between -1000000000 and 1000000000");
        }
        Some(_) => {}
    }
    let reason = body
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
    let note = body
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > 500) {
        errs.add("note", "must be at most 500 characters");
    }
    let (Some(product_id), Some(delta), Some(reason)) = (body.product_id, body.delta, reason)
    else {
        return Err(ApiError::validation(errs));
    };
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let mut tx = state.db.write.begin().await.map_err(DbError::from)?;
    let movement = inventory::apply_movement(
        &mut tx,
        product_id,
        delta,
        reason,
        None,
        note,
        Some(who.user_id),
    )
    .await
    .map_err(|e| match e {
        // The product is named in the body, not the path: a 422 on the field.
        MovementError::ProductNotFound => ApiError::field("product_id", "no product with this id"),
        e => e.into(),
    })?;
    let product = products::get(&mut tx, product_id, true)
        .await?
        .ok_or_else(ApiError::not_found)?;
    audit::record(
        &mut tx,
        &meta.actor(&who),
        "stock.adjust",
        "product",
        product.id,
        json!({"movement_id": movement.id, "delta": movement.delta, "reason": movement.reason,
               "balance_after": movement.balance_after, "note": movement.note}),
    )
    .await?;
    tx.commit().await.map_err(DbError::from)?;
    catalog_cache::invalidate(&state).await;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "movement": movement, "product": product })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct MovementParams {
    product_id: Option<Uuid>,
}

async fn movements(
    State(state): State<AppState>,
    _: Authed<ManagerPlus>,
    page: PageQuery,
    Query(params): Query<MovementParams>,
) -> ApiResult<Response> {
    let before = page.decode(inventory::decode_cursor)?;
    let rows = inventory::list(&state.db.write, params.product_id, before, page.limit).await?;
    Ok(Json(rows).into_response())
}

async fn low_stock(
    State(state): State<AppState>,
    _: Authed<StaffSide>,
    page: PageQuery,
) -> ApiResult<Response> {
    let after = page.decode(products::decode_cursor)?;
    let rows = products::low_stock(&state.db.write, after, page.limit).await?;
    Ok(Json(rows).into_response())
}
