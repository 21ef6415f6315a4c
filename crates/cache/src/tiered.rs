//! A two-tier read-through cache for data that every instance serves and any instance may
//! change (the catalog): a small in-process tier (moka) in front of a shared Redis tier, in
//! front of the loader (PostgreSQL).
//!
//! **Invalidation is by generation, never by key.** A write anywhere calls
//! [`TieredCache::invalidate`] after it commits: that `INCR`s the cache's generation in Redis
//! and `PUBLISH`es on the cache's channel.
//! * Shared tier: entries are versioned. Each stores the generation it was loaded under, and a
//!   reader fetches the current generation and the entry in one round trip (`MGET`); an entry
//!   from an older generation is a miss. (Stamping the value rather than the key name means a
//!   reload overwrites the dead entry, so Redis memory stays bounded by the number of keys
//!   however often the catalog changes.)
//! * Local tier: keys carry a local *epoch* that each instance bumps on every invalidation
//!   message (and on its own writes, and when its subscription is (re)established). An entry
//!   loaded before the bump sits under the old epoch and is never served again, even if its
//!   load finished after the message arrived. Local entries also expire after `local_ttl`
//!   (≤ 1 s), the safety net should a message be lost.
//!
//! A cold key under a burst is loaded once per instance: concurrent misses of one key wait for
//! the first caller's load (moka's coalescing entry API).
//!
//! Without Redis (single-instance mode) only the local tier exists and invalidation is the
//! epoch bump. When Redis fails, reads fall through to the loader rather than fail.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::store::bounded;
use crate::{Store, StoreError};

/// Where a value came from, for hit/miss accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// This instance's memory (including waiting on another caller's load).
    Local,
    /// Redis, loaded there by some instance.
    Shared,
    /// The loader ran: a real miss.
    Loaded,
}

impl Source {
    pub fn is_hit(self) -> bool {
        !matches!(self, Source::Loaded)
    }
}

#[derive(Debug, Clone)]
pub struct TieredOptions {
    /// Lifetime of an in-process entry; keep it ≤ 1 s: it bounds staleness if pub/sub is lost.
    pub local_ttl: Duration,
    /// Lifetime of a Redis entry. Generations make stale entries unreachable; this only
    /// reclaims the memory of keys no longer asked for.
    pub shared_ttl: Duration,
    /// In-process budget, in bytes of values and keys.
    pub local_max_bytes: u64,
}

