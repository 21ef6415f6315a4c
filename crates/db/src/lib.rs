//! Till's PostgreSQL layer: the pools, migrations, and one repository module per area.
//! SQL lives here and nowhere else; functions take a pool or `&mut PgConnection` so callers
//! decide the transaction boundary.

pub mod audit;
pub mod categories;
pub mod checkout;
pub mod cursor;
pub mod customers;
mod error;
pub mod idempotency;
pub mod inventory;
pub mod jobs;
pub mod orders;
pub mod outbox;
pub mod payment_intents;
pub mod products;
pub mod reports;
pub mod stock;
pub mod users;

use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};

pub use error::{constraint, Constraint, ConstraintKind, DbError, Violation, CONSTRAINTS};
pub use sqlx::{PgConnection, Postgres, Transaction};

/// Embedded migrations from the repository's `migrations/` folder.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

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
        max_connections: u32,
    ) -> Result<Db, DbError> {
        let opts = || {
            PgPoolOptions::new()
                .max_connections(max_connections)
                .min_connections(0)
                .acquire_timeout(Duration::from_secs(5))
                // No ping before each checkout: it costs a round trip per transaction, and a
                // connection that died meanwhile fails its first query (503, retried) instead.
                .test_before_acquire(false)
                .idle_timeout(Some(Duration::from_secs(300)))
        };
        let write = opts().connect_lazy(url)?;
        let read = match read_url {
            Some(r) => opts().connect_lazy(r)?,
            None => write.clone(),
        };
        Ok(Db { write, read })
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
        .map_err(|_| DbError::Unavailable)??;
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
