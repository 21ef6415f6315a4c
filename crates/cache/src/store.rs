//! The key/value facade over Redis or the in-process fallback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::AsyncCommands;
use tokio::sync::OnceCell;

use crate::fallback::{self, Counters};
use crate::local::Local;
use crate::WindowCount;

/// Redis can fail; the in-process store cannot. Callers decide per use what a failure means
/// (sessions: fail closed). Rate limits do not fail: they fall back to per-instance counters, and
/// report this error only when even those cannot count (see `fallback`).
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

/// Every Redis call is bounded so that a stalled Redis degrades requests instead of hanging them.
const OP_TIMEOUT: Duration = Duration::from_millis(1500);

/// One connection attempt; shorter than [`OP_TIMEOUT`] so a call that waits on a reconnect can
/// still see it succeed.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

/// Runs one Redis operation, bounded by [`OP_TIMEOUT`].
pub(crate) async fn bounded<T>(
    fut: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(OP_TIMEOUT, fut)
        .await
        .map_err(|_| StoreError::Unavailable("redis timed out".into()))?
}

#[derive(Clone)]
enum Backend {
    Redis(Arc<RedisConn>),
    Local(Arc<Local>),
}

/// The store's Redis side. Commands of every request share one multiplexed connection
/// (redis's `ConnectionManager`: concurrent commands are pipelined over it, and it reconnects
/// by itself after the connection drops); pub/sub needs connections of its own, opened from
/// the client.
pub(crate) struct RedisConn {
    client: redis::Client,
    /// Set up on first use, so that building a `Store` needs no network and an instance can
    /// start while Redis is down.
    manager: OnceCell<ConnectionManager>,
}

impl RedisConn {
    /// A handle on the shared connection (a cheap clone), connecting first if needed.
    pub(crate) async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let manager = self
            .manager
            .get_or_try_init(|| {
                ConnectionManager::new_with_config(self.client.clone(), manager_config())
            })
            .await?;
        Ok(manager.clone())
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }
}

fn manager_config() -> ConnectionManagerConfig {
    let tcp = TcpSettings::default().set_nodelay(true);
    // A peer that stops acknowledging (a half-open connection, a partition) closes the socket
    // after this, so the manager replaces it rather than every call timing out on it.
    #[cfg(target_os = "linux")]
    let tcp = tcp.set_user_timeout(Duration::from_secs(5));
    ConnectionManagerConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT)
        // No retries inside one reconnect: its first back-off step is a fixed second, during
        // which every call would wait. A failed attempt fails the calls waiting on it (they
        // degrade as they would on a timeout) and the next call starts a fresh attempt, so the
        // store is back on the first call after Redis is.
        .set_number_of_retries(0)
        .set_tcp_settings(tcp)
}

/// Shared store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    prefix: Arc<str>,
    /// Locally held blocks of rate-limit hits (see [`Store::count_hit`]).
    leases: Arc<crate::leases::Leases>,
    /// Per-instance rate-limit counters while Redis cannot be asked.
    fallback: Arc<Counters>,
}

impl Store {
    /// In-process store for single-instance mode.
    pub fn local() -> Self {
        Store {
            backend: Backend::Local(Arc::new(Local::default())),
            prefix: Arc::from("till:"),
            leases: Arc::default(),
            fallback: Arc::new(Counters::new(fallback::DEFAULT_CAPACITY)),
        }
    }

    /// Redis-backed store; `namespace` prefixes every key (tests use one per test). Connects on
    /// first use: only a malformed URL fails here.
    pub fn redis(url: &str, namespace: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        Ok(Store {
            backend: Backend::Redis(Arc::new(RedisConn {
                client,
                manager: OnceCell::new(),
            })),
            prefix: Arc::from(format!("{namespace}:")),
            leases: Arc::default(),
            fallback: Arc::new(Counters::new(fallback::DEFAULT_CAPACITY)),
        })
    }

