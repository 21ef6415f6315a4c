//! `POST /orders/{id}/payments`: one tender (`till_app::orders::pay` holds the rules).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use till_app::orders::PaymentInput;
use uuid::Uuid;

use super::{caller, etag, order_json};
use crate::error::ApiResult;
use crate::extract::idempotency::{answer, respond};
use crate::extract::{AnyUser, Authed, Idempotent, RequestMeta};
use crate::openapi::schemas::{ErrorBody, PaymentResult};
use crate::state::AppState;

/// Records one tender (split tenders are several payments).
#[utoipa::path(
    post,
    path = "/orders/{id}/payments",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id"), ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = PaymentInput,
    responses(
        (status = 201, description = "The payment and the order after it", body = PaymentResult,
            headers(("ETag" = String, description = "`\"<version>\"` of the order"), ("Idempotent-Replayed" = String, description = "`true` on a replayed answer"))),
        (status = 400, description = "`idempotency_key_required`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict` (e.g. a cancelled order) or `idempotency_key_in_use`", body = ErrorBody),
    )
)]
pub async fn pay(
    State(state): State<AppState>,
    who: Authed<AnyUser>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    idem: Idempotent<PaymentInput>,
) -> ApiResult<Response> {
    let done = till_app::orders::pay(
        &state,
        &caller(&who),
        &meta.actor(&who),
        id,
        &idem.body,
        &idem.key,
        |payment, order| {
            answer(
                StatusCode::CREATED,
                json!({"payment": payment, "order": order_json(order)}),
                vec![etag(order.version)],
            )
        },
    )
    .await?;
    Ok(respond(done))
}
