//! `Idempotency-Key` handling for the POSTs where API.md requires it (orders, payments, refunds).
//!
//! [`Idempotent<T>`] reads the key and the JSON body together and fingerprints the request
//! (sha256 of method, path and the body with object keys sorted, so whitespace and key order do
//! not matter). A handler then runs its effect inside [`IdempotencyKey::begin`]'s transaction:
//!
//! ```ignore
//! let mut run = match idem.key.begin(&state, who.user_id).await? {
//!     Started::Replay(resp) => return Ok(resp),
//!     Started::Fresh(run) => run,
//! };
//! // … the effect, on &mut run.tx …
//! run.save(StatusCode::CREATED, &body, headers).await?;
//! run.commit().await
//! ```
//!
//! The stored answer is written in the same transaction as the effect (till-db `idempotency`),
//! so either both happen or neither does. Order creation, whose whole write is one statement that
//! stores the key itself (till-db `checkout`), skips `begin`: it reads any stored answer first
//! ([`IdempotencyKey::answer_stored`]) and settles a key taken meanwhile with
//! [`IdempotencyKey::answer_taken`]. An error returned before `commit` drops the
//! transaction: nothing is stored and the key stays free for a corrected retry.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use till_db::idempotency::{self, Claim};
use till_db::{DbError, Postgres, Transaction};
use uuid::Uuid;

use super::json::{parse, Json};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
const MAX_KEY_LEN: usize = 255;

/// The key and fingerprint of one request.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

/// A JSON body of type `T` on a route that requires `Idempotency-Key`.
pub struct Idempotent<T> {
    pub body: T,
    pub key: IdempotencyKey,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Idempotent<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let key = key_of(req.headers())?;
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        // Our Json extractor gives the usual 415/400/413 answers; the typed parse gives the 422s.
        let Json(value) = Json::<Value>::from_request(req, state).await?;
        let canonical = canonical_json(&value);
        let body = parse::<T>(canonical.as_bytes())?;
        Ok(Idempotent {
            body,
            key: IdempotencyKey {
                key,
                request_hash: request_hash(&method, &path, &canonical),
            },
        })
    }
}

fn key_of(headers: &HeaderMap) -> ApiResult<String> {
    let required = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "idempotency_key_required",
            "Send an Idempotency-Key header (1 to 255 characters) with this request.",
        )
    };
    let raw = headers.get(HEADER).ok_or_else(required)?;
    let key = raw
        .to_str()
        .map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII."))?;
    if key.is_empty() {
        return Err(required());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 255 characters.",
        ));
    }
    Ok(key.to_owned())
}

pub fn request_hash(method: &str, path: &str, canonical_body: &str) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(canonical_body.as_bytes());
    hex::encode(h.finalize())
}

/// JSON with object keys sorted at every level and no insignificant whitespace.
pub fn canonical_json(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&m[k], out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// What [`IdempotencyKey::begin`] found.
pub enum Started<'k> {
    /// First time: do the work in `run.tx`.
    Fresh(IdempotentRun<'k>),
    /// Seen before: answer with the stored response.
    Replay(Response),
}

/// Status, body and headers of a response.
type Answer = (StatusCode, Value, Vec<(HeaderName, HeaderValue)>);

/// A transaction holding the key's lock.
pub struct IdempotentRun<'k> {
    pub tx: Transaction<'static, Postgres>,
    scope: String,
    key: &'k IdempotencyKey,
    answer: Option<Answer>,
}

