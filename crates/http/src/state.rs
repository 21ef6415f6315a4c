//! The HTTP server's state: the application ([`till_app::App`]) plus what only the web server
//! needs. One `Arc`, fields documented.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use till_app::{App, Config};

use crate::auth::jwt::JwtKeys;
use crate::events::Hub;
use crate::extract::CursorKey;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    /// Config, pools, store, catalog cache and the use cases. `Inner` derefs to it, so
    /// `state.config` and `state.db` read through.
    pub app: App,
    /// Access-token signing keys.
    pub jwt: JwtKeys,
    /// Signs the pagination cursors this server issues, so a forged one is refused.
    pub cursors: CursorKey,
    /// Request counters and latency histogram for the health endpoints.
    pub metrics: Metrics,
    /// Live-event fan-out for this instance's WebSocket connections.
    pub hub: Arc<Hub>,
    /// Set on SIGTERM: readiness turns 503 so the load balancer drains this instance.
    pub draining: AtomicBool,
    /// False while embedded migrations are ahead of the database; the API answers 503 meanwhile.
    pub schema_ready: AtomicBool,
    pub started: Instant,
    /// Turns for `/api/v1` requests (`API_MAX_IN_FLIGHT`): beyond it, requests wait here in
    /// arrival order, not at the database pool, whose waits end in 503 after
    /// `DATABASE_ACQUIRE_TIMEOUT_MS` (see `layers::api_gate`).
    pub api_turns: tokio::sync::Semaphore,
    /// When (ms after `started`) an API request was last answered with anything but 503: while
    /// recent, the database is busy rather than gone, and a request waiting for a turn waits on.
    last_answered_ms: AtomicU64,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::ops::Deref for Inner {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

impl AppState {
    /// Builds the application and the server state from config. Nothing here needs the network.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        Self::from_app(App::new(config)?)
    }

    /// Wraps an application in the server state.
    pub fn from_app(app: App) -> anyhow::Result<Self> {
        let jwt = JwtKeys::new(app.config.jwt_secret_bytes(), app.config.auth.jwt_ttl)?;
        let cursors = CursorKey::derive(app.config.jwt_secret_bytes());
        let turns = match app.config.http.max_in_flight {
            0 => 4 * app.config.database.max_connections as usize,
            n => n,
        };
        Ok(AppState(Arc::new(Inner {
            app,
            jwt,
            cursors,
            metrics: Metrics::default(),
            hub: Arc::new(Hub::default()),
            draining: AtomicBool::new(false),
            schema_ready: AtomicBool::new(false),
            started: Instant::now(),
            api_turns: tokio::sync::Semaphore::new(turns),
            last_answered_ms: AtomicU64::new(0),
        })))
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Records that an API request was just answered with something other than 503.
    pub fn note_answered(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        // A plain store would do; skipping it when the value is current keeps the cache line
        // shared between cores under load.
        if self.last_answered_ms.load(Ordering::Relaxed) != now {
            self.last_answered_ms.store(now, Ordering::Relaxed);
        }
    }

    /// Whether an API request was answered with something other than 503 within `window`.
    pub fn answered_within(&self, window: std::time::Duration) -> bool {
        let now = self.started.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_answered_ms.load(Ordering::Relaxed))
            <= window.as_millis() as u64
    }

    pub fn is_schema_ready(&self) -> bool {
        self.schema_ready.load(Ordering::Relaxed)
    }

    /// Re-checks pending migrations and records the answer; returns it.
    pub async fn refresh_schema_ready(&self) -> bool {
        let ready = self.app.schema_is_current().await;
        self.schema_ready.store(ready, Ordering::Relaxed);
        ready
    }
}
