//! Stock movements made by the order flow after creation: `cancel` when an order is cancelled,
//! `return` when a refund restocks; both put the units back at the order's location. (The `sale` at creation is part of `checkout::place`'s
//! single statement, with the same lock order.)
//!
//! Every change locks the product rows first, in ascending id order, so two transactions that
//! touch overlapping products always queue in the same order and can never deadlock. The lock is
//! `FOR NO KEY UPDATE` (what a plain `UPDATE` of a non-key column takes), not `FOR UPDATE`: the
//! foreign-key checks of concurrent `order_lines`/`inventory_movements` inserts take `FOR KEY
//! SHARE` on the same products, which `FOR UPDATE` would block — in line order, not id order.
//! Stock never goes below zero: checked here under the lock, again by the guarded `UPDATE`, and
//! finally by the table's `CHECK (stock_on_hand >= 0)`.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use till_domain::MovementReason;
use uuid::Uuid;

use crate::DbError;

/// A product line that could not be served.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Shortage {
    pub product_id: Uuid,
    pub requested: i64,
    /// On hand at `location_id` (read under the product lock, so exact).
    pub available: i64,
    /// Where the stock was looked for, when the request named a location (answers about the
    /// default location read as they did before locations existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_id: Option<Uuid>,
}

/// Who and what a batch of movements belongs to. The movements land at the order's location
/// (`orders.location_id`), or at the default location when there is no order.
#[derive(Debug, Clone, Copy)]
pub struct MovementContext {
    pub reason: MovementReason,
    pub order_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
}

/// Sums quantities per product, in ascending id order (the lock order).
fn by_product(lines: &[(Uuid, i64)]) -> BTreeMap<Uuid, i64> {
    let mut m = BTreeMap::new();
    for &(id, q) in lines {
        *m.entry(id).or_insert(0) += q;
    }
    m
}

/// Locks the stock-tracked rows among `ids` in ascending id order; returns (id, stock_on_hand)
/// of those rows. Untracked products are neither locked nor returned.
pub async fn lock_tracked(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, i64)>, DbError> {
    let mut sorted = ids.to_vec();
    sorted.sort();
    sorted.dedup();
    // With ORDER BY and a locking clause PostgreSQL sorts first and locks rows as they come out
    // of the sort, so the locks are taken in id order.
    Ok(sqlx::query_as(
        "SELECT id, stock_on_hand FROM products
         WHERE id = ANY($1) AND track_stock ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(&sorted)
    .fetch_all(conn)
    .await?)
}

/// Applies `deltas` to rows already locked by [`lock_tracked`] and writes one movement per
/// product, in one statement. Fails (and the caller rolls back) if any row would go negative.
async fn apply_locked(
    conn: &mut PgConnection,
    deltas: &BTreeMap<Uuid, i64>,
    ctx: MovementContext,
) -> Result<(), DbError> {
    let deltas: Vec<(Uuid, i64)> = deltas
        .iter()
        .filter(|(_, d)| **d != 0)
        .map(|(id, d)| (*id, *d))
        .collect();
    if deltas.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = deltas.iter().map(|d| d.0).collect();
    let amounts: Vec<i64> = deltas.iter().map(|d| d.1).collect();
    let movement_ids: Vec<Uuid> = deltas.iter().map(|_| Uuid::now_v7()).collect();
    // The ledger's trigger (`till_low_stock_alerts`) enqueues any low-stock alert.
    let sql = "WITH req AS (
             SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[]) AS r(product_id, delta, movement_id)
         ), upd AS (
             UPDATE products p
             SET stock_on_hand = p.stock_on_hand + req.delta, updated_at = now()
             FROM req
             WHERE p.id = req.product_id AND p.stock_on_hand + req.delta >= 0
             RETURNING p.id, req.delta, req.movement_id, p.stock_on_hand
         ), mov AS (
             INSERT INTO inventory_movements (id, product_id, delta, reason, balance_after, order_id, user_id, location_id)
             SELECT movement_id, id, delta, $4, stock_on_hand, $5, $6,
                    COALESCE((SELECT o.location_id FROM orders o WHERE o.id = $5), till_default_location_id())
             FROM upd
             RETURNING 1
         )
         SELECT count(*) FROM mov";
    let written: i64 = sqlx::query_scalar(sql)
        .bind(&ids)
        .bind(&amounts)
        .bind(&movement_ids)
        .bind(ctx.reason.as_str())
        .bind(ctx.order_id)
        .bind(ctx.user_id)
        .fetch_one(conn)
        .await?;
    if written != deltas.len() as i64 {
        // Unreachable while callers lock first; refuse rather than write a partial ledger.
        return Err(DbError::check("products_stock_on_hand_check"));
    }
    Ok(())
}

/// Puts `lines` (product, quantity > 0) back into stock for tracked products.
pub async fn put(
    conn: &mut PgConnection,
    lines: &[(Uuid, i64)],
    ctx: MovementContext,
) -> Result<(), DbError> {
    let back = by_product(lines);
    let ids: Vec<Uuid> = back.keys().copied().collect();
    let locked = lock_tracked(conn, &ids).await?;
    let deltas: BTreeMap<Uuid, i64> = locked.into_iter().map(|(id, _)| (id, back[&id])).collect();
    apply_locked(conn, &deltas, ctx).await
}
