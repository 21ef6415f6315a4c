//! Login sessions in the shared store.
//!
//! The cookie carries the session's secret id; the store knows the session only by its *handle*,
//! a SHA-256 of that id (`sess:{handle}`). Access tokens name the handle, never the id: a token's
//! payload is readable by anyone holding it, and replayed as a cookie it is hashed again and
//! finds nothing.
//!
//! PostgreSQL holds every session (`sessions`); Redis caches them for a minute at a time. While
//! Redis is unreachable, sessions and tokens keep working from PostgreSQL, and sign-ins and
//! sign-outs are recorded there.
//!
//! Every session records the user's revocation epoch (`users.auth_epoch`) as it was read at
//! login; deactivation and role changes bump that epoch in PostgreSQL and publish it to the
//! store (`uepoch:{user}`) before answering, and a session whose epoch is older is dead on every
//! instance, even one created by a login that raced the change.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use till_cache::{Store, StoreError};
use till_db::sessions::{self, SessionRow};
use till_db::{Db, DbError};
use uuid::Uuid;

pub const COOKIE: &str = "till_session";

/// How long a published epoch stays in the store before it is read from PostgreSQL again. The
/// store is a cache of the column: this bounds how long a value that could not be published
/// (the store was down during the change) can linger.
const EPOCH_CACHE_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub user_id: Uuid,
    pub role: String,
    pub customer_id: Option<Uuid>,
    pub csrf_token: String,
    pub created_at: i64,
    /// The user's `auth_epoch` when this session was issued (sessions from before epochs
    /// existed read as 0, the column's starting value).
    #[serde(default)]
    pub epoch: i64,
}

/// A new session: the cookie value (secret), the handle tokens carry, and the session.
pub struct Created {
    pub cookie: String,
    pub handle: String,
    pub session: Session,
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The handle of a session id (what tokens and the store use).
pub fn handle_of(cookie: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(cookie.as_bytes()))
}

