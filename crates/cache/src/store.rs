//! The key/value facade over Redis or the in-process fallback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_redis::redis::{self, AsyncCommands};
use deadpool_redis::{Pool, PoolConfig, Runtime, Timeouts};

use crate::local::Local;
use crate::WindowCount;

/// Redis can fail; the in-process store cannot. Callers decide per use whether a failure means
/// "deny" (sessions: fail closed) or "allow" (rate limits: fail open).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis unavailable: {0}")]
    Unavailable(String),
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

impl From<deadpool_redis::PoolError> for StoreError {
    fn from(e: deadpool_redis::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// Every Redis call is bounded so that a stalled Redis degrades requests instead of hanging them.
const OP_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Clone)]
enum Backend {
    Redis { pool: Pool, client: redis::Client },
    Local(Arc<Local>),
}

/// Shared store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    prefix: Arc<str>,
}

impl Store {
    /// In-process store for single-instance mode.
    pub fn local() -> Self {
        Store {
            backend: Backend::Local(Arc::new(Local::default())),
            prefix: Arc::from("till:"),
        }
    }

    /// Redis-backed store; `namespace` prefixes every key (tests use one per test).
    pub fn redis(url: &str, namespace: &str, max_size: usize) -> Result<Self, StoreError> {
        let mut cfg = deadpool_redis::Config::from_url(url);
        cfg.pool = Some(PoolConfig {
            max_size,
            timeouts: Timeouts {
                wait: Some(Duration::from_millis(1000)),
                create: Some(Duration::from_millis(1000)),
                recycle: Some(Duration::from_millis(500)),
            },
            ..PoolConfig::default()
        });
        let pool = cfg
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let client = redis::Client::open(url)?;
        Ok(Store {
            backend: Backend::Redis { pool, client },
            prefix: Arc::from(format!("{namespace}:")),
        })
    }

    pub fn is_redis(&self) -> bool {
        matches!(self.backend, Backend::Redis { .. })
    }

    /// The raw client, for pub/sub connections that cannot come from the pool.
    pub fn redis_client(&self) -> Option<&redis::Client> {
        match &self.backend {
            Backend::Redis { client, .. } => Some(client),
            Backend::Local(_) => None,
        }
    }

    /// The connection pool, for callers in this crate that need commands the facade lacks.
    pub(crate) fn redis_pool(&self) -> Option<&Pool> {
        match &self.backend {
            Backend::Redis { pool, .. } => Some(pool),
            Backend::Local(_) => None,
        }
    }

    /// Full key with this store's namespace.
    pub fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    /// Pool statistics (size, available, max) when Redis is in use.
    pub fn pool_status(&self) -> Option<(usize, usize, usize)> {
        match &self.backend {
            Backend::Redis { pool, .. } => {
                let s = pool.status();
                Some((s.size, s.available, s.max_size))
            }
            Backend::Local(_) => None,
        }
    }

    async fn conn(pool: &Pool) -> Result<deadpool_redis::Connection, StoreError> {
        Ok(pool.get().await?)
    }

    async fn bounded<T>(
        fut: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(OP_TIMEOUT, fut)
            .await
            .map_err(|_| StoreError::Unavailable("redis timed out".into()))?
    }

    /// Round-trip time to the store.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let start = Instant::now();
        match &self.backend {
            Backend::Local(_) => Ok(start.elapsed()),
            Backend::Redis { pool, .. } => {
                Self::bounded(async {
                    let mut c = Self::conn(pool).await?;
                    let _: String = redis::cmd("PING").query_async(&mut c).await?;
                    Ok(start.elapsed())
                })
                .await
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Local(l) => Ok(l.get(&key)),
            Backend::Redis { pool, .. } => {
                Self::bounded(async {
                    let mut c = Self::conn(pool).await?;
                    Ok(c.get(key).await?)
                })
                .await
            }
        }
    }

