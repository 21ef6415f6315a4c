//! Running instances: how a test instance is configured and started. This module is the only
//! place in the test support that names `Config`, `AppState` or the admin bootstrap, so a move
//! of those types touches these few lines only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use till_http::config::DEV_JWT_SECRET;
pub use till_http::AppState;
use till_http::Config;

use crate::db::{fresh_db, redis_url};

pub const ADMIN_EMAIL: &str = "admin@test.local";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// How to build one instance.
#[derive(Clone)]
pub struct Opts {
    pub db_url: String,
    /// `None`: single-instance mode (no Redis).
    pub redis_url: Option<String>,
    pub namespace: String,
    pub env: HashMap<String, String>,
}

impl Opts {
    pub async fn new() -> Self {
        Opts {
            db_url: fresh_db().await,
            redis_url: Some(redis_url()),
            namespace: format!("t{}", uuid::Uuid::new_v4().simple()),
            env: HashMap::new(),
        }
    }

    pub fn set(mut self, k: &str, v: &str) -> Self {
        self.env.insert(k.into(), v.into());
        self
    }

    pub fn without_redis(mut self) -> Self {
        self.redis_url = None;
        self
    }

    pub fn config(&self) -> Config {
        let mut map: HashMap<String, String> = [
            ("DATABASE_URL", self.db_url.as_str()),
            ("REDIS_NAMESPACE", self.namespace.as_str()),
            ("DATABASE_MAX_CONNECTIONS", "10"),
            ("RATE_LIMIT_ANON_PER_MIN", "100000"),
            ("RATE_LIMIT_USER_PER_MIN", "100000"),
            ("RATE_LIMIT_LOGIN_PER_MIN", "100000"),
            ("RATE_LIMIT_LOGIN_IP_PER_MIN", "100000"),
            ("RATE_LIMIT_REGISTER_PER_MIN", "100000"),
            ("SHUTDOWN_DRAIN_MS", "300"),
            ("ADMIN_EMAIL", ADMIN_EMAIL),
            ("ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("LOG_FORMAT", "pretty"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(r) = &self.redis_url {
            map.insert("REDIS_URL".into(), r.clone());
        }
        map.extend(self.env.clone());
        Config::from_lookup(|k| map.get(k).cloned()).expect("test config")
    }
}

/// One running instance of the application.
pub struct TestApp {
    pub url: String,
    pub addr: SocketAddr,
    pub state: AppState,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    pub handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// A fresh database, a fresh Redis namespace, one instance, first admin created.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&Opts::new().await).await
    }

    pub async fn spawn_with(opts: &Opts) -> TestApp {
        Self::spawn_with_routes(opts, axum::Router::new()).await
    }

    /// An instance with extra routes under `/api/v1` (behind all the real layers).
    pub async fn spawn_with_routes(opts: &Opts, extra: axum::Router<AppState>) -> TestApp {
        let state = AppState::new(opts.config()).expect("state");
        if state.refresh_schema_ready().await {
            bootstrap_admin(&state).await.expect("bootstrap admin");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let st = state.clone();
        let app = till_http::app_with_api_routes(state.clone(), extra);
        let handle = tokio::spawn(till_http::serve_app(app, st, listener, async move {
            let _ = rx.await;
        }));
        TestApp {
            url: format!("http://{addr}"),
            addr,
            state,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// Two instances sharing one database and one Redis namespace.
    pub async fn spawn_pair() -> (TestApp, TestApp) {
        let opts = Opts::new().await;
        let a = Self::spawn_with(&opts).await;
        let b = Self::spawn_with(&opts).await;
        (a, b)
    }

    /// Runs the start-up admin bootstrap again; `Ok(true)` when it created an admin.
    pub async fn bootstrap_admin(&self) -> anyhow::Result<bool> {
        bootstrap_admin(&self.state).await
    }

    /// Triggers the SIGTERM path (drain, then close).
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{}", self.url, path))
    }
}

async fn bootstrap_admin(state: &AppState) -> anyhow::Result<bool> {
    Ok(till_app::accounts::bootstrap_admin(state).await?)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}
