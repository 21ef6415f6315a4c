//! Register shifts: opening, joining, cash movements, the lock that decides which shift money
//! lands in, and the close (which stores the Z report).
//!
//! Which shift money lands in is decided by a row lock (see the migration
//! `20261201100000_register_shifts.sql`): a write that attaches an order, payment or refund
//! to a shift holds the shift `FOR SHARE` ([`lock_open_for_money`]) until it commits; a close
//! holds it `FOR UPDATE` ([`lock`]). PostgreSQL queues the two, so a payment either commits in
//! the shift before the close reads its totals, or re-reads the row after the close and finds
//! it closed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;
use sqlx::PgConnection;
use till_domain::CashMovementType;
use uuid::Uuid;

use crate::DbError;

mod list;
mod report;

pub use list::{decode_cursor, list, ListCursor, ListFilter};
pub use report::{
    figures, report, CashSummary, Figures, Report, SalesSummary, Shift, TaxRate, Tender, Tenders,
    UserSales,
};

/// The stored columns of a shift.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ShiftRow {
    pub id: Uuid,
    pub number: i64,
    pub register_id: Uuid,
    pub status: String,
    pub opened_by: Uuid,
    pub opened_at: DateTime<Utc>,
    pub closed_by: Option<Uuid>,
    pub closed_at: Option<DateTime<Utc>>,
    pub opening_float_cents: i64,
    pub expected_opening_cents: Option<i64>,
    pub opening_difference_cents: Option<i64>,
    pub paid_in_cents: i64,
    pub paid_out_cents: i64,
    pub expected_cash_cents: Option<i64>,
    pub counted_cash_cents: Option<i64>,
    pub deposit_cents: Option<i64>,
    pub difference_cents: Option<i64>,
    pub note: Option<String>,
    pub close_note: Option<String>,
    pub version: i64,
}

impl ShiftRow {
    pub fn is_open(&self) -> bool {
        self.status == "open"
    }
}

const COLS: &str = "id, number, register_id, status, opened_by, opened_at, closed_by, closed_at, \
    opening_float_cents, expected_opening_cents, opening_difference_cents, paid_in_cents, \
    paid_out_cents, expected_cash_cents, counted_cash_cents, deposit_cents, difference_cents, \
    note, close_note, version";

/// A shift being opened.
pub struct NewShift<'a> {
    pub register_id: Uuid,
    pub opened_by: Uuid,
    pub opening_float_cents: i64,
    pub expected_opening_cents: Option<i64>,
    pub note: Option<&'a str>,
}

/// Inserts an open shift with its opener on it. A second open shift on the register, or an
/// opener already on an open shift, fails on a unique index (`shifts_one_open_per_register`,
/// `shift_users_one_open_per_user`).
pub async fn insert_open(conn: &mut PgConnection, s: NewShift<'_>) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "WITH s AS (
             INSERT INTO shifts (id, register_id, opened_by, opening_float_cents,
                                 expected_opening_cents, opening_difference_cents, note)
             VALUES ($1, $2, $3, $4, $5, $4 - $5, $6) RETURNING id
         )
         INSERT INTO shift_users (shift_id, user_id) SELECT id, $3 FROM s",
    )
    .bind(id)
    .bind(s.register_id)
    .bind(s.opened_by)
    .bind(s.opening_float_cents)
    .bind(s.expected_opening_cents)
    .bind(s.note)
    .execute(conn)
    .await?;
    Ok(id)
}

/// `counted − deposit` of the register's last closed shift, if it had one.
pub async fn expected_opening(
    conn: &mut PgConnection,
    register_id: Uuid,
) -> Result<Option<i64>, DbError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT counted_cash_cents, COALESCE(deposit_cents, 0) FROM shifts
         WHERE register_id = $1 AND status = 'closed'
         ORDER BY closed_at DESC, id DESC LIMIT 1",
    )
    .bind(register_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(counted, deposit)| till_domain::expected_opening(counted, deposit)))
}

/// The open shift of a register (no lock: for answers such as "already open").
pub async fn open_of_register(
    conn: &mut PgConnection,
    register_id: Uuid,
) -> Result<Option<Uuid>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM shifts WHERE register_id = $1 AND status = 'open'")
            .bind(register_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// The open shift `user` is on (no lock).
pub async fn open_of_user(conn: &mut PgConnection, user: Uuid) -> Result<Option<Uuid>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT shift_id FROM shift_users WHERE user_id = $1 AND on_shift")
            .bind(user)
            .fetch_optional(conn)
            .await?,
    )
}

/// The shift money lands in, locked `FOR SHARE` until the caller commits: the open shift of
/// `register` (when one is named), else the open shift `user` is on, else none. A shift that a
/// concurrent close is closing is waited for, then found closed and skipped.
pub async fn lock_open_for_money(
    conn: &mut PgConnection,
    register: Option<Uuid>,
    user: Option<Uuid>,
) -> Result<Option<Uuid>, DbError> {
    if let Some(r) = register {
        let found: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM shifts WHERE register_id = $1 AND status = 'open' FOR SHARE",
        )
        .bind(r)
        .fetch_optional(&mut *conn)
        .await?;
        if found.is_some() {
            return Ok(found);
        }
    }
    let Some(u) = user else { return Ok(None) };
    Ok(sqlx::query_scalar(
        "SELECT s.id FROM shift_users su JOIN shifts s ON s.id = su.shift_id
         WHERE su.user_id = $1 AND su.on_shift AND s.status = 'open'
         FOR SHARE OF s",
    )
    .bind(u)
    .fetch_optional(conn)
    .await?)
}

