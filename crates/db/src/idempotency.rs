//! Idempotency keys: a request's answer stored in the same transaction as its effect, so a
//! retried request gets the first answer back and never a second effect.
//!
//! Protocol, per transaction (see [`claim`] and [`save`]):
//! 1. `pg_try_advisory_xact_lock(till_idempotency_lock_id(scope, key))`: taken → another
//!    request with this key is running right now (409 `idempotency_key_in_use`). The lock is
//!    released by commit or rollback, so a crashed or failed request never leaves the key stuck.
//! 2. Look the key up: a stored answer with the same request hash is replayed; with a different
//!    hash the key is being reused for another request (422).
//! 3. Otherwise the caller does the work and [`save`]s the answer before committing. A request
//!    that fails (4xx) rolls back, so nothing is stored and the key stays free.
//!
//! The primary key on `(scope, key)` is the backstop: if a first request commits between this
//! statement's snapshot and its lock attempt, [`save`] hits the key and answers
//! [`DbError::Unique`] on `idempotency_keys_pkey` — never a second effect.

use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::DbError;

/// The constraint [`save`] reports when the key was stored concurrently
/// ([`DbError::Unique`] with this name).
pub const PKEY: &str = "idempotency_keys_pkey";

/// A stored answer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Stored {
    pub request_hash: String,
    pub response_status: Option<i32>,
    pub response_body: Option<Value>,
    pub response_headers: Value,
}

/// What [`claim`] found.
#[derive(Debug)]
pub enum Claim {
    /// The key is ours for this transaction: do the work, then [`save`].
    Fresh,
    /// Another request holding this key is still running.
    InUse,
    /// The key was used before for this very request: answer with this.
    Replay {
        status: u16,
        body: Value,
        headers: Value,
    },
    /// The key was used before for a different request.
    Mismatch,
}

/// Takes the key's transaction-scoped lock and looks it up, in one round trip.
pub async fn claim(
    conn: &mut PgConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
) -> Result<Claim, DbError> {
    // `till_idempotency_lock_id` (migrations/20261130100000_place_order_by_name.sql) is the one
    // definition of a key's lock id; order creation's `till_place_order` locks through it too.
    let row: (
        bool,
        Option<String>,
        Option<i32>,
        Option<Value>,
        Option<Value>,
    ) = sqlx::query_as(
        "SELECT l.locked, k.request_hash, k.response_status, k.response_body, k.response_headers
         FROM (SELECT pg_try_advisory_xact_lock(till_idempotency_lock_id($1, $2)) AS locked) l
         LEFT JOIN idempotency_keys k ON l.locked AND k.scope = $1 AND k.key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_one(&mut *conn)
    .await?;
    Ok(match row {
        (false, ..) => Claim::InUse,
        (true, None, ..) => Claim::Fresh,
        (true, Some(hash), response_status, response_body, headers) => judge(
            Stored {
                request_hash: hash,
                response_status,
                response_body,
                response_headers: headers.unwrap_or(Value::Null),
            },
            request_hash,
        ),
    })
}

/// What a stored key means for a request with fingerprint `request_hash`.
pub fn judge(stored: Stored, request_hash: &str) -> Claim {
    if stored.request_hash != request_hash {
        return Claim::Mismatch;
    }
    match (stored.response_status, stored.response_body) {
        (Some(s), Some(b)) => Claim::Replay {
            status: s as u16,
            body: b,
            headers: stored.response_headers,
        },
        // A row without an answer is never written by this code; treat it as running.
        _ => Claim::InUse,
    }
}

/// The stored answer for a key, if any (no lock: for callers whose write inserts the key).
pub async fn lookup(pool: &PgPool, scope: &str, key: &str) -> Result<Option<Stored>, DbError> {
    Ok(sqlx::query_as(
        "SELECT request_hash, response_status, response_body, response_headers
         FROM idempotency_keys WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_optional(pool)
    .await?)
}

/// Stores the answer; call in the transaction that made the effect, before committing.
pub async fn save(
    conn: &mut PgConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
    status: u16,
    body: &Value,
    headers: &Value,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO idempotency_keys
             (scope, key, request_hash, response_status, response_body, response_headers)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(scope)
    .bind(key)
    .bind(request_hash)
    .bind(i32::from(status))
    .bind(body)
    .bind(headers)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes keys older than `hours` (docs/api.md, Idempotency: keys are kept at least 24 h);
/// returns how many.
pub async fn purge_older_than(pool: &PgPool, hours: i64) -> Result<u64, DbError> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1::int)",
    )
    .bind(hours.clamp(0, i64::from(i32::MAX)) as i32)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