impl Default for TieredOptions {
    fn default() -> Self {
        TieredOptions {
            local_ttl: Duration::from_secs(1),
            shared_ttl: Duration::from_secs(300),
            local_max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Cheap to clone; clones share both tiers.
#[derive(Clone)]
pub struct TieredCache {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// Namespaced key of the generation counter.
    gen_key: String,
    /// Namespaced prefix of entry keys.
    entry_prefix: String,
    /// The same prefix without the namespace, for `Store::set`, which adds it.
    set_prefix: String,
    /// Namespaced pub/sub channel.
    channel: String,
    local: moka::future::Cache<String, Bytes>,
    epoch: AtomicU64,
    listening: AtomicBool,
    listener_started: AtomicBool,
    shared_ttl: Duration,
}

impl Inner {
    fn bump_epoch(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        // Entries under old epochs are unreachable already; this just frees their memory.
        self.local.invalidate_all();
    }
}

impl TieredCache {
    /// A cache named `name` (the Redis key prefix and channel) over `store`.
    pub fn new(store: Store, name: &str, opts: TieredOptions) -> Self {
        let local = moka::future::Cache::builder()
            .max_capacity(opts.local_max_bytes)
            .weigher(|k: &String, v: &Bytes| (k.len() + v.len()).try_into().unwrap_or(u32::MAX))
            .time_to_live(opts.local_ttl)
            .build();
        TieredCache {
            inner: Arc::new(Inner {
                gen_key: store.key(&format!("{name}:gen")),
                entry_prefix: store.key(&format!("{name}:e:")),
                set_prefix: format!("{name}:e:"),
                channel: store.key(&format!("{name}:invalidate")),
                store,
                local,
                epoch: AtomicU64::new(0),
                listening: AtomicBool::new(false),
                listener_started: AtomicBool::new(false),
                shared_ttl: opts.shared_ttl,
            }),
        }
    }

    /// The value of `key`: from memory, else Redis, else `load` (whose result is then stored in
    /// both tiers). Concurrent callers missing the same key share one load. A loader error is
    /// returned to every waiting caller and nothing is cached.
    pub async fn get_or_load<F, Fut, E>(
        &self,
        key: &str,
        load: F,
    ) -> Result<(Bytes, Source), Arc<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: Send + Sync + 'static,
    {
        let inner = &self.inner;
        let epoch = inner.epoch.load(Ordering::Acquire);
        let source = OnceLock::new();
        let entry = inner
            .local
            .entry(format!("{epoch}:{key}"))
            .or_try_insert_with(async {
                let (value, src) = self.load_through_shared(key, load).await?;
                let _ = source.set(src);
                Ok(value)
            })
            .await?;
        let source = match source.get() {
            Some(s) if entry.is_fresh() => *s,
            _ => Source::Local,
        };
        Ok((entry.into_value(), source))
    }

    async fn load_through_shared<F, Fut, E>(&self, key: &str, load: F) -> Result<(Bytes, Source), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
    {
        if !self.inner.store.is_redis() {
            return Ok((load().await?, Source::Loaded));
        }
        match self.shared_get(key).await {
            Ok((_, Some(v))) => Ok((v, Source::Shared)),
            Ok((generation, None)) => {
                let v = load().await?;
                // Stamped with the generation read *before* loading: if a write landed in
                // between, the stamp is already old and no one will be served this value.
                let mut stamped = Vec::with_capacity(8 + v.len());
                stamped.extend_from_slice(&generation.to_be_bytes());
                stamped.extend_from_slice(&v);
                let k = format!("{}{key}", self.inner.set_prefix);
                let ttl = Some(self.inner.shared_ttl);
                if let Err(e) = self.inner.store.set(&k, &stamped, ttl).await {
                    tracing::warn!(error = %e, "shared cache write failed");
                }
                Ok((v, Source::Loaded))
            }
            Err(e) => {
                tracing::warn!(error = %e, "shared cache unavailable; reading through");
                Ok((load().await?, Source::Loaded))
            }
        }
    }

    /// (current generation, the entry if it was loaded under that generation).
    async fn shared_get(&self, key: &str) -> Result<(i64, Option<Bytes>), StoreError> {
        let inner = &self.inner;
        let Some(redis) = inner.store.redis_conn() else {
            return Ok((0, None));
        };
        bounded(async {
            let mut c = redis.conn().await?;
            let (generation, entry): (Option<i64>, Option<Vec<u8>>) = redis::cmd("MGET")
                .arg(&inner.gen_key)
                .arg(format!("{}{key}", inner.entry_prefix))
                .query_async(&mut c)
                .await?;
            let generation = generation.unwrap_or(0);
            let current = entry.filter(|e| {
                e.get(..8)
                    .and_then(|s| <[u8; 8]>::try_from(s).ok())
                    .is_some_and(|stamp| i64::from_be_bytes(stamp) == generation)
            });
            Ok((generation, current.map(|e| Bytes::from(e).slice(8..))))
        })
        .await
    }

    /// Makes every cached value unreachable on every instance. Call after the write commits.
    ///
    /// Order matters: the shared generation moves first, then this instance's epoch, so a
    /// reader here that misses locally in between cannot pull an old shared entry into a new
    /// local slot. An error means other instances may serve old values until their local TTL
    /// and the shared generation catch up; the write itself has happened, so callers log it
    /// rather than fail the request.
    pub async fn invalidate(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        let result = match inner.store.redis_conn() {
            None => Ok(()),
            Some(redis) => {
                bounded(async {
                    let mut c = redis.conn().await?;
                    let _: (i64, i64) = redis::pipe()
                        .incr(&inner.gen_key, 1)
                        .publish(&inner.channel, "1")
                        .query_async(&mut c)
                        .await?;
                    Ok(())
                })
                .await
            }
        };
        inner.bump_epoch();
        result
    }

    /// Starts the background task that applies other instances' invalidations here. Call once
    /// per serving process (a second call does nothing); does nothing without Redis. The task
    /// reconnects with backoff, dropping this instance's local entries on every attempt, and
    /// stops when the cache is dropped.
    pub fn spawn_listener(&self) {
        let Some(client) = self.inner.store.redis_conn().map(|r| r.client().clone()) else {
            return;
        };
        if self.inner.listener_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let channel = self.inner.channel.clone();
        tokio::spawn(listen(client, channel, weak));
    }
}

async fn listen(client: redis::Client, channel: String, cache: Weak<Inner>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let connect = async {
            let mut ps = client.get_async_pubsub().await?;
            ps.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(ps)
        };
        match tokio::time::timeout(Duration::from_secs(2), connect).await {
            Ok(Ok(mut ps)) => {
                let Some(inner) = cache.upgrade() else { return };
                // Anything may have changed while this instance was not listening.
                inner.listening.store(true, Ordering::Release);
                inner.bump_epoch();
                drop(inner);
                backoff = Duration::from_millis(100);
                let mut messages = ps.on_message();
                while messages.next().await.is_some() {
                    match cache.upgrade() {
                        Some(inner) => inner.bump_epoch(),
                        None => return,
                    }
                }
                tracing::warn!("cache invalidation subscription lost; reconnecting");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cache invalidation subscribe failed"),
            Err(_) => tracing::warn!("cache invalidation subscribe timed out"),
        }
        match cache.upgrade() {
            Some(inner) => {
                inner.listening.store(false, Ordering::Release);
                inner.bump_epoch();
            }
            None => return,
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn concurrent_misses_load_once_and_invalidate_reloads() {
        let cache = TieredCache::new(Store::local(), "t", TieredOptions::default());
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let cache = cache.clone();
            let loads = loads.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_load("k", || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, String>(Bytes::from_static(b"v1"))
                    })
                    .await
                    .unwrap()
            }));
        }
        let mut loaded = 0;
        for t in tasks {
            let (v, src) = t.await.unwrap();
            assert_eq!(&v[..], b"v1");
            loaded += usize::from(src == Source::Loaded);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert_eq!(loaded, 1);

        cache.invalidate().await.unwrap();
        let (v, src) = cache
            .get_or_load("k", || async { Ok::<_, String>(Bytes::from_static(b"v2")) })
            .await
            .unwrap();
        assert_eq!((&v[..], src), (&b"v2"[..], Source::Loaded));
        let (_, src) = cache
            .get_or_load("k", || async { Ok::<_, String>(Bytes::from_static(b"v3")) })
            .await
            .unwrap();
        assert_eq!(src, Source::Local);
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let cache = TieredCache::new(Store::local(), "t", TieredOptions::default());
        let e = cache
            .get_or_load("k", || async { Err::<Bytes, _>("boom".to_string()) })
            .await
            .unwrap_err();
        assert_eq!(*e, "boom");
        let (v, _) = cache
            .get_or_load("k", || async { Ok::<_, String>(Bytes::from_static(b"ok")) })
            .await
            .unwrap();
        assert_eq!(&v[..], b"ok");
    }

    fn redis_pair() -> (TieredCache, TieredCache) {
        let url = std::env::var("TILL_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let ns = format!("tiered-test-{}", uuid::Uuid::new_v4().simple());
        let mk = || {
            TieredCache::new(
                Store::redis(&url, &ns).unwrap(),
                "t",
                TieredOptions::default(),
            )
        };
        (mk(), mk())
    }

    async fn get(c: &TieredCache, v: &'static str) -> (String, Source) {
        let (b, s) = c
            .get_or_load("k", || async move {
                Ok::<_, String>(Bytes::from_static(v.as_bytes()))
            })
            .await
            .unwrap();
        (String::from_utf8(b.to_vec()).unwrap(), s)
    }

    #[tokio::test]
    async fn instances_share_redis_and_invalidate_each_other() {
        let (a, b) = redis_pair();
        a.spawn_listener();
        b.spawn_listener();
        tokio::time::sleep(Duration::from_millis(200)).await;

        assert_eq!(get(&a, "v1").await, ("v1".into(), Source::Loaded));
        assert_eq!(get(&b, "unused").await, ("v1".into(), Source::Shared));
        assert_eq!(get(&b, "unused").await, ("v1".into(), Source::Local));

        a.invalidate().await.unwrap();
        let start = std::time::Instant::now();
        loop {
            let (v, _) = get(&b, "v2").await;
            if v == "v2" {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_millis(500),
                "B still serves {v}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(get(&a, "unused").await, ("v2".into(), Source::Shared));
        cleanup(&a).await;
    }

    async fn cleanup(c: &TieredCache) {
        let keys = ["t:gen".to_owned(), "t:e:k".to_owned()];
        c.inner.store.del_many(&keys).await.unwrap();
    }

    #[tokio::test]
    async fn a_value_loaded_across_a_write_is_never_served_from_redis() {
        let (a, b) = redis_pair();
        // A loads while B's write commits and invalidates: A's value is from before the write.
        let (v, _) = a
            .get_or_load("k", || async {
                b.invalidate().await.unwrap();
                Ok::<_, String>(Bytes::from_static(b"old"))
            })
            .await
            .unwrap();
        assert_eq!(&v[..], b"old");
        // Redis holds "old" stamped with the previous generation: a miss for everyone.
        assert_eq!(get(&b, "new").await, ("new".into(), Source::Loaded));
        cleanup(&a).await;
    }
}
