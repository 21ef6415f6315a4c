//! The stock ledger over HTTP: manual adjustments (`till_app::stock`), the movement history,
//! the low-stock list.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use till_app::stock::AdjustmentInput;
use till_db::cursor::Page;
use till_db::inventory::{self, MovementRow};
use till_db::products::{self, ProductRow};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::idempotency::{answer, respond};
use crate::extract::{
    Authed, Json, ManagerPlus, MaybeIdempotent, PageQuery, Query, RequestMeta, StaffSide,
};
use crate::openapi::schemas::{AdjustmentResult, ErrorBody, PageParams};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(adjust))
        .routes(routes!(movements))
        .routes(routes!(low_stock))
}

/// A manual stock change (received, damage, count, correction); stock never goes below zero.
#[utoipa::path(
    post,
    path = "/inventory/adjustments",
    tag = "inventory",
    security(("bearer" = [])),
    request_body = AdjustmentInput,
    responses(
        (status = 201, description = "The movement and the product after it", body = AdjustmentResult),
        (status = 403, description = "`forbidden`: managers and admins only", body = ErrorBody),
        (status = 404, description = "`not_found`: no such product", body = ErrorBody),
        (status = 409, description = "`insufficient_stock`: `details` {product_id, requested, available}", body = ErrorBody),
    )
)]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct MovementParams {
    /// Only this product's movements.
    product_id: Option<Uuid>,
}

/// The stock ledger, newest first.
#[utoipa::path(
    get,
    path = "/inventory/movements",
    tag = "inventory",
    security(("bearer" = [])),
    params(MovementParams, PageParams),
    responses(
        (status = 200, description = "A page of movements", body = Page<MovementRow>),
        (status = 403, description = "`forbidden`: managers and admins only", body = ErrorBody),
    )
)]
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

/// Tracked products at or below their low-stock threshold.
#[utoipa::path(
    get,
    path = "/inventory/low-stock",
    tag = "inventory",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of products", body = Page<ProductRow>),
        (status = 403, description = "`forbidden`: staff only", body = ErrorBody),
    )
)]
async fn low_stock(
    State(state): State<AppState>,
    _: Authed<StaffSide>,
    page: PageQuery,
) -> ApiResult<Response> {
    let after = page.decode(products::decode_cursor)?;
    let rows = products::low_stock(&state.db.write, after, page.limit).await?;
    Ok(Json(state.cursors.sign_page(rows)).into_response())
}
