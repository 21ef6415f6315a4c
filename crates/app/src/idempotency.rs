//! Idempotent writes: a request's answer is stored in the same transaction as its effect, so a
//! retried request gets the first answer back and never a second effect (the SQL side is
//! `till_db::idempotency`).
//!
//! A use case runs inside [`begin`]:
//!
//! ```ignore
//! let mut run = match idempotency::begin(app, caller.user_id, key).await? {
//!     Begun::Replay(answer) => return Ok(answer),
//!     Begun::Fresh(run) => run,
//! };
//! // … the effect, on &mut run.tx …
//! run.finish(render(&result)).await
//! ```
//!
//! The caller (the HTTP layer) decides what the answer looks like (`render`); this module stores
//! it and replays it unchanged. An error returned before `commit` drops the transaction:
//! nothing is stored and the key stays free for a corrected retry. Keys are scoped per user.
//!
//! Every write that a client may retry goes through [`begin`]: orders, payments, refunds and
//! transfer receipts require a key; every other POST that writes (creates, adjustments,
//! transitions, registration, and the bodiless steps: dispatch, cancel, apply, join, webhook
//! actions) honours one when it is sent (`key: None` runs the same code with nothing claimed or
//! stored). A step guarded by its status still needs this: without the stored answer, a retry
//! of a dispatch that went through would get 409 `invalid_transition` instead.

use serde_json::{Map, Value};
use till_db::idempotency::{self, Claim, Stored};
use till_db::{DbError, Postgres, Transaction};
use uuid::Uuid;

use crate::App;

/// The key and fingerprint of one request.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    /// Identifies the request (method, path and canonical body): the same key with another
    /// request is refused.
    pub request_hash: String,
}

/// An answer as sent, and as stored for replays.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// True when this is a stored answer to an earlier request with the same key.
    pub replayed: bool,
}

impl Answer {
    pub fn new(status: u16, body: Value, headers: Vec<(String, String)>) -> Answer {
        Answer {
            status,
            body,
            headers,
            replayed: false,
        }
    }

    /// Headers as stored with the answer: `{name: value}`.
    pub fn headers_json(&self) -> Value {
        let stored: Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        Value::Object(stored)
    }

    fn stored(status: u16, body: Value, headers: &Value) -> Answer {
        let headers = headers
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Answer {
            status,
            body,
            headers,
            replayed: true,
        }
    }
}

/// Why a key cannot be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyError {
    /// Another request with this key is running right now.
    #[error("a request with this idempotency key is still being processed")]
    InUse,
    /// The key was used before for a different request.
    #[error("this idempotency key was already used for a different request")]
    Reused,
}

/// What [`begin`] found.
pub enum Begun<'k> {
    /// First time: do the work in `run.tx`.
    Fresh(Run<'k>),
    /// Seen before: answer with this.
    Replay(Answer),
}

/// A transaction holding the key's lock (when a key was sent).
pub struct Run<'k> {
    pub tx: Transaction<'static, Postgres>,
    claim: Option<(String, &'k IdempotencyKey)>,
}

/// Keys are scoped per user: two callers may use the same key for different requests.
pub fn scope(caller: Uuid) -> String {
    caller.to_string()
}

/// Opens the transaction and claims the key for `caller` (a `&key` or an `Option`: without a
/// key this is a plain transaction).
pub async fn begin<'k, E>(
    app: &App,
    caller: Uuid,
    key: impl Into<Option<&'k IdempotencyKey>>,
) -> Result<Begun<'k>, E>
where
    E: From<DbError> + From<IdempotencyError>,
{
    let mut tx = app.db.write.begin().await.map_err(DbError::from)?;
    let Some(key) = key.into() else {
        return Ok(Begun::Fresh(Run { tx, claim: None }));
    };
    let scope = scope(caller);
    let outcome = match idempotency::claim(&mut tx, &scope, &key.key, &key.request_hash).await? {
        Claim::Fresh => {
            let claim = Some((scope, key));
            return Ok(Begun::Fresh(Run { tx, claim }));
        }
        other => settle(other).map(Begun::Replay),
    };
    // Release the key's lock before answering: a dropped transaction is rolled back only when
    // the pool next touches its connection, and until then a client's immediate retry would
    // find the key "in use".
    let _ = tx.rollback().await;
    Ok(outcome?)
}

/// The answer for a key found already stored (by a lookup that took no lock).
pub fn answer_stored(stored: Stored, key: &IdempotencyKey) -> Result<Answer, IdempotencyError> {
    settle(idempotency::judge(stored, &key.request_hash))
}

/// For writes that insert the key themselves: a concurrent request with this key committed
/// first, so answer as it did.
pub async fn answer_taken<E>(app: &App, caller: Uuid, key: &IdempotencyKey) -> Result<Answer, E>
where
    E: From<DbError> + From<IdempotencyError>,
{
    match idempotency::lookup(&app.db.write, &scope(caller), &key.key).await? {
        Some(stored) => Ok(answer_stored(stored, key)?),
        None => Err(IdempotencyError::InUse.into()),
    }
}

/// A found key as the answer it calls for (`Fresh` cannot reach here: nothing was found).
fn settle(claim: Claim) -> Result<Answer, IdempotencyError> {
    match claim {
        Claim::Replay {
            status,
            body,
            headers,
        } => Ok(Answer::stored(status, body, &headers)),
        Claim::Mismatch => Err(IdempotencyError::Reused),
        Claim::InUse | Claim::Fresh => Err(IdempotencyError::InUse),
    }
}

impl Run<'_> {
    /// Stores the answer in the transaction and commits: the effect and its answer together.
    pub async fn finish<E>(mut self, answer: Answer) -> Result<Answer, E>
    where
        E: From<DbError> + From<IdempotencyError>,
    {
        if let Some((scope, key)) = &self.claim {
            idempotency::save(
                &mut self.tx,
                scope,
                &key.key,
                &key.request_hash,
                answer.status,
                &answer.body,
                &answer.headers_json(),
            )
            .await
            .map_err(|e| match e {
                // The first request committed between our snapshot and our lock: it has the key.
                DbError::Unique(c) if c == idempotency::PKEY => E::from(IdempotencyError::InUse),
                e => E::from(e),
            })?;
        }
        self.tx.commit().await.map_err(DbError::from)?;
        Ok(answer)
    }
}