impl IdempotencyKey {
    /// Opens the transaction and claims the key for `caller` (keys are scoped per user).
    pub async fn begin(&self, state: &AppState, caller: Uuid) -> ApiResult<Started<'_>> {
        let mut tx = state.db.write.begin().await.map_err(DbError::from)?;
        let scope = Self::scope(caller);
        let outcome =
            match idempotency::claim(&mut tx, &scope, &self.key, &self.request_hash).await? {
                Claim::Fresh => {
                    return Ok(Started::Fresh(IdempotentRun {
                        tx,
                        scope,
                        key: self,
                        answer: None,
                    }))
                }
                other => settle(other).map(Started::Replay),
            };
        // Release the key's lock before answering: a dropped transaction is rolled back only
        // when the pool next touches its connection, and until then a client's immediate retry
        // would find the key "in use".
        let _ = tx.rollback().await;
        outcome
    }

    /// Keys are scoped per user: two callers may use the same key for different requests.
    pub fn scope(caller: Uuid) -> String {
        caller.to_string()
    }

    /// The answer for a key found already stored (by a lookup that took no lock): the replay,
    /// or the 422/409 it calls for.
    pub fn answer_stored(&self, stored: idempotency::Stored) -> ApiResult<Response> {
        settle(idempotency::judge(stored, &self.request_hash))
    }

    /// For writes that insert the key themselves: a concurrent request with this key committed
    /// first, so answer as it did (or 422/409).
    pub async fn answer_taken(&self, state: &AppState, caller: Uuid) -> ApiResult<Response> {
        match idempotency::lookup(&state.db.write, &Self::scope(caller), &self.key).await? {
            Some(stored) => self.answer_stored(stored),
            None => Err(in_use()),
        }
    }
}

/// A found key as the response it calls for (`Fresh` cannot reach here: nothing was found).
fn settle(claim: Claim) -> ApiResult<Response> {
    match claim {
        Claim::Replay {
            status,
            body,
            headers,
        } => Ok(replay(status, body, &headers)),
        Claim::Mismatch => Err(ApiError::unprocessable(
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different request.",
        )),
        Claim::InUse | Claim::Fresh => Err(in_use()),
    }
}

/// Response headers as stored with the answer: `{name: value}`.
pub fn headers_json(headers: &[(HeaderName, HeaderValue)]) -> Value {
    let stored: Map<String, Value> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), Value::from(v.to_str().ok()?))))
        .collect();
    Value::Object(stored)
}

/// The first (not replayed) answer.
pub fn respond(
    status: StatusCode,
    body: Value,
    headers: Vec<(HeaderName, HeaderValue)>,
) -> Response {
    let mut resp = (status, Json(body)).into_response();
    for (k, v) in headers {
        resp.headers_mut().insert(k, v);
    }
    resp
}

/// 409 `idempotency_key_in_use`.
pub fn in_use() -> ApiError {
    ApiError::conflict(
        "idempotency_key_in_use",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
    )
}

fn replay(status: u16, body: Value, headers: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut resp = (status, Json(body)).into_response();
    if let Some(map) = headers.as_object() {
        for (k, v) in map {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::try_from(k.as_str()),
                v.as_str().map(HeaderValue::from_str),
            ) {
                resp.headers_mut().insert(name, value);
            }
        }
    }
    resp.headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    resp
}

impl IdempotentRun<'_> {
    /// Stores the answer in the transaction (call once the answer is known; more work may follow
    /// in the same transaction, and an error after this still rolls everything back).
    pub async fn save(
        &mut self,
        status: StatusCode,
        body: Value,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> ApiResult<()> {
        idempotency::save(
            &mut self.tx,
            &self.scope,
            &self.key.key,
            &self.key.request_hash,
            status.as_u16(),
            &body,
            &headers_json(&headers),
        )
        .await
        .map_err(|e| match e {
            // The first request committed between our snapshot and our lock: it has the key.
            DbError::Unique(c) if c == idempotency::PKEY => in_use(),
            e => e.into(),
        })?;
        self.answer = Some((status, body, headers));
        Ok(())
    }

    /// Commits and returns the saved answer.
    pub async fn commit(self) -> ApiResult<Response> {
        let Some((status, body, headers)) = self.answer else {
            return Err(ApiError::internal(
                "idempotent run committed without an answer",
            ));
        };
        self.tx.commit().await.map_err(DbError::from)?;
        Ok(respond(status, body, headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a: Value =
            serde_json::from_str(r#"{"b": [ {"y":1, "x":2} ], "a": "é\"", "c": null}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"c":null,"a":"é\"","b":[{"x":2,"y":1}]}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            r#"{"a":"é\"","b":[{"x":2,"y":1}],"c":null}"#
        );
        assert_ne!(
            request_hash("POST", "/a", &canonical_json(&a)),
            request_hash("POST", "/b", &canonical_json(&a))
        );
    }
}
