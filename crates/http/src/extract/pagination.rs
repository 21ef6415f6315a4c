//! `?limit=&cursor=` parsing shared by every list, a query-string extractor that answers 422,
//! and the guard that refuses control characters in any query parameter.

use axum::extract::{FromRequestParts, Query as AxumQuery, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::Sha256;
use till_db::cursor::Page;
use till_domain::limits;

use crate::error::ApiError;
use crate::state::AppState;

/// A query parameter (name or value) holding a C0 control character is a 422 naming it, before
/// any handler sees it (`layers::api_gate` checks every API request), so no route can pass a NUL
/// on to PostgreSQL or a log line. Such a character can only arrive percent-encoded, so a query
/// without `%` is not decoded.
#[allow(clippy::result_large_err)]
pub fn check_query_text(req: &Request) -> Result<(), Response> {
    if let Some(query) = req.uri().query().filter(|q| q.contains('%')) {
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let bad = |s: &str| limits::check_text(s, false).is_err();
            if bad(&name) || bad(&value) {
                let field = if bad(&name) { "query" } else { &name };
                return Err(
                    ApiError::field(field, "must not contain control characters").into_response(),
                );
            }
        }
    }
    Ok(())
}

/// Query-string extractor: a value of the wrong type is a 422 naming the parameter.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        AxumQuery::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|rej| ApiError::field("query", &rej.body_text()))
    }
}

#[derive(Debug, Deserialize)]
pub struct RawPage {
    limit: Option<String>,
    cursor: Option<String>,
}

/// A validated page request: `limit` 1..=100 (default 20) and the raw cursor.
#[derive(Debug, Clone)]
pub struct PageQuery {
    /// Verified: the cursor as the database layer encoded it, without its signature.
    pub limit: usize,
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn from_raw(limit: Option<&str>, cursor: Option<String>) -> Result<Self, ApiError> {
        let limit = match limit {
            None => 20,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => return Err(ApiError::field("limit", "must be an integer from 1 to 100")),
            },
        };
        Ok(PageQuery {
            limit,
            cursor: cursor.filter(|c| !c.is_empty()),
        })
    }

    /// Decodes the (already verified) cursor with `decode`; a value the decoder refuses (out of
    /// range, wrong shape) is a 422, never a database error.
    pub fn decode<K>(&self, decode: impl Fn(&str) -> Option<K>) -> Result<Option<K>, ApiError> {
        match &self.cursor {
            None => Ok(None),
            Some(c) => decode(c).map(Some).ok_or_else(bad_cursor),
        }
    }
}

fn bad_cursor() -> ApiError {
    ApiError::field("cursor", "is not a valid cursor")
}

/// Signs the cursors this server hands out (`<cursor>.<tag>`, the tag a truncated
/// HMAC-SHA256 under a key derived from `JWT_SECRET`, which every instance shares). A cursor
/// the server did not issue is refused before it is even decoded, so a forged position can
/// neither reach a query nor become a cache key.
#[derive(Clone)]
pub struct CursorKey([u8; 32]);

/// 128 bits of tag: forging one is out of reach, and the cursor stays short.
const TAG_LEN: usize = 16;

impl CursorKey {
    pub fn derive(secret: &[u8]) -> CursorKey {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"till pagination cursor v1");
        CursorKey(mac.finalize().into_bytes().into())
    }

    fn tag(&self, cursor: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(cursor.as_bytes());
        mac
    }

    pub fn sign(&self, cursor: &str) -> String {
        let tag = self.tag(cursor).finalize().into_bytes();
        format!("{cursor}.{}", URL_SAFE_NO_PAD.encode(&tag[..TAG_LEN]))
    }

    /// The cursor inside `signed` when its tag is ours (compared in constant time).
    pub fn verify<'a>(&self, signed: &'a str) -> Option<&'a str> {
        let (cursor, tag) = signed.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.tag(cursor).verify_truncated_left(&tag).ok()?;
        (tag.len() == TAG_LEN).then_some(cursor)
    }

    /// The page with its `next_cursor` signed, ready to send.
    pub fn sign_page<T>(&self, mut page: Page<T>) -> Page<T> {
        page.next_cursor = page.next_cursor.map(|c| self.sign(&c));
        page
    }
}

impl FromRequestParts<AppState> for PageQuery {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Query(raw) = Query::<RawPage>::from_request_parts(parts, state).await?;
        let mut page = PageQuery::from_raw(raw.limit.as_deref(), raw.cursor)?;
        if let Some(signed) = page.cursor.take() {
            let cursor = state.cursors.verify(&signed).ok_or_else(bad_cursor)?;
            page.cursor = Some(cursor.to_owned());
        }
        Ok(page)
    }
}
