//! Products: cached public reads (list, search, one, barcode/SKU lookup) and manager+ writes
//! with optimistic concurrency (`version`, `ETag`, `If-Match`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use till_app::products::{NewProductInput, ProductPatchInput};
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
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products", get(list).post(create))
        .route("/products/lookup", get(lookup))
        .route("/products/{id}", get(read).patch(update).delete(deactivate))
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

#[derive(Deserialize)]
struct ListParams {
    category_id: Option<Uuid>,
    q: Option<String>,
    include_inactive: Option<bool>,
}

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

async fn read(
    State(state): State<AppState>,
    MaybeUser(who): MaybeUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let include_inactive = sees_inactive(&who);
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

#[derive(Deserialize)]
struct LookupParams {
    code: Option<String>,
}

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
