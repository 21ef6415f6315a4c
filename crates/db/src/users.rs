//! Users (staff accounts and customer logins).

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::cursor::{self, Page};
use crate::DbError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub name: String,
    pub phone: Option<String>,
    pub role: String,
    pub active: bool,
    pub customer_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// Revocation epoch: bumped by deactivation and role changes; a session issued under an
    /// older epoch is dead.
    pub auth_epoch: i64,
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub name: &'a str,
    pub phone: Option<&'a str>,
    pub role: &'a str,
    pub customer_id: Option<Uuid>,
}

const COLS: &str =
    "id, email, password_hash, name, phone, role, active, customer_id, created_at, auth_epoch";

pub async fn insert(conn: &mut PgConnection, u: NewUser<'_>) -> Result<UserRow, DbError> {
    let sql = format!(
        "INSERT INTO users (id, email, password_hash, name, phone, role, customer_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLS}"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(Uuid::now_v7())
        .bind(u.email)
        .bind(u.password_hash)
        .bind(u.name)
        .bind(u.phone)
        .bind(u.role)
        .bind(u.customer_id)
        .fetch_one(conn)
        .await?)
}

pub async fn find_by_email(pool: &PgPool, email: &str) -> Result<Option<UserRow>, DbError> {
    let sql = format!("SELECT {COLS} FROM users WHERE email = $1");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(email)
        .fetch_optional(pool)
        .await?)
}

/// Whether an account with this (normalized) email exists: the cheap check before a password
/// is hashed.
pub async fn email_taken(pool: &PgPool, email: &str) -> Result<bool, DbError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)")
            .bind(email)
            .fetch_one(pool)
            .await?,
    )
}

/// The user's current revocation epoch, or `None` when the user does not exist.
pub async fn auth_epoch(pool: &PgPool, id: Uuid) -> Result<Option<i64>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT auth_epoch FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<UserRow, DbError> {
    let sql = format!("SELECT {COLS} FROM users WHERE id = $1");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(pool)
        .await?)
}

pub async fn any_admin(pool: &PgPool) -> Result<bool, DbError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin')")
            .fetch_one(pool)
            .await?,
    )
}

/// Users in creation order, keyset-paginated on (created_at, id).
pub async fn list(
    pool: &PgPool,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: usize,
) -> Result<Page<UserRow>, DbError> {
    let sql = format!(
        "SELECT {COLS} FROM users
         WHERE ($1::timestamptz IS NULL OR (created_at, id) > ($1, $2))
         ORDER BY created_at, id LIMIT $3"
    );
    let rows: Vec<UserRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit as i64 + 1)
        .fetch_all(pool)
        .await?;
    Ok(Page::from_rows(rows, limit, |u| (u.created_at, u.id)))
}

pub fn decode_cursor(c: &str) -> Option<(DateTime<Utc>, Uuid)> {
    cursor::decode(c)
}

#[derive(Default)]
pub struct UserPatch<'a> {
    pub role: Option<&'a str>,
    pub active: Option<bool>,
    pub name: Option<&'a str>,
}

/// Applies a patch. A role change or a deactivation bumps `auth_epoch` in the same statement
/// (the right-hand sides read the row as it was), which revokes every credential issued before.
pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    p: UserPatch<'_>,
) -> Result<UserRow, DbError> {
    let sql = format!(
        "UPDATE users SET role = COALESCE($2, role), active = COALESCE($3, active),
                name = COALESCE($4, name), updated_at = now(),
                auth_epoch = auth_epoch
                    + CASE WHEN COALESCE($2, role) <> role OR NOT COALESCE($3, active)
                           THEN 1 ELSE 0 END
         WHERE id = $1 RETURNING {COLS}"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .bind(p.role)
        .bind(p.active)
        .bind(p.name)
        .fetch_one(conn)
        .await?)
}

/// Is this customer record already the login of some user?
pub async fn customer_is_linked(
    conn: &mut PgConnection,
    customer_id: Uuid,
) -> Result<bool, DbError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE customer_id = $1)")
            .bind(customer_id)
            .fetch_one(conn)
            .await?,
    )
}

pub async fn get_for_update(conn: &mut PgConnection, id: Uuid) -> Result<UserRow, DbError> {
    let sql = format!("SELECT {COLS} FROM users WHERE id = $1 FOR UPDATE");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(conn)
        .await?)
}

/// Counts active admins, locking them so two concurrent demotions cannot both pass the check.
pub async fn active_admins(conn: &mut PgConnection) -> Result<i64, DbError> {
    let ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM users WHERE role = 'admin' AND active FOR UPDATE")
            .fetch_all(conn)
            .await?;
    Ok(ids.len() as i64)
}
