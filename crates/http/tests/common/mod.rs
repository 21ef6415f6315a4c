//! Test harness: a fresh PostgreSQL database per test (cloned from a migrated template), a Redis
//! namespace per test, and the real application served on 127.0.0.1:0 and driven over HTTP.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use till_http::{AppState, Config};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_EMAIL: &str = "admin@test.local";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

pub fn pg_url() -> String {
    std::env::var("TILL_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("TILL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn migrations_fingerprint() -> u64 {
    // FNV-1a over the migration checksums: a changed migration gets a new template.
    let mut h: u64 = 0xcbf29ce484222325;
    for m in till_db::MIGRATOR.iter() {
        for b in m.checksum.iter() {
            h ^= *b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

/// Creates a database with every migration applied and returns its URL.
pub async fn fresh_db() -> String {
    let base = pg_url();
    let fp = migrations_fingerprint();
    let template = format!("till_tpl_{fp:016x}");
    let mut admin = PgConnection::connect(&format!("{base}/postgres"))
        .await
        .expect("connect to test PostgreSQL");
    // One process builds the template; the others wait on the advisory lock.
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(fp as i64)
        .execute(&mut admin)
        .await
        .unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&template)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    if !exists {
        let building = format!("{template}_building");
        sqlx::query(&format!("DROP DATABASE IF EXISTS {building}"))
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {building}"))
            .execute(&mut admin)
            .await
            .unwrap();
        {
            let mut c = PgConnection::connect(&format!("{base}/{building}"))
                .await
                .unwrap();
            till_db::MIGRATOR
                .run(&mut c)
                .await
                .expect("migrations apply");
            c.close().await.unwrap();
        }
        sqlx::query(&format!("ALTER DATABASE {building} RENAME TO {template}"))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(fp as i64)
        .execute(&mut admin)
        .await
        .unwrap();
    // The creation time in the name lets scripts/test.sh drop only databases of finished runs.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let name = format!("till_t_{now}_{}", uuid::Uuid::new_v4().simple());
    // CREATE DATABASE … TEMPLATE copies files: milliseconds, versus re-running migrations.
    let mut tries = 0;
    loop {
        match sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .execute(&mut admin)
            .await
        {
            Ok(_) => break,
            // "source database is being accessed by other users": another process is cloning.
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50 + tries * 10)).await;
            }
            Err(e) => panic!("create test database: {e}"),
        }
    }
    admin.close().await.ok();
    format!("{base}/{name}")
}

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
            till_app::accounts::bootstrap_admin(&state)
                .await
                .expect("bootstrap admin");
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

    /// Triggers the SIGTERM path (drain, then close).
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{}", self.url, path))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut r = self.req(Method::GET, path);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        let mut r = self.req(Method::POST, path).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        let mut r = self.req(Method::PATCH, path).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> Login {
        let resp = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "login {email}");
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("till_session="))
            .and_then(|v| v.split(';').next())
            .unwrap()
            .to_owned();
        let body: Value = resp.json().await.unwrap();
        Login {
            token: body["access_token"].as_str().unwrap().to_owned(),
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
            cookie,
            user: body["user"].clone(),
        }
    }

    pub async fn admin(&self) -> Login {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates a user with `role` through the admin API and signs them in.
    pub async fn user(&self, role: &str) -> Login {
        let admin = self.admin().await;
        let email = format!("{role}-{}@test.local", uuid::Uuid::new_v4().simple());
        let resp = self
            .post(
                "/api/v1/users",
                Some(&admin.token),
                json!({"email": email, "password": "password-123", "name": format!("Test {role}"), "role": role}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "create {role}");
        self.login(&email, "password-123").await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

/// `POST /auth/logout` with a bearer token.
pub async fn logout(app: &TestApp, token: &str) -> Response {
    app.req(Method::POST, "/api/v1/auth/logout")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// What a successful login hands back.
#[derive(Clone, Debug)]
pub struct Login {
    pub token: String,
    pub csrf: String,
    pub cookie: String,
    pub user: Value,
}

impl Login {
    pub fn id(&self) -> &str {
        self.user["id"].as_str().unwrap()
    }
}

/// Reads a JSON body and the status together.
pub async fn body(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

/// Asserts an error envelope with `code`, and returns the body.
pub async fn expect_error(resp: Response, status: u16, code: &str) -> Value {
    let (s, v) = body(resp).await;
    assert_eq!(s.as_u16(), status, "body: {v}");
    assert_eq!(v["error"]["code"], code, "body: {v}");
    assert!(
        v["error"]["request_id"].is_string(),
        "request_id missing: {v}"
    );
    v
}

/// A private redis-server on a free port, for tests that stop Redis.
pub struct PrivateRedis {
    pub url: String,
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    pub fn start() -> PrivateRedis {
        let port = free_port();
        let mut pr = PrivateRedis {
            url: format!("redis://127.0.0.1:{port}"),
            port,
            child: None,
        };
        pr.restart();
        pr
    }

    pub fn restart(&mut self) {
        let bin =
            std::env::var("TILL_TEST_REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        let child = std::process::Command::new(bin)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start");
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---- Orders fixtures (products are inserted directly: the catalog API lives elsewhere) ----

/// Inserts an active, stock-tracked product and returns its id.
pub async fn insert_product(
    app: &TestApp,
    sku: &str,
    price_cents: i64,
    tax_rate_bp: i32,
    stock: i64,
) -> String {
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO products (id, sku, name, price_cents, tax_rate_bp, stock_on_hand)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(sku)
    .bind(format!("Product {sku}"))
    .bind(price_cents)
    .bind(tax_rate_bp)
    .bind(stock)
    .execute(&app.state.db.write)
    .await
    .expect("insert product");
    id.to_string()
}

/// Runs fixture SQL with one text parameter bound as `$1` (e.g. a product id).
pub async fn exec_sql(app: &TestApp, sql: &str, arg: &str) {
    sqlx::query(sql)
        .bind(arg)
        .execute(&app.state.db.write)
        .await
        .expect("fixture sql");
}

/// A product's stock on hand.
pub async fn stock_of(app: &TestApp, product_id: &str) -> i64 {
    sqlx::query_scalar("SELECT stock_on_hand FROM products WHERE id = $1::uuid")
        .bind(product_id)
        .fetch_one(&app.state.db.write)
        .await
        .expect("stock_of")
}

/// A fresh Idempotency-Key.
pub fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// POST with a bearer token and an Idempotency-Key.
pub async fn post_idem(app: &TestApp, path: &str, token: &str, key: &str, body: Value) -> Response {
    app.req(Method::POST, path)
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Creates an order (fresh key) and returns the 201 body; panics on anything else.
pub async fn create_order(app: &TestApp, token: &str, body: Value) -> Value {
    let (s, v) = self::body(post_idem(app, "/api/v1/orders", token, &new_key(), body).await).await;
    assert_eq!(s, StatusCode::CREATED, "create order: {v}");
    v
}
