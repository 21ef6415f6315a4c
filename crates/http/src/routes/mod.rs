//! One module per API area, each with its router.

pub mod auth;
pub mod jobs;
pub mod users;

use axum::Router;

use crate::state::AppState;

/// Everything under `/api/v1`.
pub fn api() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(jobs::router())
        .route("/ws", axum::routing::get(crate::events::ws::handler))
}
