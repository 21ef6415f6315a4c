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
