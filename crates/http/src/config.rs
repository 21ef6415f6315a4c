//! Typed configuration, read once from the environment at start-up. Secrets are `SecretString`
//! so that `Debug` (and therefore logs) can never print them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};

/// The development default; production refuses to start with it.
pub const DEV_JWT_SECRET: &str = "till-development-secret-do-not-use-in-production";
/// HS256 keys shorter than this are brute-forceable; production refuses them.
pub const MIN_JWT_SECRET_LEN: usize = 32;

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

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    pub database_read_url: Option<SecretString>,
    pub database_max_connections: u32,
    /// Unset: single-instance mode (in-process sessions, limits, cache and events).
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key; lets several deployments (or tests) share one Redis.
    pub redis_namespace: String,
    pub bind_addr: SocketAddr,
    pub app_env: AppEnv,
    pub jwt_secret: SecretString,
    pub jwt_ttl: Duration,
    pub session_ttl: Duration,
    pub cookie_secure: bool,
    pub rate_limit_anon_per_min: u64,
    pub rate_limit_user_per_min: u64,
    pub rate_limit_login_per_min: u64,
    pub trusted_proxies: Vec<IpNet>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub ws_max_connections: usize,
    pub ws_max_per_user: usize,
    pub order_unpaid_ttl: Duration,
    pub currency: String,
    pub default_calling_code: String,
    pub store_timezone: chrono_tz::Tz,
    pub admin_email: Option<String>,
    pub admin_password: Option<SecretString>,
    pub health_token: Option<SecretString>,
    pub instance_id: String,
    pub log_format: LogFormat,
    pub static_dir: Option<PathBuf>,
    /// After SIGTERM, how long readiness reports 503 while requests are still served, so the
    /// load balancer stops routing here before the listener closes.
    pub shutdown_drain: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Reads every setting through `get`, so tests can configure an instance without touching
    /// the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let app_env = match get("APP_ENV").as_deref() {
            None | Some("development") => AppEnv::Development,
            Some("production") => AppEnv::Production,
            Some(other) => {
                return Err(ConfigError(format!(
                    "APP_ENV must be development or production, not {other:?}"
                )))
            }
        };
        let jwt_secret = match (get("JWT_SECRET"), app_env) {
            (Some(s), AppEnv::Production) if s == DEV_JWT_SECRET || s.len() < MIN_JWT_SECRET_LEN => {
                return Err(ConfigError(format!(
                    "JWT_SECRET is the default or shorter than {MIN_JWT_SECRET_LEN} characters; \
                     production needs a long random secret (e.g. `openssl rand -hex 32`)"
                )))
            }
            (None, AppEnv::Production) => {
                return Err(ConfigError(
                    "JWT_SECRET is not set; production needs a long random secret (e.g. `openssl rand -hex 32`)".into(),
                ))
            }
            (Some(s), _) => s,
            (None, AppEnv::Development) => DEV_JWT_SECRET.to_owned(),
        };
        let num = |key: &str, default: u64| -> Result<u64, ConfigError> {
            match get(key) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| {
                    ConfigError(format!("{key} must be a non-negative integer, got {v:?}"))
                }),
            }
        };
        let trusted_proxies = match get("TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(list) => list
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(parse_net)
                .collect::<Result<_, _>>()?,
        };
        let bind_addr = get("BIND_ADDR").unwrap_or_else(|| "0.0.0.0:8080".into());
        let bind_addr = SocketAddr::from_str(&bind_addr)
            .map_err(|_| ConfigError(format!("BIND_ADDR must be host:port, got {bind_addr:?}")))?;
        let store_timezone = get("STORE_TIMEZONE").unwrap_or_else(|| "UTC".into());
        let store_timezone = chrono_tz::Tz::from_str(&store_timezone).map_err(|_| {
            ConfigError(format!(
                "STORE_TIMEZONE must be an IANA zone name, got {store_timezone:?}"
            ))
        })?;
        let log_format = match get("LOG_FORMAT").as_deref() {
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            None if app_env == AppEnv::Production => LogFormat::Json,
            None => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError(format!(
                    "LOG_FORMAT must be json or pretty, not {other:?}"
                )))
            }
        };
        let currency = get("CURRENCY")
            .unwrap_or_else(|| "USD".into())
            .to_ascii_uppercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ConfigError(format!(
                "CURRENCY must be a 3-letter ISO 4217 code, got {currency:?}"
            )));
        }
        let default_calling_code = get("DEFAULT_CALLING_CODE").unwrap_or_else(|| "1".into());
        let default_calling_code = default_calling_code.trim_start_matches('+').to_owned();
        if default_calling_code.is_empty()
            || default_calling_code.len() > 3
            || !default_calling_code.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(ConfigError(
                "DEFAULT_CALLING_CODE must be 1 to 3 digits".into(),
            ));
        }
        let cfg = Config {
            database_url: SecretString::from(
                get("DATABASE_URL")
                    .ok_or_else(|| ConfigError("DATABASE_URL is required".into()))?,
            ),
            database_read_url: get("DATABASE_READ_URL").map(SecretString::from),
            database_max_connections: num("DATABASE_MAX_CONNECTIONS", 20)?.clamp(1, 1000) as u32,
            redis_url: get("REDIS_URL").map(SecretString::from),
            redis_namespace: get("REDIS_NAMESPACE").unwrap_or_else(|| "till".into()),
            bind_addr,
            app_env,
            jwt_secret: SecretString::from(jwt_secret),
            jwt_ttl: Duration::from_secs(num("JWT_TTL_SECONDS", 900)?.max(1)),
            session_ttl: Duration::from_secs(num("SESSION_TTL_SECONDS", 7200)?.max(1)),
            cookie_secure: matches!(get("COOKIE_SECURE").as_deref(), Some("true" | "1" | "yes")),
            rate_limit_anon_per_min: num("RATE_LIMIT_ANON_PER_MIN", 600)?,
            rate_limit_user_per_min: num("RATE_LIMIT_USER_PER_MIN", 1200)?,
            rate_limit_login_per_min: num("RATE_LIMIT_LOGIN_PER_MIN", 5)?,
            trusted_proxies,
            max_body_bytes: num("MAX_BODY_BYTES", 1_048_576)? as usize,
            request_timeout: Duration::from_secs(num("REQUEST_TIMEOUT_SECONDS", 30)?.max(1)),
            ws_max_connections: num("WS_MAX_CONNECTIONS", 10_000)? as usize,
            ws_max_per_user: num("WS_MAX_PER_USER", 5)? as usize,
            order_unpaid_ttl: Duration::from_secs(60 * num("ORDER_UNPAID_TTL_MINUTES", 30)?),
            currency,
            default_calling_code,
            store_timezone,
            admin_email: get("ADMIN_EMAIL"),
            admin_password: get("ADMIN_PASSWORD").map(SecretString::from),
            health_token: get("HEALTH_TOKEN").map(SecretString::from),
            instance_id: get("INSTANCE_ID").unwrap_or_else(default_instance_id),
            log_format,
            static_dir: get("STATIC_DIR").map(PathBuf::from),
            shutdown_drain: Duration::from_millis(num("SHUTDOWN_DRAIN_MS", 5000)?),
        };
        Ok(cfg)
    }

    pub fn jwt_secret_bytes(&self) -> &[u8] {
        self.jwt_secret.expose_secret().as_bytes()
    }
}

