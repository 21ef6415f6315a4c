//! Reading and validating the settings declared in `config/mod.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::SecretString;

use super::*;

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

pub(super) fn read(get: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let num = |key: &str, default: u64| -> Result<u64, ConfigError> {
        match get(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                ConfigError(format!("{key} must be a non-negative integer, got {v:?}"))
            }),
        }
    };
    let runtime = runtime(get)?;
    let app_env = runtime.app_env;
    Ok(Config {
        database: DatabaseConfig {
            url: SecretString::from(
                get("DATABASE_URL")
                    .ok_or_else(|| ConfigError("DATABASE_URL is required".into()))?,
            ),
            read_url: get("DATABASE_READ_URL").map(SecretString::from),
            max_connections: num("DATABASE_MAX_CONNECTIONS", 20)?.clamp(1, 1000) as u32,
            acquire_timeout: Duration::from_millis(
                num("DATABASE_ACQUIRE_TIMEOUT_MS", 2000)?.max(50),
            ),
            statement_timeout: Duration::from_millis(
                num("DATABASE_STATEMENT_TIMEOUT_MS", 10_000)?.max(100),
            ),
            idle_timeout: Duration::from_secs(num("DATABASE_IDLE_TIMEOUT_SECONDS", 300)?.max(1)),
            max_lifetime: Duration::from_secs(num("DATABASE_MAX_LIFETIME_SECONDS", 1800)?.max(1)),
        },
        redis: RedisConfig {
            url: get("REDIS_URL").map(SecretString::from),
            namespace: get("REDIS_NAMESPACE").unwrap_or_else(|| "till".into()),
            cache_url: get("REDIS_CACHE_URL").map(SecretString::from),
        },
        http: HttpConfig {
            bind_addr: socket_addr(get, "BIND_ADDR", "0.0.0.0:8080")?,
            static_dir: get("STATIC_DIR").map(PathBuf::from),
            max_body_bytes: num("MAX_BODY_BYTES", 1_048_576)? as usize,
            request_timeout: Duration::from_secs(num("REQUEST_TIMEOUT_SECONDS", 30)?.max(1)),
            trusted_proxies: trusted_proxies(get)?,
            shutdown_drain: Duration::from_millis(num("SHUTDOWN_DRAIN_MS", 5000)?),
            header_read_timeout: Duration::from_millis(
                num("HTTP_HEADER_READ_TIMEOUT_MS", 75_000)?.max(1),
            ),
            max_in_flight: num("API_MAX_IN_FLIGHT", 0)?.min(100_000) as usize,
            max_connections: num("MAX_CONNECTIONS", 20_000)?.max(1) as usize,
            allowed_origins: allowed_origins(get),
        },
        auth: AuthConfig {
            jwt_secret: jwt_secret(get, app_env)?,
            jwt_ttl: Duration::from_secs(num("JWT_TTL_SECONDS", 900)?.max(1)),
            session_ttl: Duration::from_secs(num("SESSION_TTL_SECONDS", 7200)?.max(1)),
            cookie_secure: cookie_secure(get, app_env)?,
            admin_email: get("ADMIN_EMAIL"),
            admin_password: get("ADMIN_PASSWORD").map(SecretString::from),
            health_token: get("HEALTH_TOKEN").map(SecretString::from),
        },
        limits: LimitsConfig {
            anon_per_min: num("RATE_LIMIT_ANON_PER_MIN", 600)?,
            user_per_min: num("RATE_LIMIT_USER_PER_MIN", 1200)?,
            login_per_min: num("RATE_LIMIT_LOGIN_PER_MIN", 5)?,
            login_ip_per_min: num("RATE_LIMIT_LOGIN_IP_PER_MIN", 60)?,
            register_per_min: num("RATE_LIMIT_REGISTER_PER_MIN", 10)?,
        },
        events: EventsConfig {
            ws_max_connections: num("WS_MAX_CONNECTIONS", 10_000)? as usize,
            ws_max_per_user: num("WS_MAX_PER_USER", 5)? as usize,
        },
        shop: shop(get, &num)?,
        worker: WorkerConfig {
            concurrency: num("WORKER_CONCURRENCY", 4)?.max(1) as usize,
            lease: Duration::from_secs(num("WORKER_LEASE_SECONDS", 60)?.max(1)),
            poll: Duration::from_millis(num("WORKER_POLL_MS", 500)?.max(10)),
            backoff_base: Duration::from_millis(num("WORKER_BACKOFF_BASE_MS", 1000)?),
            backoff_cap: Duration::from_millis(num("WORKER_BACKOFF_CAP_MS", 600_000)?),
            shutdown_grace: Duration::from_secs(num("WORKER_SHUTDOWN_GRACE_SECONDS", 25)?),
            health_addr: socket_addr(get, "WORKER_HEALTH_ADDR", "0.0.0.0:9091")?,
        },
        payments: PaymentsConfig {
            webhook_secret: webhook_secret(get, app_env)?,
        },
        media: MediaConfig {
            media_dir: PathBuf::from(get("MEDIA_DIR").unwrap_or_else(|| "media".into())),
            max_image_bytes: num("MAX_IMAGE_BYTES", 10 * 1024 * 1024)?.max(1024) as usize,
            max_import_bytes: num("MAX_IMPORT_BYTES", 64 * 1024 * 1024)?.max(1024) as usize,
            image_workers: num("IMAGE_WORKERS", 2)?.clamp(1, 64) as usize,
        },
        webhooks: WebhookConfig {
            timeout: Duration::from_secs(num("WEBHOOK_TIMEOUT_SECONDS", 10)?.clamp(1, 300)),
            max_attempts: num("WEBHOOK_MAX_ATTEMPTS", 12)?.clamp(1, 100) as i32,
            disable_after: num("WEBHOOK_DISABLE_AFTER", 50)?.clamp(1, 100_000) as i32,
            allow_private: flag(get, "WEBHOOK_ALLOW_PRIVATE", false)?,
            retry_base: Duration::from_millis(num("WEBHOOK_RETRY_BASE_MS", 30_000)?.max(1)),
            concurrency: num("WEBHOOK_CONCURRENCY", 8)?.clamp(1, 256) as usize,
            event_retention: Duration::from_secs(
                86_400 * num("EVENT_RETENTION_DAYS", 30)?.clamp(1, 3650),
            ),
        },
        runtime,
    })
}

