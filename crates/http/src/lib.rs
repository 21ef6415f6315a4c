//! Till's HTTP layer: the axum application, its middleware and one router per area.
//! Handlers extract and authorise, call one `till-app` use case (or a `till-db` read), and map
//! the result (`error::from_app` maps every use-case error); SQL never appears here.

pub mod auth;
mod compress;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod layers;
pub mod metrics;
pub mod openapi;
pub mod request_id;
pub mod routes;
mod serve;
pub mod state;

use std::convert::Infallible;
use std::future::Future;

use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::services::ServeDir;

pub use error::{ApiError, ApiResult};
pub use state::AppState;
/// Settings moved to till-app; re-exported for callers that configure a server.
pub use till_app::{config, Config};

/// The whole application as served: the router behind the outer layers.
pub fn app(state: AppState) -> impl AppService {
    app_with_api_routes(state, Router::new())
}

/// What [`serve_app`] serves: one request in, one response out, never an error.
pub trait AppService:
    Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> AppService for S where
    S: Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// The application with `extra` routes merged under `/api/v1`, behind every layer the real
/// routes have (tests use it to exercise panics and timeouts).
pub fn app_with_api_routes(state: AppState, extra: Router<AppState>) -> impl AppService {
    let (api, _) = routes::api().split_for_parts();
    let (health, _) = health::router().split_for_parts();
    let mut api = api.merge(extra);
    if state.config.runtime.app_env == till_app::config::AppEnv::Development {
        // The simulated payment provider exists in development only (404 otherwise).
        api = api.merge(routes::payments::dev_router().split_for_parts().0);
    }
    let api = api
        .fallback(layers::not_found)
        .method_not_allowed_fallback(layers::method_not_allowed)
        .layer(from_fn_with_state(state.clone(), layers::api_gate));
    // The provider's callback: signed, not a user's request, so outside the user/IP rate
    // limiter (and it needs no credentials resolved); the schema guard still applies.
    let (provider, _) = utoipa_axum::router::OpenApiRouter::new()
        .nest("/api/v1", routes::payments::provider_router())
        .split_for_parts();
    let provider = provider.layer(from_fn_with_state(state.clone(), layers::schema_guard));
    let mut app = Router::new()
        .nest("/api/v1", api)
        .merge(provider.route_layer(layers::TagRouteLayer))
        .merge(health.route_layer(layers::TagRouteLayer))
        .merge(openapi::docs_router())
        .method_not_allowed_fallback(layers::method_not_allowed);
    app = match &state.config.http.static_dir {
        Some(dir) => {
            app.fallback_service(ServeDir::new(dir).append_index_html_on_directories(true))
        }
        None => app.fallback(layers::not_found),
    };
    // Product images, served from the shared MEDIA_DIR. Their names are content hashes, so a
    // name never changes meaning and browsers may keep them for good.
    let media = Router::new()
        .fallback_service(ServeDir::new(&state.config.media.media_dir))
        .layer(axum::middleware::map_response(layers::immutable_cache));
    app = app.nest("/media", media);
    let max_body = state.config.http.max_body_bytes;
    // Outermost first. The edge (request id, log, metrics, error envelope, security headers)
    // sees the compressed answer; errors it rewrites into the envelope are small and left
    // uncompressed.
    //
    // Around the finished router rather than with `Router::layer`: that wraps every route (and
    // the fallback) in each layer and boxes the result again, so each request paid a boxed
    // service clone, a boxed future and a move of the response per layer. Profiling the
    // liveness probe showed that plumbing costing more than the layers' own work. Every request
    // passes the same layers either way.
    ServiceBuilder::new()
        .layer(layers::EdgeLayer::new(state.clone()))
        .layer(compress::NegotiatedLayer)
        .layer(CatchPanicLayer::custom(layers::panic_response))
        .layer(layers::GuardLayer::new(state.clone()))
        .layer(DefaultBodyLimit::max(max_body))
        .service(app.with_state(state))
}

/// Serves until `shutdown` resolves; then readiness turns 503 for `SHUTDOWN_DRAIN_MS` while
/// requests are still answered (so the balancer stops sending new ones), then the listener
/// closes and in-flight requests finish.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_app(app(state.clone()), state, listener, shutdown).await
}

/// [`serve`] with a prebuilt application.
pub async fn serve_app(
    app: impl AppService,
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    metrics::prometheus();
    tokio::spawn(events::run_publisher(state.clone()));
    tokio::spawn(events::run_subscriber(state.clone()));
    tokio::spawn(till_app::catalog::run_stock_refresher(
        state.app.clone(),
        state.hub.shutdown_signal(),
    ));
    // Other instances' catalog writes reach this one's in-process cache through Redis pub/sub.
    state.catalog.spawn_listener();
    serve::run(app, state, listener, shutdown).await
}
