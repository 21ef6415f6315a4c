//! A shift's figures and its X/Z report, computed from the rows attached to it.
//!
//! What each figure means (the same rules as the sales report):
//! - `sales`: the shift's orders (placed on its register while it was open) that are not
//!   cancelled: `gross` Σ subtotal, `discount`, `tax`; `refunds_cents` the shift's refunds on
//!   those orders; `net = gross − discount + tax − refunds`.
//! - `tax_by_rate`: those orders' lines by tax rate: taxable Σ (subtotal − discount), tax.
//! - `tenders`: every payment and refund that landed in the shift, per method (cash flows,
//!   whatever became of the order later).
//! - `cash`: the drawer (`till_domain::CashFlows`).
//! - `by_user`: per user, orders placed and `net` (Σ total of their orders − refunds they gave).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::PgConnection;
use till_domain::CashFlows;
use uuid::Uuid;

use super::ShiftRow;
use crate::DbError;

/// One tender's totals in a shift.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ShiftTender)]
pub struct Tender {
    pub count: i64,
    pub amount_cents: i64,
    pub refunds_cents: i64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ShiftTenders)]
pub struct Tenders {
    pub cash: Tender,
    pub card: Tender,
    pub other: Tender,
}

/// What a shift's rows add up to.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub user_ids: Vec<Uuid>,
    pub orders_count: i64,
    pub tenders: Tenders,
}

/// The Shift of the API. `expected_cash_cents` and `difference_cents` are null while the shift
/// is open for callers who close blind (the use case decides).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Shift {
    pub id: Uuid,
    pub number: String,
    pub register_id: Uuid,
    /// `open` or `closed`.
    pub status: String,
    pub opened_by: Uuid,
    pub opened_at: DateTime<Utc>,
    pub closed_by: Option<Uuid>,
    pub closed_at: Option<DateTime<Utc>>,
    pub opening_float_cents: i64,
    pub expected_opening_cents: Option<i64>,
    pub opening_difference_cents: Option<i64>,
    pub cash_sales_cents: i64,
    pub cash_refunds_cents: i64,
    pub paid_in_cents: i64,
    pub paid_out_cents: i64,
    pub expected_cash_cents: Option<i64>,
    pub counted_cash_cents: Option<i64>,
    pub deposit_cents: Option<i64>,
    pub difference_cents: Option<i64>,
    pub user_ids: Vec<Uuid>,
    pub tenders: Tenders,
    pub orders_count: i64,
    pub note: Option<String>,
    pub close_note: Option<String>,
    pub version: i64,
}

impl Shift {
    pub fn new(r: &ShiftRow, f: Figures) -> Shift {
        let flows = CashFlows {
            opening_float_cents: r.opening_float_cents,
            cash_sales_cents: f.tenders.cash.amount_cents,
            cash_refunds_cents: f.tenders.cash.refunds_cents,
            paid_in_cents: r.paid_in_cents,
            paid_out_cents: r.paid_out_cents,
        };
        let expected = r.expected_cash_cents.unwrap_or(flows.expected_cash());
        Shift {
            id: r.id,
            number: r.number.to_string(),
            register_id: r.register_id,
            status: r.status.clone(),
            opened_by: r.opened_by,
            opened_at: r.opened_at,
            closed_by: r.closed_by,
            closed_at: r.closed_at,
            opening_float_cents: r.opening_float_cents,
            expected_opening_cents: r.expected_opening_cents,
            opening_difference_cents: r.opening_difference_cents,
            cash_sales_cents: flows.cash_sales_cents,
            cash_refunds_cents: flows.cash_refunds_cents,
            paid_in_cents: r.paid_in_cents,
            paid_out_cents: r.paid_out_cents,
            expected_cash_cents: Some(expected),
            counted_cash_cents: r.counted_cash_cents,
            deposit_cents: r.deposit_cents,
            difference_cents: r.difference_cents,
            user_ids: f.user_ids,
            tenders: f.tenders,
            orders_count: f.orders_count,
            note: r.note.clone(),
            close_note: r.close_note.clone(),
            version: r.version,
        }
    }

