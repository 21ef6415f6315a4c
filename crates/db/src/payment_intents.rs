//! Payment intents: an online payment the provider is asked to take. Created for an order's
//! balance due; settled by the provider's signed callback (succeeded: one `card` payment with
//! `payments.intent_id` set, unique; failed: nothing paid). Writes lock the intent row, so
//! concurrent deliveries of one callback queue and the second finds it settled.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::orders::Payment;
use crate::DbError;

/// Where an intent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Waiting for the provider.
    RequiresConfirmation,
    /// Paid: its payment is on the order.
    Succeeded,
    /// The provider could not take the money; nothing was paid.
    Failed,
}

impl IntentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IntentStatus::RequiresConfirmation => "requires_confirmation",
            IntentStatus::Succeeded => "succeeded",
            IntentStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, DbError> {
        match s {
            "requires_confirmation" => Ok(IntentStatus::RequiresConfirmation),
            "succeeded" => Ok(IntentStatus::Succeeded),
            "failed" => Ok(IntentStatus::Failed),
            other => Err(DbError::Other(sqlx::Error::Decode(
                format!("payment_intents.status: unexpected value {other:?}").into(),
            ))),
        }
    }
}

/// An intent as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Intent {
    pub id: Uuid,
    pub order_id: Uuid,
    pub amount_cents: i64,
    pub status: IntentStatus,
    /// The provider's reference, once it has called back.
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    order_id: Uuid,
    amount_cents: i64,
    status: String,
    reference: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<Row> for Intent {
    type Error = DbError;
    fn try_from(r: Row) -> Result<Self, DbError> {
        Ok(Intent {
            id: r.id,
            order_id: r.order_id,
            amount_cents: r.amount_cents,
            status: IntentStatus::parse(&r.status)?,
            reference: r.reference,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const COLS: &str = "id, order_id, amount_cents, status, reference, created_at, updated_at";

/// A new intent for `amount_cents` on an order the caller has locked.
pub async fn create(
    conn: &mut PgConnection,
    order_id: Uuid,
    amount_cents: i64,
    created_by: Uuid,
) -> Result<Intent, DbError> {
    let row: Row = sqlx::query_as(AssertSqlSafe(format!(
        "INSERT INTO payment_intents (id, order_id, amount_cents, created_by)
         VALUES ($1, $2, $3, $4) RETURNING {COLS}"
    )))
    .bind(Uuid::now_v7())
    .bind(order_id)
    .bind(amount_cents)
    .bind(created_by)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// The intent, locked for the rest of the transaction, with who created it; or `NotFound`.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<(Intent, Option<Uuid>), DbError> {
    #[derive(sqlx::FromRow)]
    struct Locked {
        #[sqlx(flatten)]
        row: Row,
        created_by: Option<Uuid>,
    }
    let l: Locked = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLS}, created_by FROM payment_intents WHERE id = $1 FOR NO KEY UPDATE"
    )))
    .bind(id)
    .fetch_one(conn)
    .await?;
    Ok((l.row.try_into()?, l.created_by))
}

/// The intent without a lock (for reads), or `NotFound`.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Intent, DbError> {
    let row: Row = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLS} FROM payment_intents WHERE id = $1"
    )))
    .bind(id)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Settles a locked intent: its new status and the provider's reference.
pub async fn settle(
    conn: &mut PgConnection,
    id: Uuid,
    status: IntentStatus,
    reference: Option<&str>,
) -> Result<Intent, DbError> {
    let row: Row = sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE payment_intents SET status = $2, reference = COALESCE($3, reference),
             updated_at = now()
         WHERE id = $1 RETURNING {COLS}"
    )))
    .bind(id)
    .bind(status.as_str())
    .bind(reference)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// The payment an intent made, if it made one.
pub async fn payment_of(conn: &mut PgConnection, id: Uuid) -> Result<Option<Payment>, DbError> {
    let p: Option<sqlx::types::Json<Payment>> =
        sqlx::query_scalar("SELECT to_json(p) FROM payments p WHERE p.intent_id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(p.map(|j| j.0))
}
