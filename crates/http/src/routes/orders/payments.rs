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
use crate::state::AppState;

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