    pub fn cash_flows(&self) -> CashFlows {
        CashFlows {
            opening_float_cents: self.opening_float_cents,
            cash_sales_cents: self.cash_sales_cents,
            cash_refunds_cents: self.cash_refunds_cents,
            paid_in_cents: self.paid_in_cents,
            paid_out_cents: self.paid_out_cents,
        }
    }
}

#[derive(sqlx::FromRow)]
struct FiguresRow {
    user_ids: Vec<Uuid>,
    orders_count: i64,
    tenders: Json<Vec<(String, i64, i64, i64)>>,
}

/// The shift's users, order count and tenders, in one statement.
pub async fn figures(conn: &mut PgConnection, id: Uuid) -> Result<Figures, DbError> {
    let row: FiguresRow = sqlx::query_as(
        "SELECT
           (SELECT COALESCE(array_agg(user_id ORDER BY joined_at, user_id), '{}')
            FROM shift_users WHERE shift_id = $1) AS user_ids,
           (SELECT count(*) FROM orders WHERE shift_id = $1 AND status <> 'cancelled') AS orders_count,
           (SELECT COALESCE(json_agg(json_build_array(m.method, COALESCE(p.n, 0),
                                                      COALESCE(p.amt, 0), COALESCE(r.amt, 0))), '[]')
            FROM unnest(ARRAY['cash', 'card', 'other']) AS m(method)
            LEFT JOIN (SELECT method, count(*) AS n, sum(amount_cents) AS amt FROM payments
                       WHERE shift_id = $1 GROUP BY method) p USING (method)
            LEFT JOIN (SELECT method, sum(amount_cents) AS amt FROM refunds
                       WHERE shift_id = $1 GROUP BY method) r USING (method)) AS tenders",
    )
    .bind(id)
    .fetch_one(conn)
    .await?;
    let mut tenders = Tenders::default();
    for (method, count, amount_cents, refunds_cents) in row.tenders.0 {
        let t = Tender {
            count,
            amount_cents,
            refunds_cents,
        };
        match method.as_str() {
            "cash" => tenders.cash = t,
            "card" => tenders.card = t,
            _ => tenders.other = t,
        }
    }
    Ok(Figures {
        user_ids: row.user_ids,
        orders_count: row.orders_count,
        tenders,
    })
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = ShiftSales)]
pub struct SalesSummary {
    pub orders: i64,
    pub gross_cents: i64,
    pub discount_cents: i64,
    pub tax_cents: i64,
    pub refunds_cents: i64,
    pub net_cents: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = ShiftTaxRate)]
pub struct TaxRate {
    pub tax_rate_bp: i64,
    pub taxable_cents: i64,
    pub tax_cents: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = ShiftUserSales)]
pub struct UserSales {
    pub user_id: Option<Uuid>,
    /// The user's name when the report was made (printed on the slip).
    pub name: Option<String>,
    pub orders: i64,
    pub net_cents: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ShiftCash)]
pub struct CashSummary {
    pub opening_float_cents: i64,
    pub cash_sales_cents: i64,
    pub cash_refunds_cents: i64,
    pub paid_in_cents: i64,
    pub paid_out_cents: i64,
    pub expected_cash_cents: Option<i64>,
    pub counted_cash_cents: Option<i64>,
    pub difference_cents: Option<i64>,
}

/// The X report (open shift) or Z report (closed).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ShiftReport)]
pub struct Report {
    /// `X` while the shift is open, `Z` once closed.
    pub kind: String,
    pub shift: Shift,
    pub sales: SalesSummary,
    pub tax_by_rate: Vec<TaxRate>,
    pub tenders: Tenders,
    pub cash: CashSummary,
    pub by_user: Vec<UserSales>,
    /// When the report was computed (for a Z report: when the shift closed).
    pub generated_at: DateTime<Utc>,
}