    pub async fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Local(l) => {
                l.set(&key, value.to_vec(), ttl);
                Ok(())
            }
            Backend::Redis { pool, .. } => {
                Self::bounded(async {
                    let mut c = Self::conn(pool).await?;
                    match ttl {
                        Some(t) => {
                            let ms = t.as_millis().max(1) as u64;
                            let _: () = redis::cmd("SET")
                                .arg(&key)
                                .arg(value)
                                .arg("PX")
                                .arg(ms)
                                .query_async(&mut c)
                                .await?;
                        }
                        None => {
                            let _: () = c.set(&key, value).await?;
                        }
                    }
                    Ok(())
                })
                .await
            }
        }
    }

    pub async fn del(&self, key: &str) -> Result<(), StoreError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Local(l) => {
                l.del(&key);
                Ok(())
            }
            Backend::Redis { pool, .. } => {
                Self::bounded(async {
                    let mut c = Self::conn(pool).await?;
                    let _: i64 = c.del(&key).await?;
                    Ok(())
                })
                .await
            }
        }
    }

    /// Monotonic counter (never expires); used for cache generations.
    pub async fn incr(&self, key: &str) -> Result<i64, StoreError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Local(l) => Ok(l.incr(&key)),
            Backend::Redis { pool, .. } => {
                Self::bounded(async {
                    let mut c = Self::conn(pool).await?;
                    Ok(c.incr(&key, 1).await?)
                })
                .await
            }
        }
    }

    /// Counts one hit in the fixed window `window` that `key` names. Atomic across instances:
    /// INCR and the first EXPIRE run in one MULTI so a crash cannot leave an immortal counter.
    pub async fn incr_window(
        &self,
        key: &str,
        window: Duration,
    ) -> Result<WindowCount, StoreError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Local(l) => {
                let (count, left) = l.incr_window(&key, window);
                Ok(WindowCount {
                    count,
                    reset_secs: left.as_secs_f64().ceil() as u64,
                })
            }
            Backend::Redis { pool, .. } => {
                Self::bounded(async {
                    let mut c = Self::conn(pool).await?;
                    let (count, _, pttl): (u64, i64, i64) = redis::pipe()
                        .atomic()
                        .incr(&key, 1)
                        .cmd("PEXPIRE")
                        .arg(&key)
                        .arg(window.as_millis() as u64)
                        .arg("NX")
                        .cmd("PTTL")
                        .arg(&key)
                        .query_async(&mut c)
                        .await?;
                    let reset_ms = if pttl > 0 {
                        pttl as u64
                    } else {
                        window.as_millis() as u64
                    };
                    Ok(WindowCount {
                        count,
                        reset_secs: reset_ms.div_ceil(1000),
                    })
                })
                .await
            }
        }
    }

    pub async fn sadd(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Local(l) => {
                l.sadd(&key, member);
                Ok(())
            }
            Backend::Redis { pool, .. } => {
                Self::bounded(async {
                    let mut c = Self::conn(pool).await?;
                    let _: () = redis::pipe()
                        .sadd(&key, member)
                        .ignore()
                        .expire(&key, ttl.as_secs() as i64)
                        .ignore()
                        .query_async(&mut c)
                        .await?;
                    Ok(())
                })
                .await
            }
        }
    }

    pub async fn srem(&self, key: &str, member: &str) -> Result<(), StoreError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Local(l) => {
                l.srem(&key, member);
                Ok(())
            }
            Backend::Redis { pool, .. } => {
                Self::bounded(async {
                    let mut c = Self::conn(pool).await?;
                    let _: i64 = c.srem(&key, member).await?;
                    Ok(())
                })
                .await
            }
        }
    }

    /// Removes a set and returns its members.
    pub async fn take_set(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Local(l) => Ok(l.take_set(&key)),
            Backend::Redis { pool, .. } => {
                Self::bounded(async {
                    let mut c = Self::conn(pool).await?;
                    let (members, _): (Vec<String>, i64) = redis::pipe()
                        .atomic()
                        .smembers(&key)
                        .del(&key)
                        .query_async(&mut c)
                        .await?;
                    Ok(members)
                })
                .await
            }
        }
    }

    /// Deletes several keys at once.
    pub async fn del_many(&self, keys: &[String]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let full: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        match &self.backend {
            Backend::Local(l) => {
                for k in &full {
                    l.del(k);
                }
                Ok(())
            }
            Backend::Redis { pool, .. } => {
                Self::bounded(async {
                    let mut c = Self::conn(pool).await?;
                    let _: i64 = c.del(full).await?;
                    Ok(())
                })
                .await
            }
        }
    }
}
