//! Transfers between locations: their rows, lines and receipts. The stock they move is written
//! through [`crate::ledger`]; the rules (what may happen in which status) are till-app's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::types::Json;
use sqlx::AssertSqlSafe;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::cursor::{self, Page};
use crate::DbError;

/// One product of a transfer; outstanding (in transit) = quantity − received − damaged.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransferLine {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub received: i64,
    pub damaged: i64,
}

impl TransferLine {
    pub fn outstanding(&self) -> i64 {
        self.quantity - self.received - self.damaged
    }
}

/// One entry of a transfer's history.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = TransferStatusChange)]
pub struct StatusChange {
    pub status: String,
    pub at: DateTime<Utc>,
    pub by: Option<Uuid>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: Uuid,
    number: i64,
    status: String,
    from_location_id: Uuid,
    to_location_id: Uuid,
    note: Option<String>,
    created_by: Option<Uuid>,
    status_history: Json<Vec<StatusChange>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    lines: Json<Vec<TransferLine>>,
}

/// A whole transfer, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Transfer {
    pub id: Uuid,
    /// Short and human-readable, increasing.
    pub number: String,
    /// `draft`, `in_transit`, `partially_received`, `received` or `cancelled`.
    pub status: String,
    pub from_location_id: Uuid,
    pub to_location_id: Uuid,
    pub lines: Vec<TransferLine>,
    pub note: Option<String>,
    pub created_by: Option<Uuid>,
    pub status_history: Vec<StatusChange>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Row> for Transfer {
    fn from(r: Row) -> Self {
        Transfer {
            id: r.id,
            number: r.number.to_string(),
            status: r.status,
            from_location_id: r.from_location_id,
            to_location_id: r.to_location_id,
            lines: r.lines.0,
            note: r.note,
            created_by: r.created_by,
            status_history: r.status_history.0,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const SELECT: &str = "SELECT t.id, t.number, t.status, t.from_location_id, t.to_location_id, \
    t.note, t.created_by, t.status_history, t.version, t.created_at, t.updated_at, \
    (SELECT COALESCE(json_agg(json_build_object('product_id', l.product_id, 'sku', l.sku, \
        'name', l.name, 'quantity', l.quantity, 'received', l.received, 'damaged', l.damaged) \
        ORDER BY l.line_no), '[]') FROM transfer_lines l WHERE l.transfer_id = t.id) AS lines \
    FROM transfers t";

/// A product as a transfer line needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProductForTransfer {
    pub id: Uuid,
    pub track_stock: bool,
}

/// The products among `ids` that exist.
pub async fn products(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<ProductForTransfer>, DbError> {
    Ok(
        sqlx::query_as("SELECT id, track_stock FROM products WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(conn)
            .await?,
    )
}

/// A new draft transfer; lines copy the product's SKU and name.
pub async fn insert(
    conn: &mut PgConnection,
    from: Uuid,
    to: Uuid,
    note: Option<&str>,
    by: Uuid,
    lines: &[(Uuid, i64)],
) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    let ids: Vec<Uuid> = lines.iter().map(|l| l.0).collect();
    let qty: Vec<i64> = lines.iter().map(|l| l.1).collect();
    sqlx::query(
        "WITH t AS (
             INSERT INTO transfers (id, status, from_location_id, to_location_id, note, created_by,
                                    status_history)
             VALUES ($1, 'draft', $2, $3, $4, $5,
                     jsonb_build_array(jsonb_build_object('status', 'draft', 'at', now(), 'by', $5)))
         )
         INSERT INTO transfer_lines (transfer_id, line_no, product_id, sku, name, quantity)
         SELECT $1, u.n, p.id, p.sku, p.name, u.qty
         FROM unnest($6::uuid[], $7::bigint[]) WITH ORDINALITY AS u(product_id, qty, n)
         JOIN products p ON p.id = u.product_id",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(note)
    .bind(by)
    .bind(&ids)
    .bind(&qty)
    .execute(conn)
    .await?;
    Ok(id)
}

/// The whole transfer, or `None`.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Transfer>, DbError> {
    let row: Option<Row> = sqlx::query_as(AssertSqlSafe(format!("{SELECT} WHERE t.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(Transfer::from))
}

/// Locks the transfer row for the rest of the transaction and returns it whole.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<Transfer>, DbError> {
    let locked: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM transfers WHERE id = $1 FOR NO KEY UPDATE")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    if locked.is_none() {
        return Ok(None);
    }
    get(conn, id).await
}

/// Moves a locked transfer to `status`, bumps its version and appends to its history.
pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    by: Uuid,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE transfers SET status = $2, version = version + 1, updated_at = now(),
             status_history = status_history
                 || jsonb_build_array(jsonb_build_object('status', $2, 'at', now(), 'by', $3))
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds a receipt's units to the lines (the CHECK keeps received + damaged <= quantity) and
/// stores the receipt; returns its id.
pub async fn add_receipt(
    conn: &mut PgConnection,
    id: Uuid,
    by: Uuid,
    lines: &[(Uuid, i64, i64)],
) -> Result<Value, DbError> {
    let ids: Vec<Uuid> = lines.iter().map(|l| l.0).collect();
    let received: Vec<i64> = lines.iter().map(|l| l.1).collect();
    let damaged: Vec<i64> = lines.iter().map(|l| l.2).collect();
    sqlx::query(
        "UPDATE transfer_lines tl SET received = tl.received + u.received,
                                      damaged = tl.damaged + u.damaged
         FROM unnest($2::uuid[], $3::bigint[], $4::bigint[]) AS u(product_id, received, damaged)
         WHERE tl.transfer_id = $1 AND tl.product_id = u.product_id",
    )
    .bind(id)
    .bind(&ids)
    .bind(&received)
    .bind(&damaged)
    .execute(&mut *conn)
    .await?;
    let receipt_lines: Vec<Value> = lines
        .iter()
        .map(|l| json!({"product_id": l.0, "received": l.1, "damaged": l.2}))
        .collect();
    let receipt_id = Uuid::now_v7();
    let (created_at,): (DateTime<Utc>,) = sqlx::query_as(
        "INSERT INTO transfer_receipts (id, transfer_id, lines, created_by) VALUES ($1, $2, $3, $4)
         RETURNING created_at",
    )
    .bind(receipt_id)
    .bind(id)
    .bind(Json(&receipt_lines))
    .bind(by)
    .fetch_one(conn)
    .await?;
    Ok(
        json!({"id": receipt_id, "transfer_id": id, "lines": receipt_lines,
              "created_by": by, "created_at": created_at}),
    )
}

/// Keyset cursor of the transfer list: the last row's (created_at, id).
pub type TransferCursor = (DateTime<Utc>, Uuid);

pub fn decode_cursor(c: &str) -> Option<TransferCursor> {
    cursor::decode(c)
}

/// Transfers newest first, optionally of one status and/or from or to one location.
pub async fn list(
    pool: &PgPool,
    status: Option<&str>,
    location_id: Option<Uuid>,
    before: Option<TransferCursor>,
    limit: usize,
) -> Result<Page<Transfer>, DbError> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
    q.push(" WHERE TRUE");
    if let Some(s) = status {
        q.push(" AND t.status = ").push_bind(s.to_owned());
    }
    if let Some(l) = location_id {
        q.push(" AND (t.from_location_id = ")
            .push_bind(l)
            .push(" OR t.to_location_id = ")
            .push_bind(l)
            .push(")");
    }
    if let Some((at, id)) = before {
        q.push(" AND (t.created_at, t.id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY t.created_at DESC, t.id DESC LIMIT ")
        .push_bind(limit as i64 + 1);
    let rows: Vec<Row> = q.build_query_as().fetch_all(pool).await?;
    let rows: Vec<Transfer> = rows.into_iter().map(Transfer::from).collect();
    Ok(Page::from_rows(rows, limit, |t| (t.created_at, t.id)))
}

/// Units in transit over every transfer (the invariant's second term).
pub async fn units_in_transit(conn: &mut PgConnection) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT COALESCE(sum(l.quantity - l.received - l.damaged), 0)::bigint
         FROM transfer_lines l JOIN transfers t ON t.id = l.transfer_id
         WHERE t.status IN ('in_transit', 'partially_received')",
    )
    .fetch_one(conn)
    .await?)
}

/// Makes sure a level row exists at `location_id` for each product (0 on hand), so the levels
/// list shows the units on their way there. The default location has no rows (it always lists
/// every tracked product).
pub async fn ensure_levels(
    conn: &mut PgConnection,
    location_id: Uuid,
    ids: &[Uuid],
) -> Result<(), DbError> {
    let mut sorted = ids.to_vec();
    sorted.sort();
    sqlx::query(
        "INSERT INTO stock_levels (product_id, location_id, on_hand)
         SELECT u.id, $1, 0 FROM unnest($2::uuid[]) AS u(id)
         WHERE $1 <> till_default_location_id()
         ORDER BY u.id
         ON CONFLICT (product_id, location_id) DO NOTHING",
    )
    .bind(location_id)
    .bind(&sorted)
    .execute(conn)
    .await?;
    Ok(())
}
