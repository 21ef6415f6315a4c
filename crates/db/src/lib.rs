//! Till's PostgreSQL layer: the pools, migrations, and one repository module per area.
//! SQL lives here and nowhere else; functions take a pool or `&mut PgConnection` so callers
//! decide the transaction boundary.

pub mod audit;
pub mod categories;
pub mod checkout;
pub mod counts;
pub mod cursor;
pub mod customers;
mod error;
pub mod idempotency;
pub mod inventory;
pub mod jobs;
pub mod ledger;
pub mod locations;
pub mod orders;
pub mod outbox;
pub mod payment_intents;
pub mod product_images;
pub mod product_import;
pub mod products;
pub mod registers;
pub mod reports;
pub mod sessions;
pub mod shifts;
pub mod stock;
pub mod transfers;
pub mod users;
pub mod webhooks;

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

pub use error::{constraint, Constraint, ConstraintKind, DbError, Violation, CONSTRAINTS};
pub use sqlx::{PgConnection, Postgres, Transaction};

/// Embedded migrations from the repository's `migrations/` folder.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// How the pools connect, wait and recycle.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// Longest wait for a connection: past it the caller gets [`DbError::Unavailable`] (a 503),
    /// so a request never hangs on a database that is down or saturated.
    pub acquire_timeout: Duration,
    /// Sent as the `statement_timeout` startup parameter of every connection: a runaway query
    /// is cancelled by PostgreSQL itself, whichever code path sent it.
    pub statement_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
}

/// Primary pool for writes and consistent reads, plus an optional replica for reports.
#[derive(Clone)]
pub struct Db {
    pub write: PgPool,
    pub read: PgPool,
}

impl Db {
    /// Pools connect lazily so that `till serve` starts (and reports itself unhealthy) while
    /// the database is unreachable, instead of crash-looping.
    pub fn connect_lazy(
        url: &str,
        read_url: Option<&str>,
        settings: &PoolSettings,
    ) -> Result<Db, DbError> {
        let pool = |url: &str| -> Result<PgPool, DbError> {
            let timeout = settings.statement_timeout.as_millis().to_string();
            let connect =
                PgConnectOptions::from_str(url)?.options([("statement_timeout", timeout.as_str())]);
            Ok(PgPoolOptions::new()
                .max_connections(settings.max_connections)
                .min_connections(0)
                .acquire_timeout(settings.acquire_timeout)
                // No ping before each checkout: it costs a round trip per transaction, and a
                // connection that died meanwhile fails its first query (503, retried) instead.
                .test_before_acquire(false)
                .idle_timeout(Some(settings.idle_timeout))
                .max_lifetime(Some(settings.max_lifetime))
                .connect_lazy_with(connect))
        };
        let write = pool(url)?;
        let read = match read_url {
            Some(r) => pool(r)?,
            None => write.clone(),
        };
        Ok(Db { write, read })
    }

    /// A pool of its own on the write server whose sessions commit without waiting for their
    /// WAL flush (`synchronous_commit = off`), for bookkeeping a database crash may forget
    /// without harm: the webhook deliverer's (see `webhooks`). Timeouts and lifetimes as the
    /// write pool's. Its sessions carry `name` as their `application_name`, so
    /// `pg_stat_activity` tells them apart.
    pub fn unflushed_pool(&self, max_connections: u32, name: &str) -> PgPool {
        let connect = (*self.write.connect_options())
            .clone()
            .application_name(name)
            .options([("synchronous_commit", "off")]);
        let o = self.write.options();
        PgPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(0)
            .acquire_timeout(o.get_acquire_timeout())
            .test_before_acquire(false)
            .idle_timeout(o.get_idle_timeout())
            .max_lifetime(o.get_max_lifetime())
            .connect_lazy_with(connect)
    }

    /// Applies pending migrations (the `till migrate` subcommand).
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.write).await
    }

    /// Number of embedded migrations not yet applied successfully.
    pub async fn pending_migrations(&self) -> Result<usize, DbError> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.write)
            .await?;
        let applied: Vec<i64> = if exists {
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.write)
                .await?
        } else {
            Vec::new()
        };
        Ok(MIGRATOR
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .filter(|m| !applied.contains(&m.version))
            .count())
    }

    /// Round trip `SELECT 1`, bounded so health checks answer quickly when the database hangs.
    pub async fn ping(&self) -> Result<Duration, DbError> {
        let start = Instant::now();
        tokio::time::timeout(
            Duration::from_secs(2),
            sqlx::query("SELECT 1").execute(&self.write),
        )
        .await
        .map_err(|_| DbError::Unavailable("SELECT 1 took longer than 2 s".into()))??;
        Ok(start.elapsed())
    }

    /// (size, idle, max) of the write pool.
    pub fn pool_status(&self) -> (u32, usize, u32) {
        (
            self.write.size(),
            self.write.num_idle(),
            self.write.options().get_max_connections(),
        )
    }
}
