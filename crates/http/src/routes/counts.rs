//! Stock counts at a location (`till_app::counts`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use till_app::counts::{CountLinesInput, NewCountInput};
use till_db::counts::{self, StockCount};
use till_db::cursor::Page;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::idempotency::{answer, etag_header, location, respond, Answer, BodilessKey};
use crate::extract::{
    Authed, Json, ManagerOrStaff, ManagerPlus, MaybeIdempotent, PageQuery, Query, RequestMeta,
};
use crate::openapi::schemas::{ErrorBody, PageParams};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read))
        .routes(routes!(put_lines))
        .routes(routes!(apply))
        .routes(routes!(cancel))
}

/// 200 with the count and its `ETag`: what reads, line updates, applies and cancels answer.
fn with_etag(c: &StockCount) -> Answer {
    answer(StatusCode::OK, json!(c), etag_header(c.version))
}

/// Opens a stock count at a location.
#[utoipa::path(
    post,
    path = "/inventory/counts",
    tag = "inventory",
    security(("bearer" = [])),
    request_body = NewCountInput,
    responses(
        (status = 201, description = "Created", body = StockCount),
        (status = 403, description = "`forbidden`: managers and staff", body = ErrorBody),
        (status = 409, description = "`idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 422, description = "`validation_failed`: no such active location", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    who: Authed<ManagerOrStaff>,
    meta: RequestMeta,
    idem: MaybeIdempotent<NewCountInput>,
) -> ApiResult<Response> {
    let done = till_app::counts::create(
        &state,
        &meta.actor(&who),
        who.user_id,
        &idem.body,
        idem.key.as_ref(),
        |c| {
            let mut headers = location(&format!("/api/v1/inventory/counts/{}", c.id));
            headers.extend(etag_header(c.version));
            answer(StatusCode::CREATED, json!(c), headers)
        },
    )
    .await?;
    Ok(respond(done))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    location_id: Option<Uuid>,
    /// `open`, `applied` or `cancelled`.
    status: Option<String>,
}

/// Stock counts, newest first.
#[utoipa::path(
    get,
    path = "/inventory/counts",
    tag = "inventory",
    security(("bearer" = [])),
    params(ListParams, PageParams),
    responses(
        (status = 200, description = "A page of counts", body = Page<StockCount>),
        (status = 403, description = "`forbidden`: managers and staff", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    _: Authed<ManagerOrStaff>,
    page: PageQuery,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    if let Some(s) = &params.status {
        if !["open", "applied", "cancelled"].contains(&s.as_str()) {
            return Err(ApiError::field(
                "status",
                "must be open, applied or cancelled",
            ));
        }
    }
    let before = page.decode(counts::decode_cursor)?;
    let rows = counts::list(
        &state.db.write,
        params.location_id,
        params.status.as_deref(),
        before,
        page.limit,
    )
    .await?;
    Ok(Json(state.cursors.sign_page(rows)).into_response())
}

/// One count.
#[utoipa::path(
    get,
    path = "/inventory/counts/{id}",
    tag = "inventory",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Count id")),
    responses(
        (status = 403, description = "`forbidden`: not allowed for this role", body = ErrorBody),
        (status = 200, description = "The count", body = StockCount),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
async fn read(
    State(state): State<AppState>,
    _: Authed<ManagerOrStaff>,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    Ok(respond(with_etag(
        &till_app::counts::get(&state, id).await?,
    )))
}

/// Records counted lines, each stamped now (a product counted again is re-stamped).
#[utoipa::path(
    put,
    path = "/inventory/counts/{id}/lines",
    tag = "inventory",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Count id")),
    request_body = CountLinesInput,
    responses(
        (status = 403, description = "`forbidden`: not allowed for this role", body = ErrorBody),
        (status = 200, description = "The count", body = StockCount),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: the count is no longer open", body = ErrorBody),
    )
)]
async fn put_lines(
    State(state): State<AppState>,
    who: Authed<ManagerOrStaff>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(body): Json<CountLinesInput>,
) -> ApiResult<Response> {
    let c = till_app::counts::put_lines(&state, &meta.actor(&who), id, &body).await?;
    Ok(respond(with_etag(&c)))
}

/// Applies the count: each counted product's stock becomes counted + the movements after its
/// stamp; a result below zero on any line → 409 `insufficient_stock`, nothing applied.
#[utoipa::path(
    post,
    path = "/inventory/counts/{id}/apply",
    tag = "inventory",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Count id")),
    responses(
        (status = 403, description = "`forbidden`: not allowed for this role", body = ErrorBody),
        (status = 200, description = "The applied count", body = StockCount),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`insufficient_stock` or `invalid_transition`; `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the Idempotency-Key was used for another request", body = ErrorBody),
    )
)]
async fn apply(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    BodilessKey(key): BodilessKey,
) -> ApiResult<Response> {
    let done = till_app::counts::apply(
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

/// Cancels an open count; nothing moves.
#[utoipa::path(
    post,
    path = "/inventory/counts/{id}/cancel",
    tag = "inventory",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Count id")),
    responses(
        (status = 403, description = "`forbidden`: not allowed for this role", body = ErrorBody),
        (status = 200, description = "The cancelled count", body = StockCount),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: not open; `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = ErrorBody),
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
    let done = till_app::counts::cancel(
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
