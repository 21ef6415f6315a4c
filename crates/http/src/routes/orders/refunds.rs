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
use crate::state::AppState;

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
