//! `?limit=&cursor=` parsing shared by every list, plus a query-string extractor that answers 422.

use axum::extract::{FromRequestParts, Query as AxumQuery};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::ApiError;

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

    /// Decodes the cursor with `decode`; a cursor that does not decode is a 422.
    pub fn decode<K>(&self, decode: impl Fn(&str) -> Option<K>) -> Result<Option<K>, ApiError> {
        match &self.cursor {
            None => Ok(None),
            Some(c) => decode(c)
                .map(Some)
                .ok_or_else(|| ApiError::field("cursor", "is not a valid cursor")),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(raw) = Query::<RawPage>::from_request_parts(parts, state).await?;
        PageQuery::from_raw(raw.limit.as_deref(), raw.cursor)
    }
}
