//! Money on a locked order: payments, refunds, and what a refund or cancel may still return.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgConnection;
use till_domain::PaymentMethod;
use uuid::Uuid;

use super::{Payment, Refund, Restock};
use crate::DbError;

pub struct NewPayment<'a> {
    pub method: PaymentMethod,
    pub amount_cents: i64,
    pub tendered_cents: Option<i64>,
    pub change_cents: i64,
    pub reference: Option<&'a str>,
    /// Staff who took it; for a provider-confirmed payment, whoever created the intent.
    pub created_by: Option<Uuid>,
    /// The payment intent it settles (at most one payment per intent: a unique index).
    pub intent_id: Option<Uuid>,
    /// The register shift it lands in (locked `FOR SHARE` by the caller), if any.
    pub shift_id: Option<Uuid>,
}

/// Records a payment on a locked order: adds it to `paid_cents`, bumps the version and, when
/// `complete` is set, moves the order to `completed` with a history entry. Returns the payment.
pub async fn add_payment(
    conn: &mut PgConnection,
    order_id: Uuid,
    p: NewPayment<'_>,
    complete: bool,
) -> Result<Payment, DbError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        created_at: DateTime<Utc>,
    }
    let row: Row = sqlx::query_as(
        "WITH pay AS (
             INSERT INTO payments (id, order_id, method, amount_cents, tendered_cents, change_cents,
                                   reference, created_by, intent_id, shift_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10, $11)
             RETURNING id, created_at
         ), u AS (
             UPDATE orders SET paid_cents = paid_cents + $4, version = version + 1, updated_at = now(),
                 status = CASE WHEN $9 THEN 'completed' ELSE status END
             WHERE id = $2 RETURNING id
         ), h AS (
             INSERT INTO order_status_history (order_id, seq, status, by)
             SELECT u.id, COALESCE((SELECT max(seq) FROM order_status_history WHERE order_id = $2), 0) + 1,
                    'completed', $8
             FROM u WHERE $9
         )
         SELECT id, created_at FROM pay",
    )
    .bind(Uuid::now_v7())
    .bind(order_id)
    .bind(p.method.as_str())
    .bind(p.amount_cents)
    .bind(p.tendered_cents)
    .bind(p.change_cents)
    .bind(p.reference)
    .bind(p.created_by)
    .bind(complete)
    .bind(p.intent_id)
    .bind(p.shift_id)
    .fetch_one(conn)
    .await?;
    Ok(Payment {
        id: row.id,
        method: p.method,
        amount_cents: p.amount_cents,
        tendered_cents: p.tendered_cents,
        change_cents: p.change_cents,
        reference: p.reference.map(str::to_owned),
        created_by: p.created_by,
        created_at: row.created_at,
        intent_id: p.intent_id,
        shift_id: p.shift_id,
    })
}

/// A refund to record.
pub struct NewRefund<'a> {
    pub amount_cents: i64,
    pub method: PaymentMethod,
    pub reason: &'a str,
    pub restock: &'a [Restock],
    pub by: Uuid,
    /// The register shift it lands in (locked `FOR SHARE` by the caller), if any.
    pub shift_id: Option<Uuid>,
}

/// Records a refund on a locked order and adds it to `refunded_cents`. Stock is the caller's.
pub async fn add_refund(
    conn: &mut PgConnection,
    order_id: Uuid,
    r: NewRefund<'_>,
) -> Result<Refund, DbError> {
    let NewRefund {
        amount_cents,
        method,
        reason,
        restock,
        by,
        shift_id,
    } = r;
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        created_at: DateTime<Utc>,
    }
    let row: Row = sqlx::query_as(
        "WITH r AS (
             INSERT INTO refunds (id, order_id, amount_cents, reason, restock, created_by,
                                  method, shift_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id, created_at
         ), u AS (
             UPDATE orders SET refunded_cents = refunded_cents + $3, version = version + 1,
                 updated_at = now()
             WHERE id = $2
         )
         SELECT id, created_at FROM r",
    )
    .bind(Uuid::now_v7())
    .bind(order_id)
    .bind(amount_cents)
    .bind(reason)
    .bind(Json(restock))
    .bind(by)
    .bind(method.as_str())
    .bind(shift_id)
    .fetch_one(conn)
    .await?;
    Ok(Refund {
        id: row.id,
        method: Some(method),
        amount_cents,
        reason: reason.to_owned(),
        restock: restock.to_vec(),
        created_by: Some(by),
        created_at: row.created_at,
        shift_id,
    })
}

/// The method of the order's first payment (a refund's default tender).
pub async fn first_payment_method(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<PaymentMethod>, DbError> {
    let m: Option<String> = sqlx::query_scalar(
        "SELECT method FROM payments WHERE order_id = $1 ORDER BY created_at, id LIMIT 1",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await?;
    Ok(m.and_then(|m| m.parse().ok()))
}

/// Per product line of an order: what was sold and what has come back since (cancel/return).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Returnable {
    pub product_id: Uuid,
    pub track_stock: bool,
    pub sold: i64,
    pub returned: i64,
}

pub async fn returnable(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Vec<Returnable>, DbError> {
    Ok(sqlx::query_as(
        "SELECT l.product_id, bool_or(l.track_stock) AS track_stock, sum(l.quantity)::bigint AS sold,
                COALESCE((SELECT sum(m.delta) FROM inventory_movements m
                          WHERE m.order_id = $1 AND m.product_id = l.product_id
                            AND m.reason IN ('cancel', 'return')), 0)::bigint AS returned
         FROM order_lines l WHERE l.order_id = $1
         GROUP BY l.product_id ORDER BY l.product_id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?)
}
