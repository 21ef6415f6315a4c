//! Product categories: a short, flat list that the catalog groups products by.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::DbError;

#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
#[schema(as = Category)]
pub struct CategoryRow {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
}

const COLS: &str = "id, name, slug, created_at";

/// Every category, by name. The list is short (tens), so it is not paginated.
pub async fn list(pool: &PgPool) -> Result<Vec<CategoryRow>, DbError> {
    let sql = format!("SELECT {COLS} FROM categories ORDER BY name, id");
    Ok(sqlx::query_as(AssertSqlSafe(sql)).fetch_all(pool).await?)
}

/// Inserts a category; a taken slug is `DbError::Unique("categories_slug_key")`.
pub async fn insert(
    conn: &mut PgConnection,
    name: &str,
    slug: &str,
) -> Result<CategoryRow, DbError> {
    let sql =
        format!("INSERT INTO categories (id, name, slug) VALUES ($1, $2, $3) RETURNING {COLS}");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(Uuid::now_v7())
        .bind(name)
        .bind(slug)
        .fetch_one(conn)
        .await?)
}

/// Inserts the category unless its slug exists; returns the row either way (for seeding).
pub async fn ensure(
    conn: &mut PgConnection,
    name: &str,
    slug: &str,
) -> Result<CategoryRow, DbError> {
    let sql = format!(
        "INSERT INTO categories (id, name, slug) VALUES ($1, $2, $3)
         ON CONFLICT (slug) DO UPDATE SET slug = EXCLUDED.slug RETURNING {COLS}"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(Uuid::now_v7())
        .bind(name)
        .bind(slug)
        .fetch_one(conn)
        .await?)
}

pub async fn exists(conn: &mut PgConnection, id: Uuid) -> Result<bool, DbError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM categories WHERE id = $1)")
            .bind(id)
            .fetch_one(conn)
            .await?,
    )
}