fn flag(
    get: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(name).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(ConfigError(format!(
            "{name} must be true or false, not {other:?}"
        ))),
    }
}

fn runtime(get: &dyn Fn(&str) -> Option<String>) -> Result<RuntimeConfig, ConfigError> {
    let app_env = match get("APP_ENV").as_deref() {
        None | Some("development") => AppEnv::Development,
        Some("production") => AppEnv::Production,
        Some(other) => {
            return Err(ConfigError(format!(
                "APP_ENV must be development or production, not {other:?}"
            )))
        }
    };
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
    Ok(RuntimeConfig {
        app_env,
        log_format,
        instance_id: get("INSTANCE_ID").unwrap_or_else(default_instance_id),
    })
}

fn jwt_secret(
    get: &dyn Fn(&str) -> Option<String>,
    app_env: AppEnv,
) -> Result<SecretString, ConfigError> {
    let secret = match (get("JWT_SECRET"), app_env) {
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
    Ok(SecretString::from(secret))
}

/// Like `JWT_SECRET`: a fixed key in development, a long one of the operator's in production.
fn webhook_secret(
    get: &dyn Fn(&str) -> Option<String>,
    app_env: AppEnv,
) -> Result<SecretString, ConfigError> {
    let secret = match (get("PAYMENT_WEBHOOK_SECRET"), app_env) {
        (Some(s), AppEnv::Production)
            if s == DEV_PAYMENT_WEBHOOK_SECRET || s.len() < MIN_PAYMENT_WEBHOOK_SECRET_LEN =>
        {
            return Err(ConfigError(format!(
                "PAYMENT_WEBHOOK_SECRET is the default or shorter than \
                 {MIN_PAYMENT_WEBHOOK_SECRET_LEN} characters; production needs the provider's \
                 signing secret"
            )))
        }
        (None, AppEnv::Production) => {
            return Err(ConfigError(
                "PAYMENT_WEBHOOK_SECRET is not set; production needs the payment provider's signing secret".into(),
            ))
        }
        (Some(s), _) => s,
        (None, AppEnv::Development) => DEV_PAYMENT_WEBHOOK_SECRET.to_owned(),
    };
    Ok(SecretString::from(secret))
}

fn socket_addr(
    get: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: &str,
) -> Result<SocketAddr, ConfigError> {
    let addr = get(name).unwrap_or_else(|| default.into());
    SocketAddr::from_str(&addr)
        .map_err(|_| ConfigError(format!("{name} must be host:port, got {addr:?}")))
}

/// Production serves sign-ins over HTTPS only (nginx terminates TLS), so a session cookie
/// without `Secure`, or no HSTS, is a misconfiguration there: refused rather than run.
fn cookie_secure(
    get: &dyn Fn(&str) -> Option<String>,
    app_env: AppEnv,
) -> Result<bool, ConfigError> {
    let secure = match get("COOKIE_SECURE")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None => app_env == AppEnv::Production,
        Some("true" | "1" | "yes") => true,
        Some("false" | "0" | "no") => false,
        Some(other) => {
            return Err(ConfigError(format!(
                "COOKIE_SECURE must be true or false, not {other:?}"
            )))
        }
    };
    if !secure && app_env == AppEnv::Production {
        return Err(ConfigError(
            "COOKIE_SECURE=false in production: clients must reach Till over HTTPS (nginx \
             terminates TLS; see docs/operations.md); set COOKIE_SECURE=true"
                .into(),
        ));
    }
    Ok(secure)
}

