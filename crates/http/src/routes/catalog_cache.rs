//! How the catalog uses the two-tier cache (`till_cache::TieredCache`, in `state.catalog`).
//!
//! * What is cached: whole response bodies (already-serialised JSON, plus the product's ETag),
//!   so a hit costs no database work and no serialisation. "Not found" is cached too: a
//!   scanner repeating an unknown code must not hammer PostgreSQL.
//! * Keys name the caller's visibility (`a` = active products only, `i` = inactive included
//!   for manager+), so a manager's view never leaks to a customer.
//! * Every catalog or stock write invalidates after its commit (`till_app::catalog`); every
//!   instance then drops its copies within milliseconds, at most 1 s if a message is lost.
//! * Hits and misses are counted into `state.metrics` (shown on `/health/detailed`).

use std::future::Future;
use std::sync::atomic::Ordering;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A cacheable answer.
pub(crate) enum Cached {
    NotFound,
    Json { etag: Option<i64>, body: Bytes },
}

impl Cached {
    pub(crate) fn json<T: Serialize>(value: &T, etag: Option<i64>) -> ApiResult<Cached> {
        let body = serde_json::to_vec(value).map_err(ApiError::internal)?;
        Ok(Cached::Json {
            etag,
            body: Bytes::from(body),
        })
    }

    /// One tag byte (0 not found, 1 body, 2 ETag + body), then the 8-byte version, then JSON.
    fn encode(self) -> Bytes {
        match self {
            Cached::NotFound => Bytes::from_static(&[0]),
            Cached::Json { etag, body } => {
                let mut b = BytesMut::with_capacity(body.len() + 9);
                match etag {
                    None => b.put_u8(1),
                    Some(v) => {
                        b.put_u8(2);
                        b.put_i64(v);
                    }
                }
                b.put_slice(&body);
                b.freeze()
            }
        }
    }

    fn decode(b: Bytes) -> Cached {
        match b.first() {
            Some(1) => Cached::Json {
                etag: None,
                body: b.slice(1..),
            },
            Some(2) if b.len() >= 9 => {
                let mut v = [0u8; 8];
                v.copy_from_slice(&b[1..9]);
                Cached::Json {
                    etag: Some(i64::from_be_bytes(v)),
                    body: b.slice(9..),
                }
            }
            _ => Cached::NotFound,
        }
    }

    fn into_response(self) -> ApiResult<Response> {
        match self {
            Cached::NotFound => Err(ApiError::not_found()),
            Cached::Json { etag, body } => Ok(json_response(StatusCode::OK, etag, body)),
        }
    }
}

/// A JSON body with an optional `ETag: "<version>"`.
pub(crate) fn json_response(status: StatusCode, etag: Option<i64>, body: Bytes) -> Response {
    let mut resp = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Some(v) = etag.and_then(|v| HeaderValue::from_str(&format!("\"{v}\"")).ok()) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// Answers from the cache under `key`, running `load` on a miss (once per instance however
/// many requests wait for it).
pub(crate) async fn read<F, Fut>(state: &AppState, key: &str, load: F) -> ApiResult<Response>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult<Cached>>,
{
    let key = bounded_key(key);
    let got = state
        .catalog
        .get_or_load(&key, || async { load().await.map(Cached::encode) })
        .await;
    match got {
        Ok((bytes, source)) => {
            let counter = if source.is_hit() {
                &state.metrics.cache_hits
            } else {
                &state.metrics.cache_misses
            };
            counter.fetch_add(1, Ordering::Relaxed);
            Cached::decode(bytes).into_response()
        }
        // The loader's error is shared by every request that waited on it.
        Err(e) => Err(copy_error(&e)),
    }
}

fn copy_error(e: &ApiError) -> ApiError {
    ApiError {
        status: e.status,
        code: e.code,
        message: e.message.clone(),
        details: e.details.clone(),
        retry_after: e.retry_after,
        source: e.source.clone(),
    }
}

/// Keys longer than this are replaced by their digest.
const MAX_KEY_LEN: usize = 80;

/// A cache key of bounded length. Keys built from client text (`q`, a scanned code) could
/// otherwise grow to the query-string limit in both tiers; cursors are already bounded because
/// only signed ones reach here. Every entry also expires (1 s locally, `shared_ttl` in Redis), so
/// a stream of distinct searches cannot pile up.
pub(crate) fn bounded_key(key: &str) -> std::borrow::Cow<'_, str> {
    if key.len() <= MAX_KEY_LEN {
        return key.into();
    }
    // The prefix up to the first ':' keeps what kind of entry this is readable in Redis.
    let kind = key.split(':').next().unwrap_or_default();
    format!("{kind}:#{}", hex::encode(Sha256::digest(key.as_bytes()))).into()
}

/// Key part for the caller's visibility.
pub(crate) fn vis(include_inactive: bool) -> &'static str {
    if include_inactive {
        "i"
    } else {
        "a"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_digested() {
        assert_eq!(bounded_key("p:a:123"), "p:a:123");
        let long = format!("list:a::20::{}", "x".repeat(500));
        let k = bounded_key(&long);
        assert!(k.len() <= MAX_KEY_LEN && k.starts_with("list:#"), "{k}");
        assert_ne!(k, bounded_key(&format!("{long}y")));
    }

    #[test]
    fn framing_round_trips() {
        let body = Bytes::from_static(b"{\"a\":1}");
        for etag in [None, Some(7), Some(-1)] {
            match Cached::decode(
                Cached::Json {
                    etag,
                    body: body.clone(),
                }
                .encode(),
            ) {
                Cached::Json { etag: e, body: b } => assert_eq!((e, b), (etag, body.clone())),
                Cached::NotFound => panic!("decoded as not found"),
            }
        }
        assert!(matches!(
            Cached::decode(Cached::NotFound.encode()),
            Cached::NotFound
        ));
    }
}
