//! Customers: the people orders belong to, found by normalized phone.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
#[schema(as = Customer)]
pub struct CustomerRow {
    pub id: Uuid,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub(crate) const COLS: &str = "id, name, phone, email, created_at";

pub async fn insert(
    conn: &mut PgConnection,
    name: &str,
    phone: Option<&str>,
    email: Option<&str>,
) -> Result<CustomerRow, DbError> {
    let sql = format!(
        "INSERT INTO customers (id, name, phone, email) VALUES ($1, $2, $3, $4) RETURNING {COLS}"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(Uuid::now_v7())
        .bind(name)
        .bind(phone)
        .bind(email)
        .fetch_one(conn)
        .await?)
}

/// Exact match on the E.164 form; served by the unique index on `phone`.
pub async fn find_by_phone(
    conn: &mut PgConnection,
    phone: &str,
) -> Result<Option<CustomerRow>, DbError> {
    let sql = format!("SELECT {COLS} FROM customers WHERE phone = $1");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(phone)
        .fetch_optional(conn)
        .await?)
}

pub async fn get(pool: &sqlx::PgPool, id: Uuid) -> Result<Option<CustomerRow>, DbError> {
    let sql = format!("SELECT {COLS} FROM customers WHERE id = $1");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?)
}
