//! Products: cached public reads (list, search, one, barcode/SKU lookup) and manager+ writes
//! with optimistic concurrency (`version`, `ETag`, `If-Match`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use till_app::products::{NewProductInput, ProductPatchInput};
use till_db::cursor::Page;
use till_db::products::{self, ListFilter, ProductRow};
use till_db::DbError;
use till_domain::{Barcode, Sku};
use uuid::Uuid;

use super::catalog_cache::{self, json_response, vis, Cached};
use crate::error::{ApiError, ApiResult};
use crate::extract::idempotency::{answer, etag_header, location, respond};
use crate::extract::{
    Authed, IfMatch, Json, ManagerPlus, MaybeIdempotent, MaybeUser, PageQuery, Principal, Query,
    RequestMeta,
};
use crate::openapi::schemas::{ErrorBody, PageParams};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(lookup))
        .routes(routes!(read, update, deactivate))
}

/// Longest `q` accepted: no product name is longer.
const MAX_Q_CHARS: usize = 200;

fn sees_inactive(who: &Option<Principal>) -> bool {
    who.as_ref().is_some_and(|p| p.role.is_manager_or_above())
}

/// A product answer with its `ETag`.
fn product_response(status: StatusCode, p: &ProductRow) -> ApiResult<Response> {
    let body = serde_json::to_vec(p).map_err(ApiError::internal)?;
    Ok(json_response(status, Some(p.version), Bytes::from(body)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    category_id: Option<Uuid>,
    /// Part of a name (any case), or an exact SKU or barcode; at most 200 characters.
    #[param(max_length = 200)]
    q: Option<String>,
    /// Managers and admins only.
    include_inactive: Option<bool>,
}

/// Products by name then id; anonymous callers and customers see active ones only.
#[utoipa::path(
    get,
    path = "/products",
    tag = "catalog",
    security((), ("bearer" = [])),
    params(ListParams, PageParams),
    responses(
        (status = 200, description = "A page of products", body = Page<ProductRow>),
        (status = 403, description = "`forbidden`: `include_inactive` is for managers", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    MaybeUser(who): MaybeUser,
    page: PageQuery,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    let include_inactive = params.include_inactive.unwrap_or(false);
    if include_inactive && !sees_inactive(&who) {
        return Err(match who {
            None => ApiError::unauthorized(),
            Some(_) => ApiError::forbidden_msg("Only managers may list inactive products."),
        });
    }
    let q = params.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > MAX_Q_CHARS) {
        return Err(ApiError::field("q", "must be at most 200 characters"));
    }
    let after = page.decode(products::decode_cursor)?;
    // q goes last: it is the only part that may contain the separator.
    let key = format!(
        "list:{}:{}:{}:{}:{}",
        vis(include_inactive),
        params
            .category_id
            .map(|c| c.to_string())
            .unwrap_or_default(),
        page.limit,
        page.cursor.as_deref().unwrap_or_default(),
        q.unwrap_or_default(),
    );
    let filter = ListFilter {
        category_id: params.category_id,
        q,
        include_inactive,
    };
    catalog_cache::read(&state, &key, || async {
        let rows = products::list(&state.db.write, &filter, after, page.limit).await?;
        Cached::json(&state.cursors.sign_page(rows), None)
    })
    .await
}

/// One product (inactive ones for managers only), with its `ETag`. Cashiers and above also get
/// `stock_by_location: [{location_id, on_hand}]`.
#[utoipa::path(
    get,
    path = "/products/{id}",
    tag = "catalog",
    security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = ProductRow,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
async fn read(
    State(state): State<AppState>,
    MaybeUser(who): MaybeUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let include_inactive = sees_inactive(&who);
    if who.as_ref().is_some_and(|p| p.role.is_cashier_or_above()) {
        return with_stock_by_location(&state, id, include_inactive).await;
    }
    let key = format!("p:{}:{id}", vis(include_inactive));
    catalog_cache::read(&state, &key, || async {
        let mut conn = state.db.write.acquire().await.map_err(DbError::from)?;
        match products::get(&mut conn, id, include_inactive).await? {
            Some(p) => Cached::json(&p, Some(p.version)),
            None => Ok(Cached::NotFound),
        }
    })
    .await
}

/// The product for cashiers and above: with `stock_by_location` (read fresh, not cached: the
/// cache is shared with callers who must not see it).
async fn with_stock_by_location(
    state: &AppState,
    id: Uuid,
    include_inactive: bool,
) -> ApiResult<Response> {
    let mut conn = state.db.write.acquire().await.map_err(DbError::from)?;
    let Some(p) = products::get(&mut conn, id, include_inactive).await? else {
        return Err(ApiError::not_found());
    };
    drop(conn);
    let by_location = till_db::locations::stock_by_location(&state.db.write, &[id])
        .await?
        .pop()
        .map(|(_, s)| s)
        .unwrap_or_default();
    let mut body = json!(p);
    body["stock_by_location"] = json!(by_location);
    let bytes = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    Ok(json_response(
        StatusCode::OK,
        Some(p.version),
        Bytes::from(bytes),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LookupParams {
    /// A barcode or SKU.
    #[param(required = true)]
    code: Option<String>,
}

/// The product whose barcode or SKU is `code` (a till's scan).
#[utoipa::path(
    get,
    path = "/products/lookup",
    tag = "catalog",
    security((), ("bearer" = [])),
    params(LookupParams),
    responses(
        (status = 200, description = "The product", body = ProductRow,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 404, description = "`not_found`: no product has this code", body = ErrorBody),
    )
)]
async fn lookup(
    State(state): State<AppState>,
    MaybeUser(who): MaybeUser,
    Query(params): Query<LookupParams>,
) -> ApiResult<Response> {
    let code = params.code.as_deref().map(str::trim).unwrap_or_default();
    if code.is_empty() {
        return Err(ApiError::field("code", "is required: a barcode or SKU"));
    }
    // No product can carry a code that is neither a valid barcode nor a valid SKU; answering
    // at once also keeps junk out of the cache.
    if Barcode::parse(code).is_err() && Sku::parse(code).is_err() {
        return Err(ApiError::not_found());
    }
    let include_inactive = sees_inactive(&who);
    let key = format!("l:{}:{code}", vis(include_inactive));
    catalog_cache::read(&state, &key, || async {
        match products::lookup(&state.db.write, code, include_inactive).await? {
            Some(p) => Cached::json(&p, Some(p.version)),
            None => Ok(Cached::NotFound),
        }
    })
    .await
}

/// Creates a product (stock starts at 0 and arrives through adjustments).
#[utoipa::path(
    post,
    path = "/products",
    tag = "catalog",
    security(("bearer" = [])),
    request_body = NewProductInput,
    responses(
        (status = 201, description = "Created", body = ProductRow,
            headers(("Location" = String, description = "The product's URL"), ("ETag" = String, description = "`\"<version>\"`"))),
        (status = 403, description = "`forbidden`: managers and admins only", body = ErrorBody),
        (status = 409, description = "`already_exists`: the SKU or barcode is taken", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    idem: MaybeIdempotent<NewProductInput>,
) -> ApiResult<Response> {
    let done = till_app::products::create(
        &state,
        &meta.actor(&who),
        who.user_id,
        &idem.body,
        idem.key.as_ref(),
        |product| {
            let mut headers = location(&format!("/api/v1/products/{}", product.id));
            headers.extend(etag_header(product.version));
            answer(StatusCode::CREATED, json!(product), headers)
        },
    )
    .await?;
    Ok(respond(done))
}

/// Changes the fields sent (`null` clears a nullable one).
#[utoipa::path(
    patch,
    path = "/products/{id}",
    tag = "catalog",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id"), ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (or `*`): 412 unless the product is still at that version")),
    request_body = ProductPatchInput,
    responses(
        (status = 200, description = "The product after the change", body = ProductRow,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 403, description = "`forbidden`: managers and admins only", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`already_exists`: the SKU or barcode is taken", body = ErrorBody),
        (status = 412, description = "`precondition_failed`: the product changed since it was read", body = ErrorBody),
    )
)]
async fn update(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    if_match: IfMatch,
    Path(id): Path<Uuid>,
    Json(body): Json<ProductPatchInput>,
) -> ApiResult<Response> {
    let after =
        till_app::products::update(&state, &meta.actor(&who), id, &if_match.0, &body).await?;
    product_response(StatusCode::OK, &after)
}

/// Soft delete: the product becomes inactive (orders keep referring to it). Deleting an
/// inactive product again is a no-op 204.
#[utoipa::path(
    delete,
    path = "/products/{id}",
    tag = "catalog",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id"), ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (or `*`): 412 unless the product is still at that version")),
    responses(
        (status = 204, description = "The product is inactive"),
        (status = 403, description = "`forbidden`: managers and admins only", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 412, description = "`precondition_failed`: the product changed since it was read", body = ErrorBody),
    )
)]
async fn deactivate(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    if_match: IfMatch,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    till_app::products::deactivate(&state, &meta.actor(&who), id, &if_match.0).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
