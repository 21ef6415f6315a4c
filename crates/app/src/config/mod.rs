//! Typed configuration, read once from the environment at start-up and grouped by concern.
//!
//! Every setting is declared once, with its environment variable, default and meaning, in a
//! [`section!`] below; that declaration is both the field's documentation and an entry of
//! [`Config::settings`], the list README.md, `.env.example` and `docs/configuration.md` are
//! checked against (`tests/config_docs.rs`). Secrets are `SecretString`, so `Debug` (and
//! therefore logs) can never print them.

mod parse;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};

pub use parse::ConfigError;

/// The development default; production refuses to start with it.
pub const DEV_JWT_SECRET: &str = "till-development-secret-do-not-use-in-production";
/// HS256 keys shorter than this are brute-forceable; production refuses them.
pub const MIN_JWT_SECRET_LEN: usize = 32;
/// The development payment webhook secret; production refuses it.
pub const DEV_PAYMENT_WEBHOOK_SECRET: &str = "till-development-payment-webhook-secret";
/// Production refuses a shorter `PAYMENT_WEBHOOK_SECRET`.
pub const MIN_PAYMENT_WEBHOOK_SECRET_LEN: usize = 32;

/// One environment variable Till reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    /// As shown to operators; `-` when unset by default.
    pub default: &'static str,
    pub doc: &'static str,
}

/// Declares a config section: the struct, each field documented from its setting, and the
/// section's [`Setting`] list (in field order).
macro_rules! section {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $field:ident : $ty:ty = ($env:literal, $default:literal, $doc:literal) ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name {
            $(
                #[doc = concat!("`", $env, "` (default `", $default, "`): ", $doc)]
                pub $field: $ty,
            )*
        }

        impl $name {
            /// The environment variables of this section.
            pub const SETTINGS: &'static [Setting] = &[
                $( Setting { name: $env, default: $default, doc: $doc } ),*
            ];
        }
    };
}

section! {
    /// PostgreSQL.
    pub struct DatabaseConfig {
        url: SecretString = ("DATABASE_URL", "-", "PostgreSQL URL of the primary (all writes); required."),
        read_url: Option<SecretString> = ("DATABASE_READ_URL", "-", "Optional read replica for reports; unset reads from the primary."),
        max_connections: u32 = ("DATABASE_MAX_CONNECTIONS", "20", "Pool size per process (1 to 1000); keep the sum over all processes under PostgreSQL's max_connections."),
        acquire_timeout: Duration = ("DATABASE_ACQUIRE_TIMEOUT_MS", "2000", "How long (ms) a request waits for a database connection before answering 503 with Retry-After (PostgreSQL down or the pool exhausted)."),
        statement_timeout: Duration = ("DATABASE_STATEMENT_TIMEOUT_MS", "10000", "PostgreSQL `statement_timeout` (ms) on every pooled connection, reports included; a statement cancelled by it answers 503."),
        idle_timeout: Duration = ("DATABASE_IDLE_TIMEOUT_SECONDS", "300", "A pooled connection idle this long is closed."),
        max_lifetime: Duration = ("DATABASE_MAX_LIFETIME_SECONDS", "1800", "A pooled connection is replaced after this long (recycling, e.g. behind a pooler or failover)."),
    }
}

section! {
    /// Redis: shared sessions, rate limits, catalog cache and events.
    pub struct RedisConfig {
        url: Option<SecretString> = ("REDIS_URL", "-", "Redis URL. Unset: single-instance mode (in-process sessions, limits, cache and events); never with more than one instance."),
        namespace: String = ("REDIS_NAMESPACE", "till", "Prefix of every Redis key, so several deployments (or tests) can share one Redis."),
        cache_url: Option<SecretString> = ("REDIS_CACHE_URL", "-", "Optional separate Redis for the catalog cache only (may evict under a memory cap: `maxmemory-policy volatile-lru`); unset uses REDIS_URL."),
    }
}

