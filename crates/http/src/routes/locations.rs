//! Locations (stores and warehouses) and the stock levels per location.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use till_app::locations::{LocationPatchInput, NewLocationInput};
use till_db::cursor::Page;
use till_db::locations::{self, LevelRow, LocationRow};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::idempotency::{answer, etag_header, location, respond};
use crate::extract::{
    Admin, Authed, CashierPlus, IfMatch, Json, MaybeIdempotent, MaybeUser, PageQuery, Query,
    RequestMeta,
};
use crate::openapi::schemas::{AvailabilityList, ErrorBody, LocationList, PageParams};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(update))
        .routes(routes!(levels))
        .routes(routes!(availability))
}

/// Locations: staff see every one; anonymous callers and customers the active pickup ones.
#[utoipa::path(
    get,
    path = "/locations",
    tag = "inventory",
    security((), ("bearer" = [])),
    responses((status = 200, description = "Every location, the default first", body = LocationList))
)]
async fn list(State(state): State<AppState>, MaybeUser(who): MaybeUser) -> ApiResult<Response> {
    let public = !who.as_ref().is_some_and(|p| p.role.is_staff_side());
    let items = locations::list(&state.db.write, public).await?;
    Ok(Json(json!({ "items": items })).into_response())
}

/// Creates a location (admin).
#[utoipa::path(
    post,
    path = "/locations",
    tag = "inventory",
    security(("bearer" = [])),
    request_body = NewLocationInput,
    responses(
        (status = 201, description = "Created", body = LocationRow),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 409, description = "`already_exists`: the code is taken", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    who: Authed<Admin>,
    meta: RequestMeta,
    idem: MaybeIdempotent<NewLocationInput>,
) -> ApiResult<Response> {
    let done = till_app::locations::create(
        &state,
        &meta.actor(&who),
        who.user_id,
        &idem.body,
        idem.key.as_ref(),
        |l| {
            let mut headers = location(&format!("/api/v1/locations/{}", l.id));
            headers.extend(etag_header(l.version));
            answer(StatusCode::CREATED, json!(l), headers)
        },
    )
    .await?;
    Ok(respond(done))
}

/// Changes a location (admin). Deactivating the default location, or one that holds stock or
/// has open transfers → 409 `conflict`.
#[utoipa::path(
    patch,
    path = "/locations/{id}",
    tag = "inventory",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Location id"), ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (or `*`): 412 unless the location is still at that version")),
    request_body = LocationPatchInput,
    responses(
        (status = 200, description = "The location after the change", body = LocationRow),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`: it holds stock or has open transfers, or is the default", body = ErrorBody),
        (status = 412, description = "`precondition_failed`", body = ErrorBody),
    )
)]
async fn update(
    State(state): State<AppState>,
    who: Authed<Admin>,
    meta: RequestMeta,
    if_match: IfMatch,
    Path(id): Path<Uuid>,
    Json(body): Json<LocationPatchInput>,
) -> ApiResult<Response> {
    let row =
        till_app::locations::update(&state, &meta.actor(&who), id, &body, &if_match.0).await?;
    Ok(respond(answer(
        StatusCode::OK,
        json!(row),
        etag_header(row.version),
    )))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LevelParams {
    product_id: Option<Uuid>,
    location_id: Option<Uuid>,
}

/// Stock per (product, location): on hand, and units on their way there.
#[utoipa::path(
    get,
    path = "/inventory/levels",
    tag = "inventory",
    security(("bearer" = [])),
    params(LevelParams, PageParams),
    responses(
        (status = 200, description = "A page of stock levels", body = Page<LevelRow>),
        (status = 403, description = "`forbidden`: cashiers and above", body = ErrorBody),
    )
)]
async fn levels(
    State(state): State<AppState>,
    _: Authed<CashierPlus>,
    page: PageQuery,
    Query(params): Query<LevelParams>,
) -> ApiResult<Response> {
    let after = page.decode(locations::decode_level_cursor)?;
    let rows = locations::levels(
        &state.db.write,
        params.product_id,
        params.location_id,
        after,
        page.limit,
    )
    .await?;
    Ok(Json(state.cursors.sign_page(rows)).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AvailabilityParams {
    #[param(required = true)]
    product_id: Option<Uuid>,
}

/// Units of a product at each active pickup location (anyone: the shop's store picker).
#[utoipa::path(
    get,
    path = "/inventory/availability",
    tag = "inventory",
    security((), ("bearer" = [])),
    params(AvailabilityParams),
    responses(
        (status = 200, description = "One entry per pickup location (empty for an unknown, inactive or untracked product)", body = AvailabilityList),
    )
)]
async fn availability(
    State(state): State<AppState>,
    Query(params): Query<AvailabilityParams>,
) -> ApiResult<Response> {
    let Some(product_id) = params.product_id else {
        return Err(crate::error::ApiError::field("product_id", "is required"));
    };
    let items = locations::pickup_availability(&state.db.write, product_id).await?;
    Ok(Json(json!({ "items": items })).into_response())
}
