//! Categories: public list (cached), manager+ create.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use till_db::categories;

use super::catalog_cache::{self, Cached};
use crate::error::ApiResult;
use crate::extract::idempotency::{answer, respond};
use crate::extract::{Authed, ManagerPlus, MaybeIdempotent, RequestMeta};
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
