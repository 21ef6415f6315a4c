//! Registers: the tills' cash drawers that shifts are opened on.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::cursor::{self, Page};
use crate::DbError;

/// A register as the API shows it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Register {
    pub id: Uuid,
    pub name: String,
    /// Where the register sells from; null: the default location.
    pub location_id: Option<Uuid>,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLS: &str = "id, name, location_id, active, version, created_at, updated_at";

pub async fn insert(
    conn: &mut PgConnection,
    name: &str,
    location_id: Option<Uuid>,
) -> Result<Register, DbError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "INSERT INTO registers (id, name, location_id) VALUES ($1, $2, $3) RETURNING {COLS}"
    )))
    .bind(Uuid::now_v7())
    .bind(name)
    .bind(location_id)
    .fetch_one(conn)
    .await?)
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Register, DbError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLS} FROM registers WHERE id = $1"
    )))
    .bind(id)
    .fetch_one(conn)
    .await?)
}

/// Locks the register row for a change.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Register, DbError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLS} FROM registers WHERE id = $1 FOR NO KEY UPDATE"
    )))
    .bind(id)
    .fetch_one(conn)
    .await?)
}

/// Applies a change to a locked register and bumps its version.
pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    name: Option<&str>,
    active: Option<bool>,
    location_id: Option<Uuid>,
) -> Result<Register, DbError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE registers SET name = COALESCE($2, name), active = COALESCE($3, active),
             location_id = COALESCE($4, location_id), version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING {COLS}"
    )))
    .bind(id)
    .bind(name)
    .bind(active)
    .bind(location_id)
    .fetch_one(conn)
    .await?)
}

pub type ListCursor = (String, Uuid);

pub fn decode_cursor(c: &str) -> Option<ListCursor> {
    cursor::decode(c)
}

/// By name (case-insensitively, as the unique index), then id.
pub async fn list(
    pool: &PgPool,
    after: Option<ListCursor>,
    limit: usize,
) -> Result<Page<Register>, DbError> {
    let (name, id) = after.unzip();
    let rows: Vec<Register> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLS} FROM registers
         WHERE $1::text IS NULL OR (lower(name), id) > (lower($1), $2)
         ORDER BY lower(name), id LIMIT $3"
    )))
    .bind(name)
    .bind(id)
    .bind(limit as i64 + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::from_rows(rows, limit, |r| (r.name.clone(), r.id)))
}
