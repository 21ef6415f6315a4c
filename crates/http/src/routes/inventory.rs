//! The stock ledger over HTTP: manual adjustments (`till_app::stock`), the movement history,
//! the low-stock list.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use till_app::stock::AdjustmentInput;
use till_db::inventory;
use till_db::products;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::idempotency::{answer, respond};
use crate::extract::{
    Authed, Json, ManagerPlus, MaybeIdempotent, PageQuery, Query, RequestMeta, StaffSide,
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inventory/adjustments", post(adjust))
        .route("/inventory/movements", get(movements))
        .route("/inventory/low-stock", get(low_stock))
}

async fn adjust(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    idem: MaybeIdempotent<AdjustmentInput>,
) -> ApiResult<Response> {
    let done = till_app::stock::adjust(
        &state,
        &meta.actor(&who),
        who.user_id,
        &idem.body,
        idem.key.as_ref(),
        |movement, product| {
            answer(
                StatusCode::CREATED,
                json!({ "movement": movement, "product": product }),
                Vec::new(),
            )
        },
    )
    .await?;
    Ok(respond(done))
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
    Ok(Json(state.cursors.sign_page(rows)).into_response())
}

async fn low_stock(
    State(state): State<AppState>,
    _: Authed<StaffSide>,
    page: PageQuery,
) -> ApiResult<Response> {
    let after = page.decode(products::decode_cursor)?;
    let rows = products::low_stock(&state.db.write, after, page.limit).await?;
    Ok(Json(state.cursors.sign_page(rows)).into_response())
}
