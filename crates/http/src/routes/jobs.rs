//! `GET /api/v1/admin/jobs`: the background job queue, for admins.

use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use till_db::cursor::Page;
use till_db::jobs::JobRow;
use till_db::{cursor, jobs};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, Authed, Json, PageQuery, Query};
use crate::openapi::schemas::{ErrorBody, PageParams};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Filter {
    /// `queued`, `running`, `failed` or `done`.
    status: Option<String>,
}

/// Background jobs with their attempts and last error.
#[utoipa::path(
    get,
    path = "/admin/jobs",
    tag = "admin",
    security(("bearer" = [])),
    params(Filter, PageParams),
    responses(
        (status = 200, description = "A page of jobs", body = Page<JobRow>),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
    )
)]
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
