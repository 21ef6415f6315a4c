//! `GET /shifts`: newest opened first, keyset on (opened_at, id).

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{ShiftRow, COLS};
use crate::cursor::{self, Page};
use crate::DbError;

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub register_id: Option<Uuid>,
    pub status: Option<&'static str>,
    /// Opened at or after.
    pub from: Option<DateTime<Utc>>,
    /// Opened before.
    pub before: Option<DateTime<Utc>>,
    /// Only shifts this user opened (a cashier's own).
    pub opened_by: Option<Uuid>,
}

pub type ListCursor = (DateTime<Utc>, Uuid);

pub fn decode_cursor(c: &str) -> Option<ListCursor> {
    cursor::decode(c)
}

pub async fn list(
    pool: &PgPool,
    f: &ListFilter,
    after: Option<ListCursor>,
    limit: usize,
) -> Result<Page<ShiftRow>, DbError> {
    let mut q: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT {COLS} FROM shifts WHERE TRUE"));
    if let Some(r) = f.register_id {
        q.push(" AND register_id = ").push_bind(r);
    }
    if let Some(s) = f.status {
        q.push(" AND status = ").push_bind(s);
    }
    if let Some(t) = f.from {
        q.push(" AND opened_at >= ").push_bind(t);
    }
    if let Some(t) = f.before {
        q.push(" AND opened_at < ").push_bind(t);
    }
    if let Some(u) = f.opened_by {
        q.push(" AND opened_by = ").push_bind(u);
    }
    if let Some((at, id)) = after {
        q.push(" AND (opened_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY opened_at DESC, id DESC LIMIT ")
        .push_bind(limit as i64 + 1);
    let rows: Vec<ShiftRow> = q.build_query_as().fetch_all(pool).await?;
    Ok(Page::from_rows(rows, limit, |r| (r.opened_at, r.id)))
}