fn parse_net(s: &str) -> Result<IpNet, ConfigError> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| ConfigError(format!("TRUSTED_PROXIES entry {s:?} is not an IP or CIDR")))
}

fn default_instance_id() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .map(|h| format!("{h}-{}", std::process::id()))
        .unwrap_or_else(|| format!("till-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn production_refuses_default_or_short_secret() {
        let base = [("DATABASE_URL", "postgres://x"), ("APP_ENV", "production")];
        assert!(cfg(&base).unwrap_err().0.contains("JWT_SECRET is not set"));
        let mut short = base.to_vec();
        short.push(("JWT_SECRET", "short"));
        assert!(cfg(&short).unwrap_err().0.contains("shorter than"));
        let mut dflt = base.to_vec();
        dflt.push(("JWT_SECRET", DEV_JWT_SECRET));
        assert!(cfg(&dflt).is_err());
        let mut good = base.to_vec();
        good.push(("JWT_SECRET", "0123456789abcdef0123456789abcdef"));
        assert_eq!(cfg(&good).unwrap().app_env, AppEnv::Production);
    }

    #[test]
    fn defaults_and_debug_hides_secrets() {
        let c = cfg(&[
            ("DATABASE_URL", "postgres://user:hunter2@db/till"),
            ("JWT_SECRET", "s3cr3t-value"),
        ])
        .unwrap();
        assert_eq!(c.rate_limit_login_per_min, 5);
        assert_eq!(c.max_body_bytes, 1_048_576);
        assert_eq!(c.jwt_ttl, Duration::from_secs(900));
        assert_eq!(c.currency, "USD");
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("s3cr3t-value"),
            "{dbg}"
        );
    }

    #[test]
    fn trusted_proxies_parse() {
        let c = cfg(&[
            ("DATABASE_URL", "x"),
            ("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
        ])
        .unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        assert!(cfg(&[("DATABASE_URL", "x"), ("TRUSTED_PROXIES", "nope")]).is_err());
    }
}
