//! One module per API area, each with its router.

pub mod audit;
pub mod auth;
pub mod catalog_cache;
pub mod categories;
pub mod customers;
pub mod inventory;
pub mod jobs;
pub mod orders;
pub mod payments;
pub mod products;
pub mod reports;
pub mod users;

use axum::Router;

use crate::state::AppState;

/// Everything under `/api/v1`.
pub fn api() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(categories::router())
        .merge(products::router())
        .merge(inventory::router())
        .merge(customers::router())
        .merge(jobs::router())
        .route("/ws", axum::routing::get(crate::events::ws::handler))
        .merge(orders::router())
        .merge(payments::router())
        .merge(audit::router())
        .merge(reports::router())
}