section! {
    /// The HTTP server.
    pub struct HttpConfig {
        bind_addr: SocketAddr = ("BIND_ADDR", "0.0.0.0:8080", "Address `till serve` listens on (host:port)."),
        static_dir: Option<PathBuf> = ("STATIC_DIR", "-", "Directory of the static web UI served at `/`; unset serves no UI."),
        max_body_bytes: usize = ("MAX_BODY_BYTES", "1048576", "Largest request body in bytes."),
        request_timeout: Duration = ("REQUEST_TIMEOUT_SECONDS", "30", "A request still running after this many seconds is answered 503."),
        trusted_proxies: Vec<IpNet> = ("TRUSTED_PROXIES", "-", "Peers whose X-Forwarded-For is believed: IPs or CIDRs, comma or space separated."),
        shutdown_drain: Duration = ("SHUTDOWN_DRAIN_MS", "5000", "After SIGTERM, how long (ms) readiness answers 503 while requests are still served, so the load balancer stops routing here before the listener closes."),
        header_read_timeout: Duration = ("HTTP_HEADER_READ_TIMEOUT_MS", "75000", "A connection that takes longer than this (ms) to send a request's headers (or, idle, the next request's) is closed. Keep it above the load balancer's upstream keep-alive timeout (nginx: 60 s), so the balancer, not Till, closes idle connections."),
        max_in_flight: usize = ("API_MAX_IN_FLIGHT", "0", "API requests one instance works on at once; later ones wait their turn in arrival order (within REQUEST_TIMEOUT_SECONDS) rather than all queueing for a database connection, so a burst is served late instead of answered 503. 0: four times DATABASE_MAX_CONNECTIONS."),
        max_connections: usize = ("MAX_CONNECTIONS", "20000", "Connections (WebSockets included) one instance holds at once; further ones wait in the listen backlog until one closes. Keep it above WS_MAX_CONNECTIONS and below the process's file descriptor limit."),
        allowed_origins: Vec<String> = ("ALLOWED_ORIGINS", "-", "Origins (`https://shop.example.com`, comma separated) whose pages may open the live-updates WebSocket. Unset: only the request's own host (Origin's host[:port] equal to Host)."),
    }
}

section! {
    /// Sign-in: tokens, sessions, the first admin and the monitoring token.
    pub struct AuthConfig {
        jwt_secret: SecretString = ("JWT_SECRET", "-", "HS256 signing key. Development falls back to a fixed key; production requires at least 32 characters (e.g. `openssl rand -hex 32`)."),
        jwt_ttl: Duration = ("JWT_TTL_SECONDS", "900", "Access token lifetime in seconds."),
        session_ttl: Duration = ("SESSION_TTL_SECONDS", "7200", "Web session (till_session cookie) lifetime in seconds."),
        cookie_secure: bool = ("COOKIE_SECURE", "false", "`true` (`1`, `yes`) once clients arrive over HTTPS: the session cookie gets Secure and HSTS is sent. Unset in production means `true`; production refuses `false`."),
        admin_email: Option<String> = ("ADMIN_EMAIL", "-", "With ADMIN_PASSWORD: the first admin, created once when no admin exists yet."),
        admin_password: Option<SecretString> = ("ADMIN_PASSWORD", "-", "Password of the first admin (see ADMIN_EMAIL)."),
        health_token: Option<SecretString> = ("HEALTH_TOKEN", "-", "`Authorization: Bearer <token>` with this value may read /health/detailed (monitoring)."),
    }
}

section! {
    /// Request rate limits, shared by all instances.
    pub struct LimitsConfig {
        anon_per_min: u64 = ("RATE_LIMIT_ANON_PER_MIN", "600", "Requests per minute per client IP, signed out."),
        user_per_min: u64 = ("RATE_LIMIT_USER_PER_MIN", "1200", "Requests per minute per signed-in user."),
        login_per_min: u64 = ("RATE_LIMIT_LOGIN_PER_MIN", "5", "Failed login attempts per minute per email (successful logins do not count)."),
        login_ip_per_min: u64 = ("RATE_LIMIT_LOGIN_IP_PER_MIN", "60", "Failed login attempts per minute per client IP (IPv6: per /64)."),
        register_per_min: u64 = ("RATE_LIMIT_REGISTER_PER_MIN", "10", "Registrations (`POST /auth/register`) per minute per client IP (IPv6: per /64)."),
    }
}

