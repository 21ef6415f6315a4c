//! The sales report: per-day sums over non-cancelled orders, days counted in the store's time
//! zone. Meant for the read pool (`DATABASE_READ_URL`).
//!
//! What each figure means:
//! - `orders`, `gross_cents` (Σ subtotal), `discount_cents`, `tax_cents`: orders *created* that
//!   local day and not cancelled.
//! - `refunds_cents`: refunds *made* that local day, on orders that are not cancelled (a refund
//!   belongs to the day the money went back, so an old day's figures never change later).
//! - `net_cents = gross − discount + tax − refunds`: what customers were charged, less what was
//!   given back. Refunds are amounts of money returned (tax included), hence net includes tax.
//! - `by_payment_method`: payments taken in the range, per method (change excluded).
//! - `top_products`: the ten best sellers of the range's orders by revenue (Σ line subtotal −
//!   line discount, tax excluded), then by quantity.

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::AssertSqlSafe;
use sqlx::PgPool;
use uuid::Uuid;

use crate::DbError;

#[derive(Debug, Clone, Default, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = SalesDay)]
pub struct DayRow {
    pub date: NaiveDate,
    pub orders: i64,
    pub gross_cents: i64,
    pub discount_cents: i64,
    pub tax_cents: i64,
    pub refunds_cents: i64,
    pub net_cents: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TopProduct {
    pub product_id: Uuid,
    pub name: String,
    pub quantity: i64,
    pub revenue_cents: i64,
}

pub struct Sales {
    /// One row per day of the range, zero days included, in date order.
    pub days: Vec<DayRow>,
    /// (method, cents).
    pub by_payment_method: Vec<(String, i64)>,
    pub top_products: Vec<TopProduct>,
}

/// `$1` from, `$2` to (inclusive dates), `$3` time zone: the UTC bounds of those local days.
const BOUNDS: &str = "bounds AS (SELECT ($1::date)::timestamp AT TIME ZONE $3 AS lo,
                                        ($2::date + 1)::timestamp AT TIME ZONE $3 AS hi)";

pub async fn sales(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
    tz: &str,
) -> Result<Sales, DbError> {
    let days: Vec<DayRow> = sqlx::query_as(AssertSqlSafe(format!(
        "WITH {BOUNDS},
         o AS (
             SELECT (o.created_at AT TIME ZONE $3)::date AS d, count(*) AS n,
                    sum(o.subtotal_cents) AS gross, sum(o.discount_cents) AS disc,
                    sum(o.tax_cents) AS tax
             FROM orders o, bounds
             WHERE o.created_at >= bounds.lo AND o.created_at < bounds.hi AND o.status <> 'cancelled'
             GROUP BY 1
         ),
         r AS (
             SELECT (r.created_at AT TIME ZONE $3)::date AS d, sum(r.amount_cents) AS refunds
             FROM refunds r JOIN orders o ON o.id = r.order_id, bounds
             WHERE r.created_at >= bounds.lo AND r.created_at < bounds.hi AND o.status <> 'cancelled'
             GROUP BY 1
         )
         SELECT g.d::date AS date,
                COALESCE(o.n, 0)::bigint AS orders,
                COALESCE(o.gross, 0)::bigint AS gross_cents,
                COALESCE(o.disc, 0)::bigint AS discount_cents,
                COALESCE(o.tax, 0)::bigint AS tax_cents,
                COALESCE(r.refunds, 0)::bigint AS refunds_cents,
                (COALESCE(o.gross, 0) - COALESCE(o.disc, 0) + COALESCE(o.tax, 0)
                 - COALESCE(r.refunds, 0))::bigint AS net_cents
         FROM generate_series($1::date, $2::date, interval '1 day') AS g(d)
         LEFT JOIN o ON o.d = g.d::date
         LEFT JOIN r ON r.d = g.d::date
         ORDER BY 1"
    )))
    .bind(from)
    .bind(to)
    .bind(tz)
    .fetch_all(pool)
    .await?;
    let by_payment_method: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "WITH {BOUNDS}
         SELECT p.method, sum(p.amount_cents)::bigint
         FROM payments p JOIN orders o ON o.id = p.order_id, bounds
         WHERE p.created_at >= bounds.lo AND p.created_at < bounds.hi AND o.status <> 'cancelled'
         GROUP BY 1 ORDER BY 1"
    )))
    .bind(from)
    .bind(to)
    .bind(tz)
    .fetch_all(pool)
    .await?;
    let top_products: Vec<TopProduct> = sqlx::query_as(AssertSqlSafe(format!(
        "WITH {BOUNDS}
         SELECT l.product_id, (array_agg(l.name ORDER BY o.created_at DESC))[1] AS name,
                sum(l.quantity)::bigint AS quantity,
                sum(l.subtotal_cents - l.discount_cents)::bigint AS revenue_cents
         FROM order_lines l JOIN orders o ON o.id = l.order_id, bounds
         WHERE o.created_at >= bounds.lo AND o.created_at < bounds.hi AND o.status <> 'cancelled'
         GROUP BY l.product_id
         ORDER BY revenue_cents DESC, quantity DESC, l.product_id
         LIMIT 10"
    )))
    .bind(from)
    .bind(to)
    .bind(tz)
    .fetch_all(pool)
    .await?;
    Ok(Sales {
        days,
        by_payment_method,
        top_products,
    })
}
