//! The PostgreSQL job queue (worked by `till worker`).

use sqlx::PgPool;

use crate::DbError;

/// Jobs queued or running: the backlog shown on `/health/detailed`.
pub async fn backlog(pool: &PgPool) -> Result<i64, DbError> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')")
            .fetch_one(pool)
            .await?,
    )
}
