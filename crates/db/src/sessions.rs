//! Sign-in sessions: the durable copy (the cache in Redis is the HTTP layer's business).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::DbError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub handle: String,
    pub user_id: Uuid,
    pub role: String,
    pub customer_id: Option<Uuid>,
    pub csrf_token: String,
    pub epoch: i64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(pool: &PgPool, s: &SessionRow) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO sessions (handle, user_id, role, customer_id, csrf_token, epoch, created_at,
                               expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&s.handle)
    .bind(s.user_id)
    .bind(&s.role)
    .bind(s.customer_id)
    .bind(&s.csrf_token)
    .bind(s.epoch)
    .bind(s.created_at)
    .bind(s.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// The session `handle` names, unless it has expired.
pub async fn get(pool: &PgPool, handle: &str) -> Result<Option<SessionRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT handle, user_id, role, customer_id, csrf_token, epoch, created_at, expires_at
         FROM sessions WHERE handle = $1 AND expires_at > now()",
    )
    .bind(handle)
    .fetch_optional(pool)
    .await?)
}

pub async fn delete(pool: &PgPool, handle: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM sessions WHERE handle = $1")
        .bind(handle)
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends every session of `user_id`; returns their handles (to drop from the cache).
pub async fn delete_for_user(pool: &PgPool, user_id: Uuid) -> Result<Vec<String>, DbError> {
    Ok(
        sqlx::query_scalar("DELETE FROM sessions WHERE user_id = $1 RETURNING handle")
            .bind(user_id)
            .fetch_all(pool)
            .await?,
    )
}

/// Deletes sessions that expired; returns how many.
pub async fn purge_expired(pool: &PgPool) -> Result<u64, DbError> {
    Ok(
        sqlx::query("DELETE FROM sessions WHERE expires_at <= now()")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}
