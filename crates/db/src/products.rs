//! Products: the catalog. Listing is keyset-paginated on (name, id) so a page walk never
//! repeats or skips a row while others are inserted; `stock_on_hand` is written only by
//! [`crate::inventory::apply_movement`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::AssertSqlSafe;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::cursor::{self, Page};
use crate::product_images::ImageUrls;
use crate::DbError;

#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
#[schema(as = Product)]
pub struct ProductRow {
    pub id: Uuid,
    pub sku: String,
    pub barcode: Option<String>,
    pub name: String,
    pub description: String,
    pub category_id: Option<Uuid>,
    pub price_cents: i64,
    pub tax_rate_bp: i32,
    pub active: bool,
    pub track_stock: bool,
    pub stock_on_hand: i64,
    pub low_stock_threshold: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The product's pictures in order.
    #[schema(value_type = Vec<ProductImageRef>)]
    pub images: Json<Vec<ProductImageRef>>,
    /// The first image's thumbnail URL, or null.
    pub thumb_url: Option<String>,
}

/// A product's image as listed with the product.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ProductImageRef {
    pub id: Uuid,
    pub position: i32,
    pub urls: ImageUrls,
}

/// Every column of [`ProductRow`], for statements on `products` (unaliased): the images come
/// from correlated subqueries on `product_images (product_id, position, id)`.
pub(crate) const COLS: &str = concat!(
    "id, sku, barcode, name, description, category_id, price_cents, tax_rate_bp, active, ",
    "track_stock, stock_on_hand, low_stock_threshold, version, created_at, updated_at, ",
    "(SELECT COALESCE(json_agg(json_build_object('id', i.id, 'position', i.position, 'urls', ",
    "json_build_object('thumb', '/media/' || i.file_key || '-thumb.webp', ",
    "'medium', '/media/' || i.file_key || '-medium.webp', ",
    "'original', '/media/' || i.file_key || '.webp')) ORDER BY i.position, i.id), '[]') ",
    "FROM product_images i WHERE i.product_id = products.id) AS images, ",
    "(SELECT '/media/' || i.file_key || '-thumb.webp' FROM product_images i ",
    "WHERE i.product_id = products.id ORDER BY i.position, i.id LIMIT 1) AS thumb_url"
);

/// A product as created through the API; stock starts at 0 and arrives through movements.
pub struct NewProduct<'a> {
    pub sku: &'a str,
    pub barcode: Option<&'a str>,
    pub name: &'a str,
    pub description: &'a str,
    pub category_id: Option<Uuid>,
    pub price_cents: i64,
    pub tax_rate_bp: i32,
    pub track_stock: bool,
    pub low_stock_threshold: i64,
}

/// Taken SKU or barcode: `DbError::Unique("products_sku_key" | "products_barcode_key")`.
pub async fn insert(conn: &mut PgConnection, p: &NewProduct<'_>) -> Result<ProductRow, DbError> {
    let sql = format!(
        "INSERT INTO products (id, sku, barcode, name, description, category_id, price_cents,
                               tax_rate_bp, track_stock, low_stock_threshold)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLS}"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(Uuid::now_v7())
        .bind(p.sku)
        .bind(p.barcode)
        .bind(p.name)
        .bind(p.description)
        .bind(p.category_id)
        .bind(p.price_cents)
        .bind(p.tax_rate_bp)
        .bind(p.track_stock)
        .bind(p.low_stock_threshold)
        .fetch_one(conn)
        .await?)
}

/// One product; `None` when missing, or inactive and `include_inactive` is false.
pub async fn get(
    conn: &mut PgConnection,
    id: Uuid,
    include_inactive: bool,
) -> Result<Option<ProductRow>, DbError> {
    let sql = format!("SELECT {COLS} FROM products WHERE id = $1 AND (active OR $2)");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .bind(include_inactive)
        .fetch_optional(conn)
        .await?)
}

/// Locks the row for a read-modify-write (PATCH, DELETE) in the caller's transaction.
pub async fn get_for_update(conn: &mut PgConnection, id: Uuid) -> Result<ProductRow, DbError> {
    let sql = format!("SELECT {COLS} FROM products WHERE id = $1 FOR UPDATE");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(conn)
        .await?)
}

/// The product whose barcode or SKU is exactly `code` (a till scan). Both columns have unique
/// indexes; if the code is one product's barcode and another's SKU, the barcode wins, since
/// that is what scanners send.
pub async fn lookup(
    pool: &PgPool,
    code: &str,
    include_inactive: bool,
) -> Result<Option<ProductRow>, DbError> {
    let sql = format!(
        "SELECT {COLS} FROM products WHERE (barcode = $1 OR sku = $1) AND (active OR $2)
         ORDER BY (barcode = $1) IS TRUE DESC LIMIT 1"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(code)
        .bind(include_inactive)
        .fetch_optional(pool)
        .await?)
}

