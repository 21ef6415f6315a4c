//! `POST /orders/{id}/transitions {"to"}`: moves an order along the lifecycle table
//! (`till_app::orders::transition` holds the rules).

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use till_domain::OrderStatus;
use uuid::Uuid;

use super::{caller, etag, order_json};
use crate::error::ApiResult;
use crate::extract::{AnyUser, Authed, IfMatch, Json, RequestMeta};
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
    Json(body): Json<TransitionBody>,
) -> ApiResult<impl IntoResponse> {
    let order = till_app::orders::transition(
        &state,
        &caller(&who),
        &meta.actor(&who),
        id,
        body.to,
        &if_match.0,
    )
    .await?;
    Ok(([etag(order.version)], Json(order_json(&order))))
}
