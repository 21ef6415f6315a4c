//! `POST /orders/{id}/transitions {"to"}`: moves an order along the lifecycle table
//! (`till_app::orders::transition` holds the rules).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use till_domain::OrderStatus;
use uuid::Uuid;

use super::{caller, etag, order_json};
use crate::error::ApiResult;
use crate::extract::idempotency::{answer, respond};
use crate::extract::{AnyUser, Authed, IfMatch, MaybeIdempotent, RequestMeta};
use crate::openapi::schemas::ErrorBody;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Transition)]
pub struct TransitionBody {
    to: OrderStatus,
}

/// Moves the order along its lifecycle.
#[utoipa::path(
    post,
    path = "/orders/{id}/transitions",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id"),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (or `*`): 412 unless the order is still at that version")),
    request_body = TransitionBody,
    responses(
        (status = 200, description = "The order after the move", body = till_app::orders::OrderView,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (`details` {from, to, allowed}) or `conflict`", body = ErrorBody),
        (status = 412, description = "`precondition_failed`", body = ErrorBody),
    )
)]
pub async fn transition(
    State(state): State<AppState>,
    who: Authed<AnyUser>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    idem: MaybeIdempotent<TransitionBody>,
) -> ApiResult<Response> {
    let done = till_app::orders::transition(
        &state,
        &caller(&who),
        &meta.actor(&who),
        id,
        idem.body.to,
        &if_match.0,
        idem.key.as_ref(),
        |order| answer(StatusCode::OK, order_json(order), vec![etag(order.version)]),
    )
    .await?;
    Ok(respond(done))
}
