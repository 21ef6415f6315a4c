//! Bulk catalog import and export. Import writes in batches of column arrays (`UNNEST`), one
//! statement per batch, inside the caller's one transaction; export streams rows straight from
//! the server so its memory use does not depend on the catalog's size.

use futures::stream::BoxStream;
use futures::StreamExt;
use sqlx::AssertSqlSafe;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::DbError;

/// A product as the import compares and writes it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ImportProduct {
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
    pub low_stock_threshold: i64,
    pub stock_on_hand: i64,
}

const COLS: &str = "id, sku, barcode, name, description, category_id, price_cents, tax_rate_bp, \
    active, track_stock, low_stock_threshold, stock_on_hand";

/// The products with these SKUs, locked for the rest of the transaction (in SKU order, so two
/// imports lock in the same order) so the stock a `count` movement corrects is the stock
/// written over.
pub async fn lock_existing(
    conn: &mut PgConnection,
    skus: &[String],
) -> Result<Vec<ImportProduct>, DbError> {
    let sql =
        format!("SELECT {COLS} FROM products WHERE sku = ANY($1) ORDER BY sku FOR NO KEY UPDATE");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(skus)
        .fetch_all(conn)
        .await?)
}

/// `(barcode, sku)` of products holding any of these barcodes.
pub async fn barcode_owners(
    conn: &mut PgConnection,
    barcodes: &[String],
) -> Result<Vec<(String, String)>, DbError> {
    Ok(
        sqlx::query_as("SELECT barcode, sku FROM products WHERE barcode = ANY($1)")
            .bind(barcodes)
            .fetch_all(conn)
            .await?,
    )
}

/// A stock correction written as a `count` movement.
#[derive(Debug, Clone)]
pub struct StockCount {
    pub product_id: Uuid,
    pub delta: i64,
    pub balance_after: i64,
}

struct Columns {
    ids: Vec<Uuid>,
    skus: Vec<String>,
    barcodes: Vec<Option<String>>,
    names: Vec<String>,
    descriptions: Vec<String>,
    categories: Vec<Option<Uuid>>,
    prices: Vec<i64>,
    taxes: Vec<i32>,
    actives: Vec<bool>,
    tracks: Vec<bool>,
    thresholds: Vec<i64>,
    stocks: Vec<i64>,
}

fn columns(rows: &[ImportProduct]) -> Columns {
    Columns {
        ids: rows.iter().map(|r| r.id).collect(),
        skus: rows.iter().map(|r| r.sku.clone()).collect(),
        barcodes: rows.iter().map(|r| r.barcode.clone()).collect(),
        names: rows.iter().map(|r| r.name.clone()).collect(),
        descriptions: rows.iter().map(|r| r.description.clone()).collect(),
        categories: rows.iter().map(|r| r.category_id).collect(),
        prices: rows.iter().map(|r| r.price_cents).collect(),
        taxes: rows.iter().map(|r| r.tax_rate_bp).collect(),
        actives: rows.iter().map(|r| r.active).collect(),
        tracks: rows.iter().map(|r| r.track_stock).collect(),
        thresholds: rows.iter().map(|r| r.low_stock_threshold).collect(),
        stocks: rows.iter().map(|r| r.stock_on_hand).collect(),
    }
}

const UNNEST: &str = "UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
    $6::uuid[], $7::bigint[], $8::int[], $9::bool[], $10::bool[], $11::bigint[], $12::bigint[]) \
    AS t(id, sku, barcode, name, description, category_id, price_cents, tax_rate_bp, active, \
    track_stock, low_stock_threshold, stock_on_hand)";

fn bind_all<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    c: Columns,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    q.bind(c.ids)
        .bind(c.skus)
        .bind(c.barcodes)
        .bind(c.names)
        .bind(c.descriptions)
        .bind(c.categories)
        .bind(c.prices)
        .bind(c.taxes)
        .bind(c.actives)
        .bind(c.tracks)
        .bind(c.thresholds)
        .bind(c.stocks)
}

