//! Login sessions in the shared store: `sess:{sid}` holds the session, `usess:{user}` the set of
//! a user's session ids so that deactivation can end them all at once.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use till_cache::{Store, StoreError};
use uuid::Uuid;

pub const COOKIE: &str = "till_session";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub user_id: Uuid,
    pub role: String,
    pub customer_id: Option<Uuid>,
    pub csrf_token: String,
    pub created_at: i64,
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

fn key(sid: &str) -> String {
    format!("sess:{sid}")
}

fn user_key(user_id: Uuid) -> String {
    format!("usess:{user_id}")
}

/// Creates a session and returns its id.
pub async fn create(
    store: &Store,
    ttl: Duration,
    user_id: Uuid,
    role: &str,
    customer_id: Option<Uuid>,
) -> Result<(String, Session), StoreError> {
    let sid = random_token(32);
    let session = Session {
        user_id,
        role: role.to_owned(),
        customer_id,
        csrf_token: random_token(24),
        created_at: chrono::Utc::now().timestamp(),
    };
    let bytes = serde_json::to_vec(&session).unwrap_or_default();
    store.set(&key(&sid), &bytes, Some(ttl)).await?;
    store.sadd(&user_key(user_id), &sid, ttl).await?;
    Ok((sid, session))
}

pub async fn get(store: &Store, sid: &str) -> Result<Option<Session>, StoreError> {
    // Session ids are our own base64url tokens; anything else cannot exist, so skip the lookup.
    if sid.is_empty()
        || sid.len() > 64
        || !sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Ok(None);
    }
    Ok(store
        .get(&key(sid))
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

pub async fn end(store: &Store, sid: &str, user_id: Uuid) -> Result<(), StoreError> {
    store.del(&key(sid)).await?;
    store.srem(&user_key(user_id), sid).await
}

/// Ends every session of a user (and so every token issued with them).
pub async fn end_all(store: &Store, user_id: Uuid) -> Result<(), StoreError> {
    let sids = store.take_set(&user_key(user_id)).await?;
    let keys: Vec<String> = sids.iter().map(|s| key(s)).collect();
    store.del_many(&keys).await
}
