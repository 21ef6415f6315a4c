//! Transfers of stock between locations (`till_app::transfers`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use till_app::transfers::{NewTransferInput, ReceiptInput};
use till_db::cursor::Page;
use till_db::transfers::{self, Transfer};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::idempotency::{answer, etag_header, location, respond, Answer, BodilessKey};
use crate::extract::{
    Authed, Idempotent, Json, ManagerOrStaff, ManagerPlus, MaybeIdempotent, PageQuery, Query,
    RequestMeta, StaffSide,
};
use crate::openapi::schemas::{ErrorBody, PageParams, ReceiptResult};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read))
        .routes(routes!(dispatch))
        .routes(routes!(receive))
        .routes(routes!(cancel))
}

const STATUSES: [&str; 5] = [
    "draft",
    "in_transit",
    "partially_received",
    "received",
    "cancelled",
];

/// 200 with the transfer and its `ETag`: what reads, dispatches and cancels answer.
fn with_etag(t: &Transfer) -> Answer {
    answer(StatusCode::OK, json!(t), etag_header(t.version))
}

/// Creates a transfer: a draft, or in transit at once with `dispatch: true`.
#[utoipa::path(
    post,
    path = "/inventory/transfers",
    tag = "inventory",
    security(("bearer" = [])),
    request_body = NewTransferInput,
    responses(
        (status = 201, description = "Created", body = Transfer),
        (status = 403, description = "`forbidden`: managers and admins only", body = ErrorBody),
        (status = 409, description = "`insufficient_stock` (with `dispatch`): `details` {location_id, lines}", body = ErrorBody),
        (status = 422, description = "`validation_failed`: same location twice, inactive location, untracked or repeated product", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    idem: MaybeIdempotent<NewTransferInput>,
) -> ApiResult<Response> {
    let done = till_app::transfers::create(
        &state,
        &meta.actor(&who),
        who.user_id,
        &idem.body,
        idem.key.as_ref(),
        |t| {
            let mut headers = location(&format!("/api/v1/inventory/transfers/{}", t.id));
            headers.extend(etag_header(t.version));
            answer(StatusCode::CREATED, json!(t), headers)
        },
    )
    .await?;
    Ok(respond(done))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// `draft`, `in_transit`, `partially_received`, `received` or `cancelled`.
    status: Option<String>,
    /// Transfers from or to this location.
    location_id: Option<Uuid>,
}

/// Transfers, newest first.
#[utoipa::path(
    get,
    path = "/inventory/transfers",
    tag = "inventory",
    security(("bearer" = [])),
    params(ListParams, PageParams),
    responses(
        (status = 200, description = "A page of transfers", body = Page<Transfer>),
        (status = 403, description = "`forbidden`: staff only", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    _: Authed<StaffSide>,
    page: PageQuery,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    if let Some(s) = &params.status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(ApiError::field(
                "status",
                "must be draft, in_transit, partially_received, received or cancelled",
            ));
        }
    }
    let before = page.decode(transfers::decode_cursor)?;
    let rows = transfers::list(
        &state.db.write,
        params.status.as_deref(),
        params.location_id,
        before,
        page.limit,
    )
    .await?;
    Ok(Json(state.cursors.sign_page(rows)).into_response())
}

/// One transfer.
#[utoipa::path(
    get,
    path = "/inventory/transfers/{id}",
    tag = "inventory",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Transfer id")),
    responses(
        (status = 403, description = "`forbidden`: not allowed for this role", body = ErrorBody),
        (status = 200, description = "The transfer", body = Transfer),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
async fn read(
    State(state): State<AppState>,
    _: Authed<StaffSide>,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    Ok(respond(with_etag(
        &till_app::transfers::get(&state, id).await?,
    )))
}

/// Dispatches a draft: every line leaves the source at once, or nothing does.
#[utoipa::path(
    post,
    path = "/inventory/transfers/{id}/dispatch",
    tag = "inventory",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Transfer id")),
    responses(
        (status = 403, description = "`forbidden`: not allowed for this role", body = ErrorBody),
        (status = 200, description = "The transfer, in transit", body = Transfer),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`insufficient_stock` (`details` {location_id, lines}) or `invalid_transition`; `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the Idempotency-Key was used for another request", body = ErrorBody),
    )
)]
async fn dispatch(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    BodilessKey(key): BodilessKey,
) -> ApiResult<Response> {
    let done = till_app::transfers::dispatch(
        &state,
        &meta.actor(&who),
        who.user_id,
        id,
        key.as_ref(),
        with_etag,
    )
    .await?;
    Ok(respond(done))
}

/// Records units received (and damaged) at the destination. Idempotency-Key required.
#[utoipa::path(
    post,
    path = "/inventory/transfers/{id}/receipts",
    tag = "inventory",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Transfer id"), ("Idempotency-Key" = String, Header, description = "1..255 characters")),
    request_body = ReceiptInput,
    responses(
        (status = 403, description = "`forbidden`: not allowed for this role", body = ErrorBody),
        (status = 201, description = "The receipt and the transfer after it", body = ReceiptResult),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: not in transit", body = ErrorBody),
        (status = 422, description = "`over_receipt`: more than outstanding (`details.lines`)", body = ErrorBody),
    )
)]
async fn receive(
    State(state): State<AppState>,
    who: Authed<ManagerOrStaff>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    idem: Idempotent<ReceiptInput>,
) -> ApiResult<Response> {
    let done = till_app::transfers::receive(
        &state,
        &meta.actor(&who),
        who.user_id,
        id,
        &idem.body,
        &idem.key,
        |receipt, t| {
            answer(
                StatusCode::CREATED,
                json!({"receipt": receipt, "transfer": t}),
                Vec::new(),
            )
        },
    )
    .await?;
    Ok(respond(done))
}

/// Cancels: a draft is dropped; a transfer in transit returns its outstanding units to the
/// source.
#[utoipa::path(
    post,
    path = "/inventory/transfers/{id}/cancel",
    tag = "inventory",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Transfer id")),
    responses(
        (status = 403, description = "`forbidden`: not allowed for this role", body = ErrorBody),
        (status = 200, description = "The cancelled transfer", body = Transfer),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: received or cancelled already; `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the Idempotency-Key was used for another request", body = ErrorBody),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    BodilessKey(key): BodilessKey,
) -> ApiResult<Response> {
    let done = till_app::transfers::cancel(
        &state,
        &meta.actor(&who),
        who.user_id,
        id,
        key.as_ref(),
        with_etag,
    )
    .await?;
    Ok(respond(done))
}