/// Whether a register exists and is active.
pub async fn register_active(conn: &mut PgConnection, id: Uuid) -> Result<bool, DbError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM registers WHERE id = $1 AND active)")
            .bind(id)
            .fetch_one(conn)
            .await?,
    )
}

/// The shift row without a lock.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<ShiftRow, DbError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLS} FROM shifts WHERE id = $1"
    )))
    .bind(id)
    .fetch_one(conn)
    .await?)
}

/// The shift row, locked `FOR UPDATE` (join, cash movements, close): waits for every payment,
/// refund and order holding it `FOR SHARE`, and keeps new ones out until the caller commits.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<ShiftRow, DbError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLS} FROM shifts WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_one(conn)
    .await?)
}

/// Whether `user` is (or was) on the shift.
pub async fn is_member(conn: &mut PgConnection, id: Uuid, user: Uuid) -> Result<bool, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM shift_users WHERE shift_id = $1 AND user_id = $2)",
    )
    .bind(id)
    .bind(user)
    .fetch_one(conn)
    .await?)
}

/// Adds `user` to a locked open shift (nothing when already on it) and bumps its version.
/// Being on another open shift fails on `shift_users_one_open_per_user`.
pub async fn join(conn: &mut PgConnection, id: Uuid, user: Uuid) -> Result<(), DbError> {
    sqlx::query(
        "WITH j AS (
             INSERT INTO shift_users (shift_id, user_id) VALUES ($1, $2)
             ON CONFLICT (shift_id, user_id) DO NOTHING RETURNING shift_id
         )
         UPDATE shifts SET version = version + 1 WHERE id IN (SELECT shift_id FROM j)",
    )
    .bind(id)
    .bind(user)
    .execute(conn)
    .await?;
    Ok(())
}

/// A paid-in or paid-out.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = CashMovement)]
pub struct CashMovement {
    pub id: Uuid,
    pub shift_id: Uuid,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    #[schema(value_type = CashMovementType)]
    pub kind: String,
    pub amount_cents: i64,
    pub reason: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// Records a cash movement on a locked open shift and adds it to the shift's running total.
pub async fn add_movement(
    conn: &mut PgConnection,
    shift_id: Uuid,
    kind: CashMovementType,
    amount_cents: i64,
    reason: &str,
    by: Uuid,
) -> Result<CashMovement, DbError> {
    let column = match kind {
        CashMovementType::PaidIn => "paid_in_cents",
        CashMovementType::PaidOut => "paid_out_cents",
    };
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "WITH u AS (
             UPDATE shifts SET {column} = {column} + $4, version = version + 1 WHERE id = $2
         )
         INSERT INTO shift_cash_movements (id, shift_id, type, amount_cents, reason, created_by)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, shift_id, type, amount_cents, reason, created_by, created_at"
    )))
    .bind(Uuid::now_v7())
    .bind(shift_id)
    .bind(kind.as_str())
    .bind(amount_cents)
    .bind(reason)
    .bind(by)
    .fetch_one(conn)
    .await?)
}

/// The close of a locked open shift.
pub struct Closing<'a> {
    pub closed_by: Uuid,
    pub expected_cash_cents: i64,
    pub counted_cash_cents: i64,
    pub deposit_cents: i64,
    pub note: Option<&'a str>,
}

/// Closes a locked open shift: its figures, its users off it. The caller then stores the Z
/// report ([`store_report`]) in the same transaction.
pub async fn close(conn: &mut PgConnection, id: Uuid, c: Closing<'_>) -> Result<(), DbError> {
    sqlx::query(
        "WITH off AS (UPDATE shift_users SET on_shift = false WHERE shift_id = $1)
         UPDATE shifts SET status = 'closed', closed_by = $2, closed_at = now(),
             expected_cash_cents = $3, counted_cash_cents = $4, deposit_cents = $5,
             difference_cents = $4 - $3, close_note = $6, version = version + 1,
             z_report = '{}'::jsonb
         WHERE id = $1 AND status = 'open'",
    )
    .bind(id)
    .bind(c.closed_by)
    .bind(c.expected_cash_cents)
    .bind(c.counted_cash_cents)
    .bind(c.deposit_cents)
    .bind(c.note)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores the Z report of a shift being closed.
pub async fn store_report(
    conn: &mut PgConnection,
    id: Uuid,
    report: &serde_json::Value,
) -> Result<(), DbError> {
    sqlx::query("UPDATE shifts SET z_report = $2 WHERE id = $1")
        .bind(id)
        .bind(report)
        .execute(conn)
        .await?;
    Ok(())
}

/// The stored Z report of a closed shift (`None` while open).
pub async fn stored_report(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<serde_json::Value>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT z_report FROM shifts WHERE id = $1 AND status = 'closed'")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}