/// Session ids and handles are our own base64url strings; anything else cannot exist, so it is
/// not looked up (nor used in a key).
fn well_formed(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn key(handle: &str) -> String {
    format!("sess:{handle}")
}

fn epoch_key(user_id: Uuid) -> String {
    format!("uepoch:{user_id}")
}

/// How long the cache keeps a session before reading it from PostgreSQL again. Short on purpose:
/// a logout while Redis was unreachable cannot delete the cached copy, and this bounds how long
/// such a copy could outlive it once Redis is back.
const CACHE_TTL: Duration = Duration::from_secs(60);

/// Why a session could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Neither PostgreSQL (the record) nor, for reads, Redis (the cache) could answer.
    #[error("session store unavailable: {0}")]
    Unavailable(#[from] DbError),
}

fn to_row(handle: &str, s: &Session, ttl: Duration) -> SessionRow {
    let created_at = chrono::DateTime::from_timestamp(s.created_at, 0).unwrap_or_default();
    SessionRow {
        handle: handle.to_owned(),
        user_id: s.user_id,
        role: s.role.clone(),
        customer_id: s.customer_id,
        csrf_token: s.csrf_token.clone(),
        epoch: s.epoch,
        created_at,
        expires_at: created_at + chrono::Duration::seconds(ttl.as_secs() as i64),
    }
}

fn from_row(r: SessionRow) -> Session {
    Session {
        user_id: r.user_id,
        role: r.role,
        customer_id: r.customer_id,
        csrf_token: r.csrf_token,
        created_at: r.created_at.timestamp(),
        epoch: r.epoch,
    }
}

/// Creates a session issued under `epoch`: recorded in PostgreSQL (the copy that counts), then
/// cached in Redis when it answers.
pub async fn create(
    store: &Store,
    db: &Db,
    ttl: Duration,
    user_id: Uuid,
    role: &str,
    customer_id: Option<Uuid>,
    epoch: i64,
) -> Result<Created, SessionError> {
    let cookie = random_token(32);
    let handle = handle_of(&cookie);
    let session = Session {
        user_id,
        role: role.to_owned(),
        customer_id,
        csrf_token: random_token(24),
        created_at: chrono::Utc::now().timestamp(),
        epoch,
    };
    sessions::insert(&db.write, &to_row(&handle, &session, ttl)).await?;
    cache(store, &handle, &session, ttl).await;
    Ok(Created {
        cookie,
        handle,
        session,
    })
}

/// Best effort: a session missing from the cache is read from PostgreSQL.
async fn cache(store: &Store, handle: &str, s: &Session, left: Duration) {
    let bytes = serde_json::to_vec(s).unwrap_or_default();
    let ttl = left.min(CACHE_TTL);
    if let Err(e) = store.set(&key(handle), &bytes, Some(ttl)).await {
        tracing::debug!(error = %e, "session not cached");
    }
}

/// The session a cookie value opens, with its handle.
pub async fn by_cookie(
    store: &Store,
    db: &Db,
    cookie: &str,
) -> Result<Option<(String, Session)>, SessionError> {
    if !well_formed(cookie) {
        return Ok(None);
    }
    let handle = handle_of(cookie);
    Ok(get(store, db, &handle).await?.map(|s| (handle, s)))
}

/// The session a handle names (as carried by an access token): from the cache, else from
/// PostgreSQL (and cached again), also while Redis is unreachable.
pub async fn get(store: &Store, db: &Db, handle: &str) -> Result<Option<Session>, SessionError> {
    if !well_formed(handle) {
        return Ok(None);
    }
    let cached = Cached::from(store.get(&key(handle)).await);
    load(store, db, handle, cached).await
}

/// What the store answered for one key; `reachable: false` when it could not be asked (then
/// nothing read from PostgreSQL is written back to it).
pub struct Cached {
    reachable: bool,
    bytes: Option<Vec<u8>>,
}

impl Cached {
    const UNREACHABLE: Cached = Cached {
        reachable: false,
        bytes: None,
    };
}

impl From<Result<Option<Vec<u8>>, StoreError>> for Cached {
    fn from(r: Result<Option<Vec<u8>>, StoreError>) -> Cached {
        match r {
            Ok(bytes) => Cached {
                reachable: true,
                bytes,
            },
            Err(_) => Cached::UNREACHABLE,
        }
    }
}

/// The session a bearer token names, with what the store holds of its user's epoch (for
/// [`epoch_from`]): every request with a token needs both, so they are asked for in one round
/// trip instead of two.
pub async fn get_with_epoch(
    store: &Store,
    db: &Db,
    handle: &str,
    user_id: Uuid,
) -> Result<Option<(Session, Cached)>, SessionError> {
    if !well_formed(handle) {
        return Ok(None);
    }
    let (session, epoch) = match store.get_many(&[&key(handle), &epoch_key(user_id)]).await {
        Ok(mut v) => {
            let epoch = v.pop().flatten();
            let session = v.pop().flatten();
            (Cached::from(Ok(session)), Cached::from(Ok(epoch)))
        }
        Err(_) => (Cached::UNREACHABLE, Cached::UNREACHABLE),
    };
    Ok(load(store, db, handle, session).await?.map(|s| (s, epoch)))
}

/// The cached session if it decodes, else the one in PostgreSQL (cached again if the store
/// could be asked).
async fn load(
    store: &Store,
    db: &Db,
    handle: &str,
    cached: Cached,
) -> Result<Option<Session>, SessionError> {
    if let Some(bytes) = &cached.bytes {
        if let Ok(s) = serde_json::from_slice::<Session>(bytes) {
            return Ok(Some(s));
        }
    }
    let Some(row) = sessions::get(&db.write, handle).await? else {
        return Ok(None);
    };
    let left = (row.expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    let session = from_row(row);
    if cached.reachable {
        cache(store, handle, &session, left).await;
    }
    Ok(Some(session))
}

/// Ends one session (logout): the record first, then the cached copy (which, if Redis is
/// unreachable now, expires within [`CACHE_TTL`]).
pub async fn end(store: &Store, db: &Db, handle: &str) -> Result<(), SessionError> {
    sessions::delete(&db.write, handle).await?;
    if let Err(e) = store.del(&key(handle)).await {
        tracing::warn!(error = %e, "a signed-out session stays cached until its cache entry expires");
    }
    Ok(())
}

/// Ends every session of a user (and so every token issued with them).
pub async fn end_all(store: &Store, db: &Db, user_id: Uuid) -> Result<(), SessionError> {
    let handles = sessions::delete_for_user(&db.write, user_id).await?;
    let keys: Vec<String> = handles.iter().map(|s| key(s)).collect();
    if let Err(e) = store.del_many(&keys).await {
        tracing::warn!(error = %e, "ended sessions stay cached until their cache entries expire");
    }
    Ok(())
}

/// Publishes a user's new epoch to the store. Never lowers it: a slower, older writer (another
/// change, or a request refilling the cache from PostgreSQL) cannot undo a newer one.
pub async fn publish_epoch(store: &Store, user_id: Uuid, epoch: i64) -> Result<(), StoreError> {
    store
        .set_max(&epoch_key(user_id), epoch, EPOCH_CACHE_TTL)
        .await
}

/// Why a user's current epoch could not be learnt.
#[derive(Debug)]
pub enum EpochError {
    /// The user no longer exists.
    NoSuchUser,
    /// Neither the store nor PostgreSQL could answer (why, for the log).
    Unavailable(String),
}

/// The user's current revocation epoch: from the store (one round trip), else from PostgreSQL
/// (then cached again), also when the store cannot answer.
pub async fn current_epoch(store: &Store, db: &Db, user_id: Uuid) -> Result<i64, EpochError> {
    let cached = Cached::from(store.get(&epoch_key(user_id)).await);
    epoch_from(store, db, user_id, cached).await
}

/// [`current_epoch`] from what the store already answered for the user's epoch key.
pub async fn epoch_from(
    store: &Store,
    db: &Db,
    user_id: Uuid,
    cached: Cached,
) -> Result<i64, EpochError> {
    if let Some(e) = cached
        .bytes
        .as_deref()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.parse::<i64>().ok())
    {
        return Ok(e);
    }
    let epoch = match till_db::users::auth_epoch(&db.write, user_id).await {
        Ok(Some(e)) => e,
        Ok(None) => return Err(EpochError::NoSuchUser),
        Err(e) => return Err(EpochError::Unavailable(e.to_string())),
    };
    if cached.reachable {
        // Best effort: the next request reads PostgreSQL again if this fails.
        let _ = store
            .set_max(&epoch_key(user_id), epoch, EPOCH_CACHE_TTL)
            .await;
    }
    Ok(epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_not_the_cookie_and_are_well_formed() {
        let cookie = random_token(32);
        let h = handle_of(&cookie);
        assert_ne!(h, cookie);
        assert!(well_formed(&h));
        // Hashing a handle again (a token's claim replayed as a cookie) names another session.
        assert_ne!(handle_of(&h), h);
        assert!(!well_formed("a b"));
        assert!(!well_formed(&"a".repeat(65)));
    }
}
