//! The key/value facade over Redis or the in-process fallback.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_redis::redis::aio::MultiplexedConnection;
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
    Redis {
        pool: RedisConns,
        client: redis::Client,
    },
    Local(Arc<Local>),
}

/// The store's Redis connections. Operations share one multiplexed connection (commands of
/// concurrent requests are pipelined over it); the pool only creates and health-checks it.
/// Checking a pooled connection out per operation costs an extra round trip each time
/// (deadpool-redis sends `UNWATCH` + `PING` to every connection it hands out), which made the
/// rate limiter's round trip twice as expensive and capped `/api/v1` at a fraction of the
/// throughput of routes without it. After any error or timeout the shared connection goes
/// back to the pool, whose check replaces it if it is broken.
#[derive(Clone)]
pub(crate) struct RedisConns {
    pool: Pool,
    shared: Arc<Mutex<Option<deadpool_redis::Connection>>>,
}

impl RedisConns {
    fn new(pool: Pool) -> Self {
        RedisConns {
            pool,
            shared: Arc::new(Mutex::new(None)),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<deadpool_redis::Connection>> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A handle on the shared connection, (re)checked out from the pool when there is none.
    pub(crate) async fn conn(&self) -> Result<MultiplexedConnection, StoreError> {
        if let Some(c) = self.slot().as_ref() {
            return Ok((**c).clone());
        }
        let fresh = self.pool.get().await?;
        let mut slot = self.slot();
        // Another task may have filled the slot meanwhile; then `fresh` goes back to the pool.
        let c = slot.get_or_insert(fresh);
        Ok((**c).clone())
    }

    /// Runs one operation, bounded in time; on failure the shared connection is given up.
    pub(crate) async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = tokio::time::timeout(OP_TIMEOUT, fut)
            .await
            .map_err(|_| StoreError::Unavailable("redis timed out".into()))
            .and_then(|r| r);
        if result.is_err() {
            self.slot().take();
        }
        result
    }
}

/// Shared store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    prefix: Arc<str>,
    /// Locally held blocks of rate-limit hits (see [`Store::count_hit`]).
    leases: Arc<crate::leases::Leases>,
}

impl Store {
    /// In-process store for single-instance mode.
    pub fn local() -> Self {
        Store {
            backend: Backend::Local(Arc::new(Local::default())),
            prefix: Arc::from("till:"),
            leases: Arc::default(),
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
            backend: Backend::Redis {
                pool: RedisConns::new(pool),
                client,
            },
            prefix: Arc::from(format!("{namespace}:")),
            leases: Arc::default(),
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

    /// The connections, for callers in this crate that need commands the facade lacks.
    pub(crate) fn redis_pool(&self) -> Option<&RedisConns> {
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
                let s = pool.pool.status();
                Some((s.size, s.available, s.max_size))
            }
            Backend::Local(_) => None,
        }
    }

    /// Round-trip time to the store.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let start = Instant::now();
        match &self.backend {
            Backend::Local(_) => Ok(start.elapsed()),
            Backend::Redis { pool, .. } => {
                pool.bounded(async {
                    let mut c = pool.conn().await?;
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
                pool.bounded(async {
                    let mut c = pool.conn().await?;
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
                pool.bounded(async {
                    let mut c = pool.conn().await?;
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
                pool.bounded(async {
                    let mut c = pool.conn().await?;
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
                pool.bounded(async {
                    let mut c = pool.conn().await?;
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
        self.incr_window_by(key, window, 1).await
    }

    /// Counts one hit against a bucket of `limit` per `window`, shared by every instance.
    ///
    /// Exact for small limits (one Redis round trip per hit). For large limits an instance
    /// reserves a block of `limit / 100` hits at once (INCRBY) and hands them out locally, so a
    /// busy client costs one round trip per block. Reserved hits count as used everywhere, so a
    /// bucket can only be stricter than its limit (by at most one unused block per instance per
    /// window), never looser.
    pub async fn count_hit(
        &self,
        key: &str,
        window: Duration,
        limit: u64,
    ) -> Result<WindowCount, StoreError> {
        let block = (limit / 100).clamp(1, 1000);
        if block == 1 || !self.is_redis() {
            return self.incr_window(key, window).await;
        }
        if let Some(c) = self.leases.take(key) {
            return Ok(c);
        }
        let reserved = self.incr_window_by(key, window, block).await?;
        let first = reserved.count + 1 - block;
        self.leases
            .put(key, first + 1, reserved.count, reserved.reset_ms);
        Ok(WindowCount {
            count: first,
            ..reserved
        })
    }

    async fn incr_window_by(
        &self,
        key: &str,
        window: Duration,
        by: u64,
    ) -> Result<WindowCount, StoreError> {
        let key = self.key(key);
        match &self.backend {
            Backend::Local(l) => {
                let (count, left) = l.incr_window(&key, window);
                Ok(WindowCount {
                    count,
                    reset_secs: left.as_secs_f64().ceil() as u64,
                    reset_ms: left.as_millis() as u64,
                })
            }
            Backend::Redis { pool, .. } => {
                pool.bounded(async {
                    let mut c = pool.conn().await?;
                    let (count, _, pttl): (u64, i64, i64) = redis::pipe()
                        .atomic()
                        .incr(&key, by)
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
                        reset_ms,
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
                pool.bounded(async {
                    let mut c = pool.conn().await?;
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
                pool.bounded(async {
                    let mut c = pool.conn().await?;
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
                pool.bounded(async {
                    let mut c = pool.conn().await?;
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
                pool.bounded(async {
                    let mut c = pool.conn().await?;
                    let _: i64 = c.del(full).await?;
                    Ok(())
                })
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway redis-server on a free port.
    struct Server {
        port: u16,
        child: std::process::Child,
    }

    impl Server {
        fn start(port: u16) -> Server {
            let bin = std::env::var("TILL_TEST_REDIS_SERVER_BIN")
                .unwrap_or_else(|_| "redis-server".into());
            let child = std::process::Command::new(bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("start redis-server");
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Server { port, child }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[tokio::test]
    async fn the_shared_connection_recovers_after_redis_restarts() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Server::start(port);
        let store = Store::redis(&format!("redis://127.0.0.1:{}", server.port), "t", 4).unwrap();
        store.set("k", b"v", None).await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), Some(b"v".to_vec()));

        drop(server);
        assert!(store.get("k").await.is_err());

        let _server = Server::start(port);
        let mut ok = false;
        for _ in 0..50 {
            if store.set("k", b"w", None).await.is_ok() {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ok, "store did not reconnect");
        assert_eq!(store.get("k").await.unwrap(), Some(b"w".to_vec()));
    }
}
