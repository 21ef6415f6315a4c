//! One module per API area, each with its router.

pub mod audit;
pub mod auth;
pub mod orders;
pub mod reports;
pub mod users;

use axum::Router;

use crate::state::AppState;

/// Everything under `/api/v1`.
pub fn api() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(orders::router())
        .merge(audit::router())
        .merge(reports::router())
}
