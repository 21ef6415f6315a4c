//! Categories: public list (cached), manager+ create.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use till_db::categories;

use super::catalog_cache::{self, Cached};
use crate::error::ApiResult;
use crate::extract::{Authed, Json, ManagerPlus, RequestMeta};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/categories", get(list).post(create))
}

async fn list(State(state): State<AppState>) -> ApiResult<Response> {
    catalog_cache::read(&state, "categories", || async {
        let items = categories::list(&state.db.write).await?;
        Cached::json(&json!({ "items": items }), None)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCategory {
    name: String,
}

async fn create(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    Json(body): Json<NewCategory>,
) -> ApiResult<Response> {
    let category = till_app::categories::create(&state, &meta.actor(&who), &body.name).await?;
    Ok((StatusCode::CREATED, Json(category)).into_response())
}