    pub fn is_redis(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    /// The Redis connections, for callers in this crate that need commands (or pub/sub) the
    /// facade lacks.
    pub(crate) fn redis_conn(&self) -> Option<&RedisConn> {
        match &self.backend {
            Backend::Redis(r) => Some(r),
            Backend::Local(_) => None,
        }
    }

    /// Full key with this store's namespace.
    pub fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    /// Whether the shared Redis command connection has been set up (it is on first use, and
    /// reconnects by itself from then on); `None` in single-instance mode.
    pub fn redis_established(&self) -> Option<bool> {
        self.redis_conn().map(|r| r.manager.initialized())
    }

    /// Round-trip time to the store.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let start = Instant::now();
        match &self.backend {
            Backend::Local(_) => Ok(start.elapsed()),
            Backend::Redis(r) => {
                bounded(async {
                    let mut c = r.conn().await?;
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
            Backend::Redis(r) => {
                bounded(async {
                    let mut c = r.conn().await?;
                    Ok(c.get(key).await?)
                })
                .await
            }
        }
    }

    /// Several keys in one round trip (`MGET`), in the order asked.
    pub async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let full: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        match &self.backend {
            Backend::Local(l) => Ok(full.iter().map(|k| l.get(k)).collect()),
            Backend::Redis(r) => {
                bounded(async {
                    let mut c = r.conn().await?;
                    // `MGET` spelt out: redis's `mget` helper sends `GET` for a single key,
                    // whose answer is not a list.
                    let values: Vec<Option<Vec<u8>>> =
                        redis::cmd("MGET").arg(&full).query_async(&mut c).await?;
                    if values.len() != full.len() {
                        return Err(StoreError::Unavailable(
                            "MGET answered another count".into(),
                        ));
                    }
                    Ok(values)
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
            Backend::Redis(r) => {
                bounded(async {
                    let mut c = r.conn().await?;
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
            Backend::Redis(r) => {
                bounded(async {
                    let mut c = r.conn().await?;
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
            Backend::Redis(r) => {
                bounded(async {
                    let mut c = r.conn().await?;
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
    ///
    /// While Redis cannot be asked, the hit is counted by this instance alone (the limit then
    /// applies per instance: looser, never off); the error is returned only when even that
    /// cannot count.
    pub async fn count_hit(
        &self,
        key: &str,
        window: Duration,
        limit: u64,
    ) -> Result<WindowCount, StoreError> {
        let block = (limit / 100).clamp(1, 1000);
        if block == 1 || !self.is_redis() {
            return self.count_attempt(key, window).await;
        }
        if let Some(c) = self.leases.take(key) {
            return Ok(c);
        }
        let reserved = match self.incr_window_by(key, window, block).await {
            Ok(r) => r,
            Err(e) => return self.count_locally(key, window, e),
        };
        let first = reserved.count + 1 - block;
        self.leases
            .put(key, first + 1, reserved.count, reserved.reset_ms);
        Ok(WindowCount {
            count: first,
            ..reserved
        })
    }

    /// Counts one hit exactly (no reserved blocks), like [`Store::count_hit`] falling back to
    /// per-instance counters while Redis cannot be asked.
    pub async fn count_attempt(
        &self,
        key: &str,
        window: Duration,
    ) -> Result<WindowCount, StoreError> {
        match self.incr_window_by(key, window, 1).await {
            Ok(c) => Ok(c),
            Err(e) => self.count_locally(key, window, e),
        }
    }

    /// Takes back one hit counted by [`Store::count_attempt`] in a window that is still open (a
    /// reserved attempt that turned out not to count). Best effort.
    pub async fn refund(&self, key: &str) {
        let full = self.key(key);
        let shared = match &self.backend {
            Backend::Local(l) => {
                l.decr_window(&full);
                return;
            }
            Backend::Redis(r) => {
                bounded(async {
                    let mut c = r.conn().await?;
                    // Only an existing counter: DECR on an expired one would create an
                    // immortal -1.
                    let _: i64 = redis::cmd("EVAL")
                        .arg(
                            "if redis.call('EXISTS', KEYS[1]) == 1 then \
                               return redis.call('DECR', KEYS[1]) end return 0",
                        )
                        .arg(1)
                        .arg(&full)
                        .query_async(&mut c)
                        .await?;
                    Ok(())
                })
                .await
            }
        };
        if shared.is_err() {
            self.fallback.decr(&full);
        }
    }

    fn count_locally(
        &self,
        key: &str,
        window: Duration,
        shared_error: StoreError,
    ) -> Result<WindowCount, StoreError> {
        self.fallback.warn_outage(&shared_error);
        let (count, left) = self.fallback.incr(&self.key(key), window, 1).map_err(|_| {
            StoreError::Unavailable(format!(
                "{shared_error}; per-instance rate-limit table full"
            ))
        })?;
        Ok(WindowCount {
            count,
            reset_secs: left.as_secs_f64().ceil() as u64,
            reset_ms: left.as_millis() as u64,
        })
    }

    /// Sets an integer value unless the stored one is already at least as large, so writers
    /// racing with older values can never lower it. Expires after `ttl`.
    pub async fn set_max(&self, key: &str, value: i64, ttl: Duration) -> Result<(), StoreError> {
        let key = self.key(key);
        let ms = ttl.as_millis().max(1) as u64;
        match &self.backend {
            Backend::Local(l) => {
                l.set_max(&key, value, ttl);
                Ok(())
            }
            Backend::Redis(r) => {
                bounded(async {
                    let mut c = r.conn().await?;
                    let _: i64 = redis::cmd("EVAL")
                        .arg(
                            "local cur = tonumber(redis.call('GET', KEYS[1])) \
                             if cur == nil or cur < tonumber(ARGV[1]) then \
                               redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end \
                             return 0",
                        )
                        .arg(1)
                        .arg(&key)
                        .arg(value)
                        .arg(ms)
                        .query_async(&mut c)
                        .await?;
                    Ok(())
                })
                .await
            }
        }
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
            Backend::Redis(r) => {
                bounded(async {
                    let mut c = r.conn().await?;
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
            Backend::Redis(r) => {
                bounded(async {
                    let mut c = r.conn().await?;
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
            Backend::Redis(r) => {
                bounded(async {
                    let mut c = r.conn().await?;
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
            Backend::Redis(r) => {
                bounded(async {
                    let mut c = r.conn().await?;
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
            Backend::Redis(r) => {
                bounded(async {
                    let mut c = r.conn().await?;
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

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn signal(server: &Server, sig: &str) {
        let pid = server.child.id().to_string();
        let status = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// `rediss://` (Redis over TLS, as managed Redis services require) is understood: a build
    /// without a TLS feature refuses such a URL here, before any connection is tried.
    #[test]
    fn rediss_urls_are_accepted() {
        for url in [
            "rediss://:secret@redis.example.com:6380",
            "rediss://redis.example.com:6380/2",
        ] {
            if let Err(e) = Store::redis(url, "till") {
                panic!("{url}: {e}");
            }
        }
    }

    #[tokio::test]
    async fn get_many_answers_each_key_in_order_in_both_backends() {
        let server = Server::start(free_port());
        let redis = Store::redis(&format!("redis://127.0.0.1:{}", server.port), "t").unwrap();
        for store in [Store::local(), redis] {
            store.set("a", b"1", None).await.unwrap();
            store.set("c", b"3", None).await.unwrap();
            assert_eq!(
                store.get_many(&["c", "b", "a"]).await.unwrap(),
                [Some(b"3".to_vec()), None, Some(b"1".to_vec())]
            );
            assert_eq!(store.get_many(&["a"]).await.unwrap(), [Some(b"1".to_vec())]);
        }
    }

    #[tokio::test]
    async fn a_stalled_redis_fails_calls_in_bounded_time_and_they_resume_after() {
        let server = Server::start(free_port());
        let store = Store::redis(&format!("redis://127.0.0.1:{}", server.port), "t").unwrap();
        store.set("k", b"v", None).await.unwrap();

        signal(&server, "-STOP");
        let start = Instant::now();
        assert!(store.get("k").await.is_err());
        let waited = start.elapsed();
        signal(&server, "-CONT");
        assert!(
            waited < OP_TIMEOUT + Duration::from_millis(500),
            "{waited:?}"
        );

        assert_eq!(store.get("k").await.unwrap(), Some(b"v".to_vec()));
    }

    #[tokio::test]
    async fn the_shared_connection_recovers_after_redis_restarts() {
        let port = free_port();
        let server = Server::start(port);
        let store = Store::redis(&format!("redis://127.0.0.1:{}", server.port), "t").unwrap();
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