fn trusted_proxies(get: &dyn Fn(&str) -> Option<String>) -> Result<Vec<IpNet>, ConfigError> {
    match get("TRUSTED_PROXIES") {
        None => Ok(Vec::new()),
        Some(list) => list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(parse_net)
            .collect(),
    }
}

/// Origins as browsers send them (`scheme://host[:port]`), lowercased, without a trailing slash.
fn allowed_origins(get: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    get("ALLOWED_ORIGINS")
        .map(|list| {
            list.split(',')
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|o| !o.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn shop(
    get: &dyn Fn(&str) -> Option<String>,
    num: &dyn Fn(&str, u64) -> Result<u64, ConfigError>,
) -> Result<ShopConfig, ConfigError> {
    let store_timezone = get("STORE_TIMEZONE").unwrap_or_else(|| "UTC".into());
    let store_timezone = chrono_tz::Tz::from_str(&store_timezone).map_err(|_| {
        ConfigError(format!(
            "STORE_TIMEZONE must be an IANA zone name, got {store_timezone:?}"
        ))
    })?;
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
    Ok(ShopConfig {
        currency,
        default_calling_code,
        store_timezone,
        store_name: get("STORE_NAME").unwrap_or_else(|| "Till".into()),
        store_address: get("STORE_ADDRESS").unwrap_or_default(),
        store_tax_id: get("STORE_TAX_ID"),
        order_unpaid_ttl: Duration::from_secs(60 * num("ORDER_UNPAID_TTL_MINUTES", 30)?),
        online_open_orders_per_customer: u32::try_from(num("ONLINE_OPEN_ORDERS_PER_CUSTOMER", 3)?)
            .map_err(|_| ConfigError("ONLINE_OPEN_ORDERS_PER_CUSTOMER is too large".into()))?,
        shifts_required: flag(get, "SHIFTS_REQUIRED", false)?,
        shift_max_difference_cents: i64::try_from(num("SHIFT_MAX_DIFFERENCE_CENTS", 500)?)
            .ok()
            .filter(|n| *n <= 1_000_000_000_000)
            .ok_or_else(|| ConfigError("SHIFT_MAX_DIFFERENCE_CENTS is too large".into()))?,
    })
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
    use std::collections::{BTreeSet, HashMap};
    use std::sync::Mutex;

    use secrecy::ExposeSecret;

    use super::*;

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
        good.push((
            "PAYMENT_WEBHOOK_SECRET",
            "whsec_0123456789abcdef0123456789ab",
        ));
        assert_eq!(cfg(&good).unwrap().runtime.app_env, AppEnv::Production);
    }

    #[test]
    fn production_requires_its_own_long_webhook_secret() {
        let base = [
            ("DATABASE_URL", "postgres://x"),
            ("APP_ENV", "production"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ];
        let err = cfg(&base).unwrap_err().0;
        assert!(err.contains("PAYMENT_WEBHOOK_SECRET is not set"), "{err}");
        for bad in ["short", DEV_PAYMENT_WEBHOOK_SECRET] {
            let mut v = base.to_vec();
            v.push(("PAYMENT_WEBHOOK_SECRET", bad));
            assert!(cfg(&v).unwrap_err().0.contains("shorter than"));
        }
        // Development falls back to the fixed key, and Debug never shows a secret.
        let dev = cfg(&[("DATABASE_URL", "x")]).unwrap();
        assert_eq!(
            dev.payments.webhook_secret.expose_secret(),
            DEV_PAYMENT_WEBHOOK_SECRET
        );
        let mine = cfg(&[
            ("DATABASE_URL", "x"),
            ("PAYMENT_WEBHOOK_SECRET", "hush-hush-42"),
        ])
        .unwrap();
        assert!(!format!("{mine:?}").contains("hush-hush-42"));
        assert_eq!(mine.shop.online_open_orders_per_customer, 3);
        assert!(!mine.shop.shifts_required);
        assert_eq!(mine.shop.shift_max_difference_cents, 500);
    }

    #[test]
    fn production_refuses_insecure_cookies() {
        let base = [
            ("DATABASE_URL", "postgres://x"),
            ("APP_ENV", "production"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            (
                "PAYMENT_WEBHOOK_SECRET",
                "whsec_0123456789abcdef0123456789ab",
            ),
        ];
        let with = |v: &str| {
            let mut p = base.to_vec();
            p.push(("COOKIE_SECURE", v));
            cfg(&p)
        };
        for off in ["false", "0", "no", "FALSE"] {
            let e = with(off).unwrap_err().0;
            assert!(
                e.contains("COOKIE_SECURE=false in production"),
                "{off}: {e}"
            );
        }
        assert!(with("maybe").unwrap_err().0.contains("true or false"));
        assert!(with("true").unwrap().auth.cookie_secure);
        // Unset in production means secure; unset in development means not.
        assert!(cfg(&base).unwrap().auth.cookie_secure);
        let dev = cfg(&[("DATABASE_URL", "x"), ("COOKIE_SECURE", "false")]).unwrap();
        assert!(!dev.auth.cookie_secure);
        assert!(!cfg(&[("DATABASE_URL", "x")]).unwrap().auth.cookie_secure);
    }

    #[test]
    fn defaults_and_debug_hides_secrets() {
        let c = cfg(&[
            ("DATABASE_URL", "postgres://user:hunter2@db/till"),
            ("JWT_SECRET", "s3cr3t-value"),
        ])
        .unwrap();
        assert_eq!(c.limits.login_per_min, 5);
        assert_eq!(c.http.max_body_bytes, 1_048_576);
        assert_eq!(c.auth.jwt_ttl, Duration::from_secs(900));
        assert_eq!(c.shop.currency, "USD");
        assert_eq!(c.worker.concurrency, 4);
        assert_eq!(c.worker.backoff_cap, Duration::from_secs(600));
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("s3cr3t-value"),
            "{dbg}"
        );
        assert_eq!(c.auth.jwt_secret.expose_secret(), "s3cr3t-value");
    }

    #[test]
    fn trusted_proxies_parse() {
        let c = cfg(&[
            ("DATABASE_URL", "x"),
            ("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
        ])
        .unwrap();
        assert_eq!(c.http.trusted_proxies.len(), 2);
        assert!(cfg(&[("DATABASE_URL", "x"), ("TRUSTED_PROXIES", "nope")]).is_err());
    }

    #[test]
    fn worker_settings_are_read_and_validated() {
        let c = cfg(&[
            ("DATABASE_URL", "x"),
            ("WORKER_CONCURRENCY", "0"),
            ("WORKER_POLL_MS", "1"),
        ])
        .unwrap();
        assert_eq!(c.worker.concurrency, 1);
        assert_eq!(c.worker.poll, Duration::from_millis(10));
        assert!(cfg(&[("DATABASE_URL", "x"), ("WORKER_LEASE_SECONDS", "soon")]).is_err());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut c = cfg(&[("DATABASE_URL", "x")]).unwrap().worker;
        c.backoff_base = Duration::from_millis(100);
        c.backoff_cap = Duration::from_millis(500);
        let d: Vec<u128> = (1..=5).map(|a| c.backoff(a).as_millis()).collect();
        assert_eq!(d, vec![100, 200, 400, 500, 500]);
    }

    /// The declared list is exactly what the parser reads: nothing read undeclared, nothing
    /// declared but ignored, no name twice.
    #[test]
    fn settings_list_is_what_the_parser_reads() {
        let asked = Mutex::new(BTreeSet::new());
        Config::from_lookup(|k| {
            asked.lock().unwrap().insert(k.to_owned());
            (k == "DATABASE_URL").then(|| "postgres://x".to_owned())
        })
        .unwrap();
        let declared: Vec<&str> = Config::settings().map(|s| s.name).collect();
        let unique: BTreeSet<String> = declared.iter().map(|s| s.to_string()).collect();
        assert_eq!(unique.len(), declared.len(), "a setting is declared twice");
        assert_eq!(asked.into_inner().unwrap(), unique);
    }
}
