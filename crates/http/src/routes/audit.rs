//! `GET /audit` (manager+): the log of staff writes, newest first.

use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use till_db::audit::{self, AuditFilter, AuditRow};
use till_db::cursor::Page;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Authed, Json, ManagerPlus, PageQuery, Query};
use crate::openapi::schemas::{ErrorBody, PageParams};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Params {
    /// Only this user's writes.
    #[param(value_type = Option<Uuid>)]
    actor_id: Option<String>,
    /// e.g. `product.update`; at most 100 characters.
    #[param(max_length = 100)]
    action: Option<String>,
}

/// Staff writes, newest first.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "reports",
    security(("bearer" = [])),
    params(Params, PageParams),
    responses(
        (status = 200, description = "A page of audit entries", body = Page<AuditRow>),
        (status = 403, description = "`forbidden`: managers and admins only", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    _: Authed<ManagerPlus>,
    Query(p): Query<Params>,
    page: PageQuery,
) -> ApiResult<impl IntoResponse> {
    let actor_id = match p.actor_id.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse::<Uuid>()
                .map_err(|_| ApiError::field("actor_id", "must be a UUID"))?,
        ),
    };
    let action = p.action.filter(|s| !s.is_empty());
    if action.as_ref().is_some_and(|a| a.len() > 100) {
        return Err(ApiError::field("action", "must be at most 100 characters"));
    }
    let after = page.decode(audit::decode_cursor)?;
    let filter = AuditFilter { actor_id, action };
    let rows = audit::list(&state.db.write, &filter, after, page.limit).await?;
    Ok(Json(state.cursors.sign_page(rows)))
}