section! {
    /// Live updates over WebSocket.
    pub struct EventsConfig {
        ws_max_connections: usize = ("WS_MAX_CONNECTIONS", "10000", "WebSocket connections per instance."),
        ws_max_per_user: usize = ("WS_MAX_PER_USER", "5", "WebSocket connections per user on one instance."),
    }
}

section! {
    /// The shop: currency, locale and order rules.
    pub struct ShopConfig {
        currency: String = ("CURRENCY", "USD", "ISO 4217 code of the deployment's one currency."),
        default_calling_code: String = ("DEFAULT_CALLING_CODE", "1", "Calling code (1 to 3 digits, `+` optional) for phone numbers entered without `+`."),
        store_timezone: chrono_tz::Tz = ("STORE_TIMEZONE", "UTC", "IANA time zone report days are counted in."),
        store_name: String = ("STORE_NAME", "Till", "The shop's name, printed at the top of every receipt."),
        store_address: String = ("STORE_ADDRESS", "-", "The shop's address on receipts; `|` starts a new line."),
        store_tax_id: Option<String> = ("STORE_TAX_ID", "-", "The shop's tax registration number, printed on receipts when set."),
        order_unpaid_ttl: Duration = ("ORDER_UNPAID_TTL_MINUTES", "30", "An online order not fully paid and still pending after this many minutes is cancelled by the worker (its stock returned); one with money on it is only reported, for a manager to refund."),
        online_open_orders_per_customer: u32 = ("ONLINE_OPEN_ORDERS_PER_CUSTOMER", "3", "Pending, not fully paid online orders one customer may hold at once; one more is refused (409)."),
        shifts_required: bool = ("SHIFTS_REQUIRED", "false", "`true` (`1`, `yes`): a cash payment or cash refund needs an open register shift (else 409 `no_open_shift`), and the till asks to open one before selling."),
        shift_max_difference_cents: i64 = ("SHIFT_MAX_DIFFERENCE_CENTS", "500", "Largest cash difference (counted − expected, either way, in cents) a cashier may close a shift with; beyond it a manager must close (403 for a cashier)."),
    }
}

section! {
    /// Product images and bulk catalog import.
    pub struct MediaConfig {
        media_dir: PathBuf = ("MEDIA_DIR", "media", "Directory holding product images (served at `/media/`); every instance must see the same one (a shared volume)."),
        max_image_bytes: usize = ("MAX_IMAGE_BYTES", "10485760", "Largest image upload in bytes (`POST /products/{id}/images`, instead of MAX_BODY_BYTES)."),
        max_import_bytes: usize = ("MAX_IMPORT_BYTES", "67108864", "Largest CSV import in bytes (`POST /products/import`, instead of MAX_BODY_BYTES)."),
        image_workers: usize = ("IMAGE_WORKERS", "2", "Images one instance decodes and resizes at once (each on a blocking thread); further uploads wait their turn."),
    }
}

section! {
    /// Online payments confirmed by the payment provider.
    pub struct PaymentsConfig {
        webhook_secret: SecretString = ("PAYMENT_WEBHOOK_SECRET", "-", "Key the provider signs its callbacks with (`Till-Signature`, HMAC-SHA256). Development falls back to a fixed key; production requires at least 32 characters."),
    }
}

section! {
    /// `till worker`: the job queue's loops, leases and retries.
    pub struct WorkerConfig {
        concurrency: usize = ("WORKER_CONCURRENCY", "4", "Jobs one worker process runs at once."),
        lease: Duration = ("WORKER_LEASE_SECONDS", "60", "A claimed job's lease in seconds, renewed while it runs; a worker that dies loses the job to another after this."),
        poll: Duration = ("WORKER_POLL_MS", "500", "How often (ms) an idle loop looks for due jobs."),
        backoff_base: Duration = ("WORKER_BACKOFF_BASE_MS", "1000", "Retry delay (ms) after a job's first failure; doubles with each further attempt."),
        backoff_cap: Duration = ("WORKER_BACKOFF_CAP_MS", "600000", "Longest retry delay (ms)."),
        shutdown_grace: Duration = ("WORKER_SHUTDOWN_GRACE_SECONDS", "25", "After SIGTERM, how long running jobs may take before they are released unfinished."),
        health_addr: SocketAddr = ("WORKER_HEALTH_ADDR", "0.0.0.0:9091", "Address (host:port) where `till worker` answers `GET /health` (its container health check) and `GET /metrics` (Prometheus)."),
    }
}