/// Filters of the product list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter<'a> {
    pub category_id: Option<Uuid>,
    /// Name contains (case-insensitive), or SKU / barcode equals. Already trimmed, non-empty.
    pub q: Option<&'a str>,
    pub include_inactive: bool,
}

/// Keyset cursor of the product list: the last row's (name, id).
pub type ListCursor = (String, Uuid);

pub fn decode_cursor(c: &str) -> Option<ListCursor> {
    cursor::decode(c)
}

/// Escapes LIKE's wildcards so user text is matched literally (`\` is LIKE's default escape).
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A page of products ordered by (name, id).
///
/// How `q` stays fast on 100,000 rows. From 3 characters on, `name ILIKE '%q%'` can use the
/// trigram GIN index (`products_name_trgm_idx`); a 1–2 character q has no trigram and uses
/// `products_name_grams_idx` (every 1- and 2-character substring of the lower-cased name)
/// instead. Either is OR-ed with the unique SKU and barcode indexes. The planner then picks,
/// from its statistics, between a bitmap of the matches plus a top-N sort (a rare q) and a
/// walk of the (name, id) index that stops after `limit` matches (a common q). The statement
/// is not kept prepared, so each search is planned for its own q: a generic plan (made once,
/// for any q) would pick the same path for "zq" and for "co", which is slow for one of them.
pub async fn list(
    pool: &PgPool,
    filter: &ListFilter<'_>,
    after: Option<ListCursor>,
    limit: usize,
) -> Result<Page<ProductRow>, DbError> {
    let mut qb: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT {COLS} FROM products WHERE TRUE"));
    if !filter.include_inactive {
        qb.push(" AND active");
    }
    if let Some(c) = filter.category_id {
        qb.push(" AND category_id = ").push_bind(c);
    }
    if let Some(q) = filter.q {
        if q.chars().count() >= 3 {
            qb.push(" AND (name ILIKE ")
                .push_bind(format!("%{}%", like_escape(q)));
        } else {
            // strpos first: when the planner walks the name index instead, it is the cheap
            // test, and the array test only runs on rows that already match.
            let lq = q.to_lowercase();
            qb.push(" AND ((strpos(lower(name), ")
                .push_bind(lq.clone())
                .push(") > 0 AND till_short_grams(name) @> ARRAY[")
                .push_bind(lq)
                .push("]::text[])");
        }
        qb.push(" OR sku = ")
            .push_bind(q.to_owned())
            .push(" OR barcode = ")
            .push_bind(q.to_owned())
            .push(")");
    }
    if let Some((name, id)) = after {
        qb.push(" AND (name, id) > (")
            .push_bind(name)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    qb.push(" ORDER BY name, id LIMIT ")
        .push_bind(limit as i64 + 1);
    let rows: Vec<ProductRow> = qb
        .build_query_as()
        .persistent(filter.q.is_none())
        .fetch_all(pool)
        .await?;
    Ok(Page::from_rows(rows, limit, |p| (p.name.clone(), p.id)))
}

/// Tracked, active products at or below their reorder threshold, by (name, id): a filtered
/// walk of the active (name, id) index. (There is deliberately no index on stock: it would
/// make every stock movement a non-HOT update; see migration 20261121400000.)
pub async fn low_stock(
    pool: &PgPool,
    after: Option<ListCursor>,
    limit: usize,
) -> Result<Page<ProductRow>, DbError> {
    let sql = format!(
        "SELECT {COLS} FROM products
         WHERE track_stock AND stock_on_hand <= low_stock_threshold AND active
           AND ($1::text IS NULL OR (name, id) > ($1, $2))
         ORDER BY name, id LIMIT $3"
    );
    let rows: Vec<ProductRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(after.as_ref().map(|a| a.0.as_str()))
        .bind(after.as_ref().map(|a| a.1))
        .bind(limit as i64 + 1)
        .fetch_all(pool)
        .await?;
    Ok(Page::from_rows(rows, limit, |p| (p.name.clone(), p.id)))
}

/// A partial update: `None` leaves a field alone; for the nullable columns `Some(None)` clears.
#[derive(Debug, Default)]
pub struct ProductPatch<'a> {
    pub sku: Option<&'a str>,
    pub barcode: Option<Option<&'a str>>,
    pub name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub category_id: Option<Option<Uuid>>,
    pub price_cents: Option<i64>,
    pub tax_rate_bp: Option<i32>,
    pub active: Option<bool>,
    pub track_stock: Option<bool>,
    pub low_stock_threshold: Option<i64>,
}

