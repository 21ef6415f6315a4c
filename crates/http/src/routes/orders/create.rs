//! `POST /orders`: places an order at the till or online (`till_app::orders::place` holds the
//! rules). The answer carries `Location` and `ETag`, and is stored for idempotent retries.

use axum::extract::State;
use axum::response::Response;
use till_app::orders::PlaceInput;

use super::caller;
use crate::error::ApiResult;
use crate::extract::idempotency::{etag_header, location, respond, stored_headers};
use crate::extract::{AnyUser, Authed, Idempotent, RequestMeta};
use crate::openapi::schemas::ErrorBody;
use crate::state::AppState;

/// Places an order: `pos` by cashier+, `online` by a customer for themself. Stock is taken at once.
#[utoipa::path(
    post,
    path = "/orders",
    tag = "orders",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Required")),
    request_body = PlaceInput,
    responses(
        (status = 201, description = "Placed, status `pending`", body = till_app::orders::OrderView,
            headers(("Location" = String, description = "The order's URL"), ("ETag" = String, description = "`\"<version>\"`"), ("Idempotent-Replayed" = String, description = "`true` on a replayed answer"))),
        (status = 400, description = "`idempotency_key_required`", body = ErrorBody),
        (status = 403, description = "`forbidden`: role, another customer, or a discount above the caller's limit", body = ErrorBody),
        (status = 409, description = "`insufficient_stock` (`details.lines`), `idempotency_key_in_use` or `conflict`", body = ErrorBody),
    )
)]
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
            stored_headers(
                [
                    location(&format!("/api/v1/orders/{}", order.id)),
                    etag_header(order.version),
                ]
                .concat(),
            )
        },
    )
    .await?;
    Ok(respond(done))
}