section! {
    /// Webhooks, delivered by `till worker`.
    pub struct WebhookConfig {
        timeout: Duration = ("WEBHOOK_TIMEOUT_SECONDS", "10", "How long one delivery attempt may take (connect, send, answer) before it counts as failed and is retried."),
        max_attempts: i32 = ("WEBHOOK_MAX_ATTEMPTS", "12", "Attempts per event and endpoint before the delivery is marked failed (with the default backoff, about a day)."),
        disable_after: i32 = ("WEBHOOK_DISABLE_AFTER", "50", "Consecutive failed attempts after which an endpoint is disabled (with a `disabled_reason`)."),
        allow_private: bool = ("WEBHOOK_ALLOW_PRIVATE", "false", "Allow `http` URLs and loopback, private, link-local and metadata targets in production (development always allows them)."),
        retry_base: Duration = ("WEBHOOK_RETRY_BASE_MS", "30000", "Delay (ms) before the first retry; doubles with each further attempt (capped at 6 h), with ±20 % jitter."),
        concurrency: usize = ("WEBHOOK_CONCURRENCY", "8", "Delivery loops per worker process; each sends one endpoint's batch at a time, so a slow endpoint holds one loop."),
        event_retention: Duration = ("EVENT_RETENTION_DAYS", "30", "Days published events are kept for `GET /api/v1/events` (and live replay)."),
    }
}

section! {
    /// The process: environment, logs and name.
    pub struct RuntimeConfig {
        app_env: AppEnv = ("APP_ENV", "development", "`development` or `production`; production refuses a default or short JWT_SECRET and COOKIE_SECURE=false, and logs JSON by default."),
        log_format: LogFormat = ("LOG_FORMAT", "pretty", "`json` or `pretty`; production defaults to `json`."),
        instance_id: String = ("INSTANCE_ID", "-", "Name of this instance in /health and logs; unset uses the hostname and process id."),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

impl AppEnv {
    pub fn as_str(self) -> &'static str {
        match self {
            AppEnv::Development => "development",
            AppEnv::Production => "production",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Every setting, by concern.
#[derive(Debug, Clone)]
pub struct Config {
    pub runtime: RuntimeConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub events: EventsConfig,
    pub shop: ShopConfig,
    pub worker: WorkerConfig,
    pub payments: PaymentsConfig,
    pub media: MediaConfig,
    pub webhooks: WebhookConfig,
}

impl Config {
    /// Every environment variable [`Config::from_lookup`] reads, by section.
    pub fn settings() -> impl Iterator<Item = &'static Setting> {
        [
            RuntimeConfig::SETTINGS,
            DatabaseConfig::SETTINGS,
            RedisConfig::SETTINGS,
            HttpConfig::SETTINGS,
            AuthConfig::SETTINGS,
            LimitsConfig::SETTINGS,
            EventsConfig::SETTINGS,
            ShopConfig::SETTINGS,
            WorkerConfig::SETTINGS,
            PaymentsConfig::SETTINGS,
            MediaConfig::SETTINGS,
            WebhookConfig::SETTINGS,
        ]
        .into_iter()
        .flatten()
    }

    /// Reads the process environment (empty values count as unset).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Reads every setting through `get`, so tests can configure an instance without touching
    /// the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        parse::read(&get)
    }

    pub fn jwt_secret_bytes(&self) -> &[u8] {
        self.auth.jwt_secret.expose_secret().as_bytes()
    }
}

impl WorkerConfig {
    /// Delay before attempt `attempts + 1`: base × 2^(attempts − 1), capped.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let exp = (attempts.max(1) - 1).min(30) as u32;
        self.backoff_base
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.backoff_cap)
    }
}
