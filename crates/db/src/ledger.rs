//! Stock moved by transfers and counts: several products at one location, under the product
//! locks every stock writer takes first (ascending id order, `FOR NO KEY UPDATE`; see
//! [`crate::stock`]). The per-location stock follows from the movements (the ledger's trigger).

use std::collections::HashMap;

use sqlx::PgConnection;
use till_domain::MovementReason;
use uuid::Uuid;

use crate::DbError;

/// Locks the product rows among `ids` in ascending id order; returns those that track stock.
pub async fn lock_products(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, bool)>, DbError> {
    let mut sorted = ids.to_vec();
    sorted.sort();
    sorted.dedup();
    Ok(sqlx::query_as(
        "SELECT id, track_stock FROM products WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(&sorted)
    .fetch_all(conn)
    .await?)
}

/// On hand at `location_id` of each of `ids` (0 when none), as last committed. Call after
/// [`lock_products`] so the figures cannot change before the transaction ends.
pub async fn on_hand_at(
    conn: &mut PgConnection,
    location_id: Uuid,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, i64>, DbError> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT u.id, COALESCE(till_on_hand(u.id, $1), 0) FROM unnest($2::uuid[]) AS u(id)",
    )
    .bind(location_id)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Who and what the movements of one [`write`] belong to.
pub struct LedgerContext<'a> {
    pub location_id: Uuid,
    pub reason: MovementReason,
    pub user_id: Option<Uuid>,
    pub transfer_id: Option<Uuid>,
    pub count_id: Option<Uuid>,
    pub note: Option<&'a str>,
}

/// Writes one movement per (product, delta ≠ 0) at the context's location and moves each
/// product's total with it, in one statement. The products must be locked by the caller (and
/// any units taken checked against [`on_hand_at`]); `stock_levels`' CHECK refuses the rest.
pub async fn write(
    conn: &mut PgConnection,
    ctx: &LedgerContext<'_>,
    moves: &[(Uuid, i64)],
) -> Result<(), DbError> {
    let moves: Vec<(Uuid, i64)> = moves.iter().copied().filter(|m| m.1 != 0).collect();
    if moves.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = moves.iter().map(|m| m.0).collect();
    let deltas: Vec<i64> = moves.iter().map(|m| m.1).collect();
    let movement_ids: Vec<Uuid> = moves.iter().map(|_| Uuid::now_v7()).collect();
    let written: i64 = sqlx::query_scalar(
        "WITH req AS (
             SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[])
                 AS r(product_id, delta, movement_id)
         ), upd AS (
             UPDATE products p
             SET stock_on_hand = p.stock_on_hand + req.delta, updated_at = now()
             FROM req WHERE p.id = req.product_id
             RETURNING p.id, req.delta, req.movement_id, p.stock_on_hand
         ), mov AS (
             INSERT INTO inventory_movements (id, product_id, delta, reason, balance_after, note,
                                              user_id, location_id, transfer_id, count_id)
             SELECT movement_id, id, delta, $4, stock_on_hand, $5, $6, $7, $8, $9 FROM upd
             RETURNING 1
         )
         SELECT count(*) FROM mov",
    )
    .bind(&ids)
    .bind(&deltas)
    .bind(&movement_ids)
    .bind(ctx.reason.as_str())
    .bind(ctx.note)
    .bind(ctx.user_id)
    .bind(ctx.location_id)
    .bind(ctx.transfer_id)
    .bind(ctx.count_id)
    .fetch_one(conn)
    .await?;
    if written != moves.len() as i64 {
        return Err(DbError::NotFound);
    }
    Ok(())
}
