//! The stock ledger. `products.stock_on_hand` changes only here, and only together with an
//! `inventory_movements` row written by the same statement, so the balance is always the sum of
//! the movements and every change says why, when, by whom and (for sales) for which order.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use sqlx::{PgConnection, PgPool};
use till_domain::MovementReason;
use uuid::Uuid;

use crate::cursor::{self, Page};
use crate::stock::Shortage;
use crate::DbError;

#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
#[schema(as = Movement)]
pub struct MovementRow {
    pub id: Uuid,
    pub product_id: Uuid,
    pub delta: i64,
    pub reason: String,
    pub balance_after: i64,
    pub order_id: Option<Uuid>,
    pub note: Option<String>,
    pub user_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// Where the units moved; `balance_after` is the product's total over all locations.
    pub location_id: Uuid,
    /// The transfer a `transfer_*` (or transfer `damage`) movement belongs to.
    pub transfer_id: Option<Uuid>,
    /// The stock count a `count` movement applied.
    pub count_id: Option<Uuid>,
}

const COLS: &str = "id, product_id, delta, reason, balance_after, order_id, note, user_id, \
    created_at, location_id, transfer_id, count_id";

/// Why a movement was not applied. Nothing was written in either case.
#[derive(Debug, thiserror::Error)]
pub enum MovementError {
    #[error("product not found")]
    ProductNotFound,
    /// The location named does not exist or is inactive.
    #[error("location not found")]
    LocationNotFound,
    /// Taking `requested` would leave less than zero; `available` is the stock right now.
    /// This is the `details` of a 409 `insufficient_stock`.
    #[error(
        "insufficient stock for {}: requested {}, available {}",
        .0.product_id, .0.requested, .0.available
    )]
    Insufficient(Shortage),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Moves the stock of `product_id` at `location_id` (`None`: the default location) by `delta`
/// (negative takes stock) and records the movement.
///
/// * Runs on the caller's connection: pass `&mut tx` to make it part of a larger transaction.
/// * Race-free: the product row is locked first (`FOR NO KEY UPDATE`, the lock every stock
///   writer takes before touching a product's stock anywhere), then the location's stock is read
///   in a new statement (so as last committed) and checked; the ledger's trigger applies the
///   movement to `stock_levels`, whose `CHECK (on_hand >= 0)` stays the last line of defence.
///   Callers touching several products should do them in ascending id order.
/// * `delta` must not be 0 (the ledger's CHECK rejects it). `order_id` is set for
///   `sale`/`cancel`/`return`; `note` and `user_id` are free. Applies whether or not the product
///   tracks stock or is active; whether to call it for an untracked line is the caller's choice.
/// * Stock is not an editable field, so this does not bump the product's `version` (a busy till
///   would otherwise make every price edit fail its `If-Match`); it does touch `updated_at`.
/// * Callers must invalidate the catalog cache after commit (stock is part of the product).
///
/// Returns the movement, whose `balance_after` is the new total `stock_on_hand`.
#[allow(clippy::too_many_arguments)]
pub async fn apply_movement(
    conn: &mut PgConnection,
    product_id: Uuid,
    location_id: Option<Uuid>,
    delta: i64,
    reason: MovementReason,
    order_id: Option<Uuid>,
    note: Option<&str>,
    user_id: Option<Uuid>,
) -> Result<MovementRow, MovementError> {
    let location: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM locations WHERE id = COALESCE($1, till_default_location_id()) AND active",
    )
    .bind(location_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(DbError::from)?;
    let Some(location) = location else {
        return Err(MovementError::LocationNotFound);
    };
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM products WHERE id = $1 FOR NO KEY UPDATE")
            .bind(product_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(DbError::from)?;
    if found.is_none() {
        return Err(MovementError::ProductNotFound);
    }
    if delta < 0 {
        let available = crate::locations::on_hand(&mut *conn, product_id, location).await?;
        if available + delta < 0 {
            return Err(MovementError::Insufficient(Shortage {
                product_id,
                requested: -delta,
                available,
                location_id,
            }));
        }
    }
    // The ledger's trigger (`till_ledger_applied`) moves the location's stock and enqueues any
    // low-stock alert.
    let sql = format!(
        "WITH upd AS (
            UPDATE products SET stock_on_hand = stock_on_hand + $2, updated_at = now()
            WHERE id = $1
            RETURNING id, stock_on_hand
         )
         INSERT INTO inventory_movements
             (id, product_id, delta, reason, balance_after, order_id, note, user_id, location_id)
         SELECT $3, id, $2, $4, stock_on_hand, $5, $6, $7, $8 FROM upd
         RETURNING {COLS}"
    );
    let row: MovementRow = sqlx::query_as(AssertSqlSafe(sql))
        .bind(product_id)
        .bind(delta)
        .bind(Uuid::now_v7())
        .bind(reason.as_str())
        .bind(order_id)
        .bind(note)
        .bind(user_id)
        .bind(location)
        .fetch_one(&mut *conn)
        .await
        .map_err(DbError::from)?;
    Ok(row)
}

/// Keyset cursor of the movement list: the last row's (created_at, id).
pub type MovementCursor = (DateTime<Utc>, Uuid);

pub fn decode_cursor(c: &str) -> Option<MovementCursor> {
    cursor::decode(c)
}

/// Movements newest first, of one product or of all; keyset on (created_at, id) descending.
pub async fn list(
    pool: &PgPool,
    product_id: Option<Uuid>,
    before: Option<MovementCursor>,
    limit: usize,
) -> Result<Page<MovementRow>, DbError> {
    // Two statements rather than `($1 IS NULL OR product_id = $1)` so each uses its own index.
    let sql = match product_id {
        Some(_) => format!(
            "SELECT {COLS} FROM inventory_movements
             WHERE product_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ),
        None => format!(
            "SELECT {COLS} FROM inventory_movements
             WHERE $1::uuid IS NULL AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ),
    };
    let rows: Vec<MovementRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(product_id)
        .bind(before.map(|b| b.0))
        .bind(before.map(|b| b.1))
        .bind(limit as i64 + 1)
        .fetch_all(pool)
        .await?;
    Ok(Page::from_rows(rows, limit, |m| (m.created_at, m.id)))
}
