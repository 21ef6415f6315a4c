//! `POST /orders`: places an order at the till or online (`till_app::orders::place` holds the
//! rules). The answer carries `Location` and `ETag`, and is stored for idempotent retries.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use till_app::orders::PlaceInput;

use super::{caller, etag, order_json};
use crate::error::ApiResult;
use crate::extract::idempotency::{answer, respond};
use crate::extract::{AnyUser, Authed, Idempotent, RequestMeta};
use crate::state::AppState;

pub async fn create(
    State(state): State<AppState>,
    who: Authed<AnyUser>,
    meta: RequestMeta,
    idem: Idempotent<PlaceInput>,
) -> ApiResult<Response> {
    let done = till_app::orders::place(
        &state,
        &caller(&who),
        &meta.actor(&who),
        &idem.body,
        &idem.key,
        |order| {
            let mut headers = vec![etag(order.version)];
            // A UUID path is always a valid header value.
            if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/orders/{}", order.id)) {
                headers.insert(0, (header::LOCATION, location));
            }
            answer(StatusCode::CREATED, order_json(order), headers)
        },
    )
    .await?;
    Ok(respond(done))
}
