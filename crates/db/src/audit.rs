//! The audit log of staff writes. Entries are written in the same transaction as the change.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::DbError;

/// Who did it, from where, under which request.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
#[schema(as = AuditEntry)]
pub struct AuditRow {
    pub id: Uuid,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub data: Value,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub at: DateTime<Utc>,
}

pub async fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    entity_type: &str,
    entity_id: impl ToString,
    data: Value,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO audit_log (id, actor_id, action, entity_type, entity_id, data, request_id, ip)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(Uuid::now_v7())
    .bind(actor.user_id)
    .bind(action)
    .bind(entity_type)
    .bind(entity_id.to_string())
    .bind(data)
    .bind(&actor.request_id)
    .bind(&actor.ip)
    .execute(conn)
    .await?;
    Ok(())
}

/// Filters of `GET /audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<Uuid>,
    pub action: Option<String>,
}

pub type AuditCursor = (DateTime<Utc>, Uuid);

pub fn decode_cursor(c: &str) -> Option<AuditCursor> {
    crate::cursor::decode(c)
}

/// Newest first, keyset on (at, id); each filter has its index (`audit_log_actor_idx`,
/// `audit_log_action_idx`), and only the filters given reach the SQL.
pub async fn list(
    pool: &sqlx::PgPool,
    f: &AuditFilter,
    after: Option<AuditCursor>,
    limit: usize,
) -> Result<crate::cursor::Page<AuditRow>, DbError> {
    let mut q: sqlx::QueryBuilder<sqlx::Postgres> = sqlx::QueryBuilder::new(
        "SELECT id, actor_id, action, entity_type, entity_id, data, request_id, ip, at
         FROM audit_log WHERE TRUE",
    );
    if let Some(a) = f.actor_id {
        q.push(" AND actor_id = ").push_bind(a);
    }
    if let Some(a) = &f.action {
        q.push(" AND action = ").push_bind(a.clone());
    }
    if let Some((at, id)) = after {
        q.push(" AND (at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY at DESC, id DESC LIMIT ")
        .push_bind(limit as i64 + 1);
    let rows: Vec<AuditRow> = q.build_query_as().fetch_all(pool).await?;
    Ok(crate::cursor::Page::from_rows(rows, limit, |r| {
        (r.at, r.id)
    }))
}
