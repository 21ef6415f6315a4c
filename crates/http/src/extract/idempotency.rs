//! `Idempotency-Key`: required on the POSTs that move money or stock for a sale (orders,
//! payments, refunds: [`Idempotent<T>`]), honoured when sent on every other POST that writes
//! ([`MaybeIdempotent<T>`]).
//!
//! Both read the key and the JSON body together and fingerprints the request
//! (sha256 of method, path and the body with object keys sorted, so whitespace and key order do
//! not matter). The mechanism itself (claim the key, run the effect, store the answer in the
//! same transaction, replay it for retries) is `till_app::idempotency`; handlers give the use
//! case a `render` that builds the answer with [`answer`], and send what comes back with
//! [`respond`].

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
pub use till_app::idempotency::{Answer, IdempotencyKey};

use super::json::{parse, Json};
use crate::error::{ApiError, ApiResult};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";
const MAX_KEY_LEN: usize = 255;

/// A JSON body of type `T` on a route that requires `Idempotency-Key`.
pub struct Idempotent<T> {
    pub body: T,
    pub key: IdempotencyKey,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Idempotent<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let key = key_of(req.headers())?;
        keyed(req, state, key).await
    }
}

/// A JSON body of type `T` on a route where `Idempotency-Key` is optional: with a key, a retry
/// gets the first answer back; without one, every request is a new write.
pub struct MaybeIdempotent<T> {
    pub body: T,
    pub key: Option<IdempotencyKey>,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for MaybeIdempotent<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !req.headers().contains_key(HEADER) {
            let Json(body) = Json::<T>::from_request(req, state).await?;
            return Ok(MaybeIdempotent { body, key: None });
        }
        let key = key_of(req.headers())?;
        let Idempotent { body, key } = keyed(req, state, key).await?;
        Ok(MaybeIdempotent {
            body,
            key: Some(key),
        })
    }
}

/// The optional `Idempotency-Key` of a POST without a body: the request is its method and path.
pub struct BodilessKey(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for BodilessKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if !parts.headers.contains_key(HEADER) {
            return Ok(BodilessKey(None));
        }
        let key = key_of(&parts.headers)?;
        Ok(BodilessKey(Some(IdempotencyKey {
            key,
            request_hash: request_hash(parts.method.as_str(), parts.uri.path(), ""),
        })))
    }
}

async fn keyed<T: DeserializeOwned, S: Send + Sync>(
    req: Request,
    state: &S,
    key: String,
) -> Result<Idempotent<T>, ApiError> {
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

/// The key of a request whose body is not JSON (an upload, a CSV import), or `None` when no
/// `Idempotency-Key` was sent; the caller fingerprints the body itself ([`request_hash`]).
pub fn optional_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    if headers.contains_key(HEADER) {
        key_of(headers).map(Some)
    } else {
        Ok(None)
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

/// An answer to store and send: status, JSON body and headers (ETag, Location).
pub fn answer(status: StatusCode, body: Value, headers: Vec<(HeaderName, HeaderValue)>) -> Answer {
    Answer::new(status.as_u16(), body, stored_headers(headers))
}

/// Headers as an [`Answer`] keeps them: lower-case names and their text.
pub fn stored_headers(headers: Vec<(HeaderName, HeaderValue)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// A `Location` header for an answer.
pub fn location(path: &str) -> Vec<(HeaderName, HeaderValue)> {
    HeaderValue::from_str(path)
        .map(|v| vec![(axum::http::header::LOCATION, v)])
        .unwrap_or_default()
}

/// An `ETag: "<version>"` header for an answer.
pub fn etag_header(version: i64) -> Vec<(HeaderName, HeaderValue)> {
    HeaderValue::from_str(&format!("\"{version}\""))
        .map(|v| vec![(axum::http::header::ETAG, v)])
        .unwrap_or_default()
}

/// The response for an answer, first or replayed (a replay says so in `Idempotent-Replayed`).
pub fn respond(a: Answer) -> Response {
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK);
    let mut resp = (status, Json(a.body)).into_response();
    for (k, v) in &a.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v))
        {
            resp.headers_mut().insert(name, value);
        }
    }
    if a.replayed {
        resp.headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    resp
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
