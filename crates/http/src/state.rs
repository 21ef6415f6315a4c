//! The application state shared by every handler: one `Arc`, fields documented.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use secrecy::ExposeSecret;
use till_cache::{Store, TieredCache, TieredOptions};
use till_db::Db;

use crate::auth::jwt::JwtKeys;
use crate::config::Config;
use crate::events::Hub;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    /// Settings read once at start-up.
    pub config: Config,
    /// PostgreSQL pools (primary, optional read replica).
    pub db: Db,
    /// Shared store: Redis, or in-process in single-instance mode.
    pub store: Store,
    /// Catalog reads (products, categories), cached in process and in Redis; every catalog or
    /// stock write calls `catalog.invalidate()` after commit. See `routes::catalog_cache`.
    pub catalog: TieredCache,
    /// Access-token signing keys.
    pub jwt: JwtKeys,
    /// Request counters and latency histogram for the health endpoints.
    pub metrics: Metrics,
    /// Live-event fan-out for this instance's WebSocket connections.
    pub hub: Arc<Hub>,
    /// Stock changed since the catalog cache was last invalidated (see `catalog_cache`).
    pub catalog_stale: AtomicBool,
    /// Set on SIGTERM: readiness turns 503 so the load balancer drains this instance.
    pub draining: AtomicBool,
    /// False while embedded migrations are ahead of the database; the API answers 503 meanwhile.
    pub schema_ready: AtomicBool,
    pub started: Instant,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state from config. Pools connect lazily; nothing here needs the network.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        let db = Db::connect_lazy(
            config.database_url.expose_secret(),
            config.database_read_url.as_ref().map(|s| s.expose_secret()),
            config.database_max_connections,
        )?;
        let store = match &config.redis_url {
            Some(url) => Store::redis(url.expose_secret(), &config.redis_namespace)?,
            None => Store::local(),
        };
        let jwt = JwtKeys::new(config.jwt_secret_bytes(), config.jwt_ttl);
        let catalog = TieredCache::new(store.clone(), "catalog", TieredOptions::default());
        Ok(AppState(Arc::new(Inner {
            config,
            db,
            store,
            catalog,
            jwt,
            metrics: Metrics::default(),
            hub: Arc::new(Hub::default()),
            draining: AtomicBool::new(false),
            catalog_stale: AtomicBool::new(false),
            schema_ready: AtomicBool::new(false),
            started: Instant::now(),
        })))
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_schema_ready(&self) -> bool {
        self.schema_ready.load(Ordering::Relaxed)
    }

    /// Re-checks pending migrations and records the answer; returns it.
    pub async fn refresh_schema_ready(&self) -> bool {
        let ready = matches!(self.db.pending_migrations().await, Ok(0));
        self.schema_ready.store(ready, Ordering::Relaxed);
        ready
    }
}
