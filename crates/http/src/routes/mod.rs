//! One module per API area, each with its router.

pub mod audit;
pub mod auth;
pub mod catalog_cache;
pub mod categories;
pub mod counts;
pub mod customers;
pub mod inventory;
pub mod jobs;
pub mod locations;
pub mod orders;
pub mod payments;
pub mod product_csv;
pub mod product_media;
pub mod products;
pub mod registers;
pub mod reports;
pub mod shifts;
pub mod transfers;
pub mod users;
pub mod webhooks;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// Everything under `/api/v1`, each route registered with its OpenAPI description
/// (`routes!(handler)` needs the handler's `#[utoipa::path]`; never add a plain `.route()`:
/// the `openapi` test fails on a route the document does not describe).
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(categories::router())
        .merge(products::router())
        .merge(product_media::router())
        .merge(product_csv::router())
        .merge(inventory::router())
        .merge(locations::router())
        .merge(transfers::router())
        .merge(counts::router())
        .merge(customers::router())
        .merge(jobs::router())
        .routes(routes!(crate::events::ws::handler))
        .merge(orders::router())
        .merge(payments::router())
        .merge(audit::router())
        .merge(reports::router())
        .merge(registers::router())
        .merge(shifts::router())
        .merge(webhooks::router())
        .routes(routes!(crate::openapi::serve_document))
}
