//! Product images: rows naming files in MEDIA_DIR by `file_key`. Several rows may share one
//! key (the same picture uploaded twice); the files go only when the last row naming it does.
//! Writers serialise on the key with a transaction-scoped advisory lock ([`lock_key`]), so an
//! upload and a delete of the same picture on any two instances never interleave.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

/// Where the files are served from (`till serve`'s `/media/`, and nginx's in compose).
pub const MEDIA_URL_PREFIX: &str = "/media/";

/// The URLs of an image's variants.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ImageUrls {
    /// WebP, at most 256 px on the long side.
    pub thumb: String,
    /// WebP, at most 800 px on the long side.
    pub medium: String,
    /// WebP, the uploaded picture re-encoded (metadata stripped).
    pub original: String,
}

/// The file names of one image's variants, in MEDIA_DIR.
pub fn file_names(file_key: &str) -> [String; 3] {
    [
        format!("{file_key}-thumb.webp"),
        format!("{file_key}-medium.webp"),
        format!("{file_key}.webp"),
    ]
}

impl ImageUrls {
    pub fn for_key(file_key: &str) -> Self {
        let [thumb, medium, original] =
            file_names(file_key).map(|f| format!("{MEDIA_URL_PREFIX}{f}"));
        ImageUrls {
            thumb,
            medium,
            original,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImageRow {
    pub id: Uuid,
    pub product_id: Uuid,
    pub position: i32,
    pub file_key: String,
    pub width: i32,
    pub height: i32,
    pub created_at: DateTime<Utc>,
}

const COLS: &str = "id, product_id, position, file_key, width, height, created_at";

/// Serialises every writer of one file key, until the caller's transaction ends.
pub async fn lock_key(conn: &mut PgConnection, file_key: &str) -> Result<(), DbError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('product_image:' || $1, 0))")
        .bind(file_key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks the product row so concurrent uploads to one product number their positions in turn;
/// `NotFound` when there is no such product.
pub async fn lock_product(conn: &mut PgConnection, product_id: Uuid) -> Result<(), DbError> {
    sqlx::query_scalar::<_, Uuid>("SELECT id FROM products WHERE id = $1 FOR NO KEY UPDATE")
        .bind(product_id)
        .fetch_one(conn)
        .await?;
    Ok(())
}

/// Appends an image after the product's last one.
pub async fn insert(
    conn: &mut PgConnection,
    product_id: Uuid,
    file_key: &str,
    width: u32,
    height: u32,
    created_by: Option<Uuid>,
) -> Result<ImageRow, DbError> {
    let sql = format!(
        "INSERT INTO product_images (id, product_id, position, file_key, width, height, created_by)
         VALUES ($1, $2, (SELECT COALESCE(max(position) + 1, 0) FROM product_images WHERE product_id = $2),
                 $3, $4, $5, $6)
         RETURNING {COLS}"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(Uuid::now_v7())
        .bind(product_id)
        .bind(file_key)
        .bind(width as i32)
        .bind(height as i32)
        .bind(created_by)
        .fetch_one(conn)
        .await?)
}

/// One image of one product, or `NotFound`.
pub async fn get(
    conn: &mut PgConnection,
    product_id: Uuid,
    image_id: Uuid,
) -> Result<ImageRow, DbError> {
    let sql = format!("SELECT {COLS} FROM product_images WHERE id = $1 AND product_id = $2");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(image_id)
        .bind(product_id)
        .fetch_one(conn)
        .await?)
}

/// The product's images in order.
pub async fn list(conn: &mut PgConnection, product_id: Uuid) -> Result<Vec<ImageRow>, DbError> {
    let sql =
        format!("SELECT {COLS} FROM product_images WHERE product_id = $1 ORDER BY position, id");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(product_id)
        .fetch_all(conn)
        .await?)
}

/// Removes the row; true when no other image names the same files any more.
pub async fn delete(conn: &mut PgConnection, image: &ImageRow) -> Result<bool, DbError> {
    sqlx::query("DELETE FROM product_images WHERE id = $1")
        .bind(image.id)
        .execute(&mut *conn)
        .await?;
    let used: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM product_images WHERE file_key = $1)")
            .bind(&image.file_key)
            .fetch_one(conn)
            .await?;
    Ok(!used)
}

/// Moves `image_id` to `position` (clamped to the list) and renumbers the product's images
/// 0..n in the new order.
pub async fn reorder(
    conn: &mut PgConnection,
    product_id: Uuid,
    image_id: Uuid,
    position: usize,
) -> Result<Vec<ImageRow>, DbError> {
    let mut ids: Vec<Uuid> = list(conn, product_id).await?.iter().map(|i| i.id).collect();
    let Some(from) = ids.iter().position(|i| *i == image_id) else {
        return Err(DbError::NotFound);
    };
    let id = ids.remove(from);
    ids.insert(position.min(ids.len()), id);
    sqlx::query(
        "UPDATE product_images i SET position = t.pos - 1
         FROM UNNEST($1::uuid[]) WITH ORDINALITY AS t(id, pos) WHERE i.id = t.id",
    )
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    list(conn, product_id).await
}

/// The product's `updated_at`/`version` move with its images, so caches and ETags see a change.
pub async fn touch_product(conn: &mut PgConnection, product_id: Uuid) -> Result<(), DbError> {
    sqlx::query("UPDATE products SET version = version + 1, updated_at = now() WHERE id = $1")
        .bind(product_id)
        .execute(conn)
        .await?;
    Ok(())
}