/// Applies `p` and bumps `version`. Call after [`get_for_update`] has checked the version.
pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    p: &ProductPatch<'_>,
) -> Result<ProductRow, DbError> {
    let sql = format!(
        "UPDATE products SET
            sku = COALESCE($2, sku),
            barcode = CASE WHEN $3 THEN $4 ELSE barcode END,
            name = COALESCE($5, name),
            description = COALESCE($6, description),
            category_id = CASE WHEN $7 THEN $8 ELSE category_id END,
            price_cents = COALESCE($9, price_cents),
            tax_rate_bp = COALESCE($10, tax_rate_bp),
            active = COALESCE($11, active),
            track_stock = COALESCE($12, track_stock),
            low_stock_threshold = COALESCE($13, low_stock_threshold),
            version = version + 1,
            updated_at = now()
         WHERE id = $1 RETURNING {COLS}"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .bind(p.sku)
        .bind(p.barcode.is_some())
        .bind(p.barcode.flatten())
        .bind(p.name)
        .bind(p.description)
        .bind(p.category_id.is_some())
        .bind(p.category_id.flatten())
        .bind(p.price_cents)
        .bind(p.tax_rate_bp)
        .bind(p.active)
        .bind(p.track_stock)
        .bind(p.low_stock_threshold)
        .fetch_one(conn)
        .await?)
}

/// A product for bulk loading (`till seed`), with its opening stock.
#[derive(Debug, Clone)]
pub struct SeedProduct {
    pub id: Uuid,
    pub sku: String,
    pub barcode: Option<String>,
    pub name: String,
    pub description: String,
    pub category_id: Option<Uuid>,
    pub price_cents: i64,
    pub tax_rate_bp: i32,
    pub track_stock: bool,
    pub low_stock_threshold: i64,
    /// Opening stock, recorded as one `received` movement.
    pub stock: i64,
}

/// Inserts many products in one statement (UNNEST of column arrays), each with its opening
/// stock and the `received` movement that explains it. A product whose SKU or barcode already
/// exists is skipped, with no movement, which makes seeding idempotent. Returns how many
/// products were inserted.
pub async fn insert_many(conn: &mut PgConnection, rows: &[SeedProduct]) -> Result<u64, DbError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let col = |f: fn(&SeedProduct) -> String| rows.iter().map(f).collect::<Vec<_>>();
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let movement_ids: Vec<Uuid> = rows.iter().map(|_| Uuid::now_v7()).collect();
    let barcodes: Vec<Option<String>> = rows.iter().map(|r| r.barcode.clone()).collect();
    let categories: Vec<Option<Uuid>> = rows.iter().map(|r| r.category_id).collect();
    let prices: Vec<i64> = rows.iter().map(|r| r.price_cents).collect();
    let taxes: Vec<i32> = rows.iter().map(|r| r.tax_rate_bp).collect();
    let tracks: Vec<bool> = rows.iter().map(|r| r.track_stock).collect();
    let thresholds: Vec<i64> = rows.iter().map(|r| r.low_stock_threshold).collect();
    let stocks: Vec<i64> = rows.iter().map(|r| r.stock).collect();
    let inserted: i64 = sqlx::query_scalar(
        "WITH src AS (
            SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                                 $6::uuid[], $7::bigint[], $8::int[], $9::bool[], $10::bigint[],
                                 $11::bigint[], $12::uuid[])
                AS t(id, sku, barcode, name, description, category_id, price_cents, tax_rate_bp,
                     track_stock, low_stock_threshold, stock, movement_id)
         ), ins AS (
            INSERT INTO products (id, sku, barcode, name, description, category_id, price_cents,
                                  tax_rate_bp, track_stock, low_stock_threshold, stock_on_hand)
            SELECT id, sku, barcode, name, description, category_id, price_cents, tax_rate_bp,
                   track_stock, low_stock_threshold, stock FROM src
            ON CONFLICT DO NOTHING
            RETURNING id, stock_on_hand
         ), mov AS (
            INSERT INTO inventory_movements (id, product_id, delta, reason, balance_after, note)
            SELECT src.movement_id, ins.id, ins.stock_on_hand, 'received', ins.stock_on_hand,
                   'opening stock'
            FROM ins JOIN src ON src.id = ins.id WHERE ins.stock_on_hand > 0
         )
         SELECT count(*) FROM ins",
    )
    .bind(&ids)
    .bind(col(|r| r.sku.clone()))
    .bind(&barcodes)
    .bind(col(|r| r.name.clone()))
    .bind(col(|r| r.description.clone()))
    .bind(&categories)
    .bind(&prices)
    .bind(&taxes)
    .bind(&tracks)
    .bind(&thresholds)
    .bind(&stocks)
    .bind(&movement_ids)
    .fetch_one(&mut *conn)
    .await?;
    Ok(inserted as u64)
}

/// Tidies up after a bulk load: merges the GIN indexes' pending entries (which every search
/// would otherwise scan) and refreshes planner statistics, so searches are fast at once.
pub async fn vacuum_analyze(pool: &PgPool) -> Result<(), DbError> {
    // VACUUM cannot run in a transaction, so it goes through the simple query protocol.
    sqlx::raw_sql("VACUUM (ANALYZE) products, inventory_movements")
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::like_escape;

    #[test]
    fn wildcards_are_escaped() {
        assert_eq!(like_escape("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(like_escape("café"), "café");
    }
}
