//! Till's use cases: the business operations (placing and changing orders, stock, accounts,
//! the catalog cache's invalidation) and the application they run in, [`App`], with its
//! configuration. Depends on `till-domain` (rules), `till-db` (SQL) and `till-cache` (Redis),
//! never on HTTP: the web server (`till-http`), the worker and the command line all call in
//! here, and each use case answers with its own error enum for the caller to present.

pub mod accounts;
pub mod catalog;
pub mod categories;
pub mod config;
pub mod counts;
pub mod customers;
pub mod idempotency;
pub mod locations;
pub mod media;
pub mod orders;
pub mod password;
pub mod payments;
pub mod product_csv;
pub mod products;
pub mod receipts;
pub mod registers;
pub mod shifts;
pub mod stock;
pub mod transfers;
pub mod webhooks;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use secrecy::ExposeSecret;
use till_cache::{Store, StoreError, TieredCache, TieredOptions};
use till_db::{Db, DbError, PoolSettings};
use till_domain::Role;
use tokio::sync::Notify;
use uuid::Uuid;

pub use config::Config;

/// The application: settings and connections shared by every use case. Cheap to clone.
#[derive(Clone)]
pub struct App(Arc<Inner>);

pub struct Inner {
    /// Settings read once at start-up.
    pub config: Config,
    /// PostgreSQL pools (primary, optional read replica).
    pub db: Db,
    /// Shared store: Redis, or in-process in single-instance mode.
    pub store: Store,
    /// Catalog reads (products, categories), cached in process and in Redis; every catalog or
    /// stock write invalidates it after commit (see [`catalog`]).
    pub catalog: TieredCache,
    /// Stock moved since the catalog cache was last invalidated (see [`catalog`]).
    pub catalog_stale: AtomicBool,
    /// Woken after a commit that wrote outbox rows, so this instance's event publisher
    /// publishes them now instead of at its next poll.
    pub outbox_written: Notify,
    /// Decoding slots for product images (`IMAGE_WORKERS`): see [`media`].
    pub image_slots: tokio::sync::Semaphore,
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Why [`App::new`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database pool: {0}")]
    Db(#[from] DbError),
    #[error("shared store: {0}")]
    Store(#[from] StoreError),
}

impl App {
    /// Builds the application from config. Pools connect lazily; nothing here needs the network.
    pub fn new(config: Config) -> Result<App, StartError> {
        let d = &config.database;
        let db = Db::connect_lazy(
            d.url.expose_secret(),
            d.read_url.as_ref().map(|s| s.expose_secret()),
            &PoolSettings {
                max_connections: d.max_connections,
                acquire_timeout: d.acquire_timeout,
                statement_timeout: d.statement_timeout,
                idle_timeout: d.idle_timeout,
                max_lifetime: d.max_lifetime,
            },
        )?;
        let store = match &config.redis.url {
            Some(url) => Store::redis(url.expose_secret(), &config.redis.namespace)?,
            None => Store::local(),
        };
        // The catalog may live in its own Redis, one that may evict under memory pressure, so a
        // full cache never refuses a session write (sessions stay on REDIS_URL, `noeviction`).
        let cache_store = match (&config.redis.url, &config.redis.cache_url) {
            (Some(_), Some(url)) => Store::redis(url.expose_secret(), &config.redis.namespace)?,
            _ => store.clone(),
        };
        let catalog = TieredCache::new(cache_store, "catalog", TieredOptions::default());
        let image_slots = tokio::sync::Semaphore::new(config.media.image_workers);
        Ok(App(Arc::new(Inner {
            config,
            db,
            store,
            catalog,
            catalog_stale: AtomicBool::new(false),
            outbox_written: Notify::new(),
            image_slots,
        })))
    }

    /// True when every embedded migration has been applied.
    pub async fn schema_is_current(&self) -> bool {
        matches!(self.db.pending_migrations().await, Ok(0))
    }

    /// Call after committing a transaction that wrote outbox rows (and maybe moved stock):
    /// wakes the publisher, and lets cached catalog pages pick up new stock levels soon.
    pub fn after_commit(&self, stock_moved: bool) {
        self.outbox_written.notify_one();
        if stock_moved {
            self.invalidate_catalog_soon();
        }
    }
}

/// What a conditional write (`If-Match`) requires of the record's current version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Precondition {
    /// No condition (no `If-Match`, or `*`).
    #[default]
    Any,
    /// The current version must be one of these (none: nothing can match).
    OneOf(Vec<i64>),
}

impl Precondition {
    pub fn matches(&self, version: i64) -> bool {
        match self {
            Precondition::Any => true,
            Precondition::OneOf(versions) => versions.contains(&version),
        }
    }
}

/// The signed-in user a use case acts for.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user_id: Uuid,
    pub role: Role,
    /// The customer record of a customer login.
    pub customer_id: Option<Uuid>,
}

impl Caller {
    /// Staff see every order; a customer only orders of their own customer record.
    pub fn can_see(&self, customer_id: Option<Uuid>) -> bool {
        self.role.is_staff_side() || (self.customer_id.is_some() && self.customer_id == customer_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preconditions_match_any_listed_version() {
        assert!(Precondition::Any.matches(7));
        assert!(Precondition::OneOf(vec![1, 7]).matches(7));
        assert!(!Precondition::OneOf(vec![1, 2]).matches(7));
        assert!(!Precondition::OneOf(Vec::new()).matches(7));
    }

    #[test]
    fn customers_see_only_their_own_orders_and_staff_see_all() {
        let own = Uuid::now_v7();
        let customer = Caller {
            user_id: Uuid::now_v7(),
            role: Role::Customer,
            customer_id: Some(own),
        };
        assert!(customer.can_see(Some(own)));
        assert!(!customer.can_see(Some(Uuid::now_v7())));
        assert!(!customer.can_see(None));
        let orphan = Caller {
            customer_id: None,
            ..customer
        };
        assert!(!orphan.can_see(None), "no customer record sees nothing");
        let staff = Caller {
            role: Role::Staff,
            customer_id: None,
            ..customer
        };
        assert!(staff.can_see(None) && staff.can_see(Some(own)));
    }
}