/// Inserts new products (with their stock; the caller records the `count` movements).
pub async fn insert_batch(conn: &mut PgConnection, rows: &[ImportProduct]) -> Result<(), DbError> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO products (id, sku, barcode, name, description, category_id, price_cents,
                               tax_rate_bp, active, track_stock, low_stock_threshold, stock_on_hand)
         SELECT * FROM {UNNEST}"
    );
    bind_all(sqlx::query(AssertSqlSafe(sql)), columns(rows))
        .execute(conn)
        .await?;
    Ok(())
}

/// Overwrites existing products (matched by id, locked by [`lock_existing`]) and bumps their
/// versions.
pub async fn update_batch(conn: &mut PgConnection, rows: &[ImportProduct]) -> Result<(), DbError> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE products p SET sku = t.sku, barcode = t.barcode, name = t.name,
            description = t.description, category_id = t.category_id,
            price_cents = t.price_cents, tax_rate_bp = t.tax_rate_bp, active = t.active,
            track_stock = t.track_stock, low_stock_threshold = t.low_stock_threshold,
            stock_on_hand = t.stock_on_hand, version = p.version + 1, updated_at = now()
         FROM {UNNEST} WHERE p.id = t.id"
    );
    bind_all(sqlx::query(AssertSqlSafe(sql)), columns(rows))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records stock corrections as `count` movements by `user_id`.
pub async fn record_counts(
    conn: &mut PgConnection,
    counts: &[StockCount],
    user_id: Option<Uuid>,
) -> Result<(), DbError> {
    if counts.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = counts.iter().map(|_| Uuid::now_v7()).collect();
    let products: Vec<Uuid> = counts.iter().map(|c| c.product_id).collect();
    let deltas: Vec<i64> = counts.iter().map(|c| c.delta).collect();
    let balances: Vec<i64> = counts.iter().map(|c| c.balance_after).collect();
    sqlx::query(
        "INSERT INTO inventory_movements (id, product_id, delta, reason, balance_after, note, user_id)
         SELECT t.id, t.product_id, t.delta, 'count', t.balance_after, 'CSV import', $5
         FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[])
              AS t(id, product_id, delta, balance_after)",
    )
    .bind(ids)
    .bind(products)
    .bind(deltas)
    .bind(balances)
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A `product.updated` event (webhooks) for each of these products, as `GET /products/{id}`
/// shows it: the same payload `till_app::products::record_event` writes, built in one statement.
pub async fn enqueue_updated(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), DbError> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO outbox (topic, payload)
         SELECT 'product.updated', jsonb_build_object('type', 'product.updated', 'at', now(),
                'audience', 'none', 'data', to_jsonb(x))
         FROM (SELECT {} FROM products WHERE id = ANY($1) ORDER BY sku) x",
        crate::products::COLS
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// A product as exported (its category by name).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportRow {
    pub sku: String,
    pub barcode: Option<String>,
    pub name: String,
    pub description: String,
    pub category: Option<String>,
    pub price_cents: i64,
    pub tax_rate_bp: i32,
    pub active: bool,
    pub track_stock: bool,
    pub low_stock_threshold: i64,
    pub stock_on_hand: i64,
}

/// A read-only transaction for [`export`], whose statement may run longer than the pool's
/// `statement_timeout` (a big catalog to a slow client).
pub async fn begin_export(pool: &PgPool) -> Result<Transaction<'static, Postgres>, DbError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SET LOCAL statement_timeout = '600s'")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Every product, active or not, by SKU, as a stream: rows arrive from the server as the
/// caller consumes them, never all at once.
pub fn export(conn: &mut PgConnection) -> BoxStream<'_, Result<ExportRow, DbError>> {
    sqlx::query_as::<_, ExportRow>(
        "SELECT p.sku, p.barcode, p.name, p.description, c.name AS category, p.price_cents,
                p.tax_rate_bp, p.active, p.track_stock, p.low_stock_threshold, p.stock_on_hand
         FROM products p LEFT JOIN categories c ON c.id = p.category_id
         ORDER BY p.sku",
    )
    .fetch(conn)
    .map(|r| r.map_err(DbError::from))
    .boxed()
}
