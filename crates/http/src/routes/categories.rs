//! Categories: public list (cached), manager+ create.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use till_db::categories::{self, CategoryRow};

use super::catalog_cache::{self, Cached};
use crate::error::ApiResult;
use crate::extract::{Authed, Json, ManagerPlus, RequestMeta};
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
    Json(body): Json<NewCategory>,
) -> ApiResult<Response> {
    let category = till_app::categories::create(&state, &meta.actor(&who), &body.name).await?;
    Ok((StatusCode::CREATED, Json(category)).into_response())
}
