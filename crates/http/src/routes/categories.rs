//! Categories: public list (cached), manager+ create.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use till_db::categories::{self, CategoryRow};

use super::catalog_cache::{self, Cached};
use crate::error::ApiResult;
use crate::extract::idempotency::{answer, respond};
use crate::extract::{Authed, ManagerPlus, MaybeIdempotent, RequestMeta};
use crate::openapi::schemas::{CategoryList, ErrorBody};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create))
}

/// Every category (public, cached).
#[utoipa::path(
    get,
    path = "/categories",
    tag = "catalog",
    responses((status = 200, description = "All categories", body = CategoryList))
)]
async fn list(State(state): State<AppState>) -> ApiResult<Response> {
    catalog_cache::read(&state, "categories", || async {
        let items = categories::list(&state.db.write).await?;
        Cached::json(&json!({ "items": items }), None)
    })
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewCategory {
    name: String,
}

/// Creates a category; its slug is derived from the name.
#[utoipa::path(
    post,
    path = "/categories",
    tag = "catalog",
    security(("bearer" = [])),
    request_body = NewCategory,
    responses(
        (status = 201, description = "Created", body = CategoryRow),
        (status = 403, description = "`forbidden`: managers and admins only", body = ErrorBody),
        (status = 409, description = "`already_exists`: a category with this slug exists", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    idem: MaybeIdempotent<NewCategory>,
) -> ApiResult<Response> {
    let done = till_app::categories::create(
        &state,
        &meta.actor(&who),
        who.user_id,
        &idem.body.name,
        idem.key.as_ref(),
        |category| answer(StatusCode::CREATED, json!(category), Vec::new()),
    )
    .await?;
    Ok(respond(done))
}
