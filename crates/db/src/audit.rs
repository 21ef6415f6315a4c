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

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
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