/// Computes the report of shift `r` (an X report when open, a Z report when closed).
pub async fn report(conn: &mut PgConnection, r: &ShiftRow) -> Result<Report, DbError> {
    let shift = Shift::new(r, figures(conn, r.id).await?);
    let sales: SalesSummary = sqlx::query_as(
        "WITH o AS (SELECT id, subtotal_cents, discount_cents, tax_cents FROM orders
                    WHERE shift_id = $1 AND status <> 'cancelled'),
              rf AS (SELECT COALESCE(sum(r.amount_cents), 0)::bigint AS amt FROM refunds r
                     JOIN orders ro ON ro.id = r.order_id
                     WHERE r.shift_id = $1 AND ro.status <> 'cancelled')
         SELECT count(o.id) AS orders,
                COALESCE(sum(o.subtotal_cents), 0)::bigint AS gross_cents,
                COALESCE(sum(o.discount_cents), 0)::bigint AS discount_cents,
                COALESCE(sum(o.tax_cents), 0)::bigint AS tax_cents,
                (SELECT amt FROM rf) AS refunds_cents,
                (COALESCE(sum(o.subtotal_cents), 0) - COALESCE(sum(o.discount_cents), 0)
                 + COALESCE(sum(o.tax_cents), 0) - (SELECT amt FROM rf))::bigint AS net_cents
         FROM o",
    )
    .bind(r.id)
    .fetch_one(&mut *conn)
    .await?;
    let tax_by_rate: Vec<TaxRate> = sqlx::query_as(
        "SELECT l.tax_rate_bp::bigint AS tax_rate_bp,
                sum(l.subtotal_cents - l.discount_cents)::bigint AS taxable_cents,
                sum(l.tax_cents)::bigint AS tax_cents
         FROM order_lines l JOIN orders o ON o.id = l.order_id
         WHERE o.shift_id = $1 AND o.status <> 'cancelled'
         GROUP BY l.tax_rate_bp ORDER BY l.tax_rate_bp",
    )
    .bind(r.id)
    .fetch_all(&mut *conn)
    .await?;
    let by_user: Vec<UserSales> = sqlx::query_as(
        "SELECT u AS user_id, (SELECT name FROM users WHERE id = u) AS name,
                sum(n)::bigint AS orders, sum(t)::bigint AS net_cents
         FROM (SELECT created_by AS u, 1 AS n, total_cents AS t FROM orders
               WHERE shift_id = $1 AND status <> 'cancelled'
               UNION ALL
               SELECT r.created_by, 0, -r.amount_cents FROM refunds r
               JOIN orders ro ON ro.id = r.order_id
               WHERE r.shift_id = $1 AND ro.status <> 'cancelled') AS x
         GROUP BY u ORDER BY u",
    )
    .bind(r.id)
    .fetch_all(&mut *conn)
    .await?;
    let generated_at: DateTime<Utc> = match r.closed_at {
        Some(at) => at,
        None => {
            sqlx::query_scalar("SELECT now()")
                .fetch_one(&mut *conn)
                .await?
        }
    };
    let cash = CashSummary {
        opening_float_cents: shift.opening_float_cents,
        cash_sales_cents: shift.cash_sales_cents,
        cash_refunds_cents: shift.cash_refunds_cents,
        paid_in_cents: shift.paid_in_cents,
        paid_out_cents: shift.paid_out_cents,
        expected_cash_cents: shift.expected_cash_cents,
        counted_cash_cents: shift.counted_cash_cents,
        difference_cents: shift.difference_cents,
    };
    Ok(Report {
        kind: if r.is_open() { "X" } else { "Z" }.to_owned(),
        tenders: shift.tenders,
        shift,
        sales,
        tax_by_rate,
        cash,
        by_user,
        generated_at,
    })
}
