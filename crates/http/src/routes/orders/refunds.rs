//! `POST /orders/{id}/refunds` (manager+): money back, optionally with goods back on the shelf
//! (`till_app::orders::refund` holds the rules).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use till_app::orders::RefundInput;
use uuid::Uuid;

use super::{caller, etag, order_json};
use crate::error::ApiResult;
use crate::extract::idempotency::{answer, respond};
use crate::extract::{Authed, Idempotent, ManagerPlus, RequestMeta};
use crate::openapi::schemas::{ErrorBody, RefundResult};
use crate::state::AppState;

/// Gives money back, optionally putting goods back on the shelf.
#[utoipa::path(
    post,
    path = "/orders/{id}/refunds",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id"), ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = RefundInput,
    responses(
        (status = 201, description = "The refund and the order after it", body = RefundResult,
            headers(("ETag" = String, description = "`\"<version>\"` of the order"), ("Idempotent-Replayed" = String, description = "`true` on a replayed answer"))),
        (status = 400, description = "`idempotency_key_required`", body = ErrorBody),
        (status = 403, description = "`forbidden`: managers and admins only", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict` or `idempotency_key_in_use`", body = ErrorBody),
    )
)]
pub async fn refund(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    idem: Idempotent<RefundInput>,
) -> ApiResult<Response> {
    let done = till_app::orders::refund(
        &state,
        &caller(&who),
        &meta.actor(&who),
        id,
        &idem.body,
        &idem.key,
        |refund, order| {
            answer(
                StatusCode::CREATED,
                json!({"refund": refund, "order": order_json(order)}),
                vec![etag(order.version)],
            )
        },
    )
    .await?;
    Ok(respond(done))
}
