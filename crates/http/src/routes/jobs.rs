//! `GET /api/v1/admin/jobs`: the background job queue, for admins.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use till_db::{cursor, jobs};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, Authed, Json, PageQuery, Query};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/jobs", get(list))
}

#[derive(Deserialize)]
struct Filter {
    status: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    _: Authed<Admin>,
    Query(f): Query<Filter>,
    page: PageQuery,
) -> ApiResult<impl IntoResponse> {
    let status = f.status.as_deref();
    if status.is_some_and(|s| !["queued", "running", "failed", "done"].contains(&s)) {
        return Err(ApiError::field(
            "status",
            "must be one of: queued, running, failed, done",
        ));
    }
    let after = page.decode(cursor::decode)?;
    let rows = jobs::list(&state.db.write, status, after, page.limit).await?;
    Ok(Json(state.cursors.sign_page(rows)))
}
