//! `GET /audit` (manager+): the log of staff writes, newest first.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use till_db::audit::{self, AuditFilter};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Authed, Json, ManagerPlus, PageQuery, Query};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

#[derive(Deserialize)]
struct Params {
    actor_id: Option<String>,
    action: Option<String>,
}

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
