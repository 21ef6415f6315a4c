//! `If-Match` for every versioned resource (products, orders): the one place its syntax is read.
//!
//! Versions are sent as entity tags `"<version>"`. Accepted: absent or `*` (no condition), a
//! strong `"3"` or weak `W/"3"` tag, a bare `3`, and a comma-separated list of those (over one
//! or more header lines), which matches when any entry equals the current version (RFC 9110
//! §13.1.1). An entry that is not a version can match nothing; a header of only such entries
//! therefore always fails with 412.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use till_app::Precondition;

/// The `If-Match` condition of a request; handlers pass `.0` to the use case, which compares
/// it with the record's version under lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfMatch(pub Precondition);

impl IfMatch {
    pub fn parse(headers: &HeaderMap) -> IfMatch {
        let mut any_header = false;
        let mut versions = Vec::new();
        for value in headers.get_all(header::IF_MATCH) {
            any_header = true;
            // Not visible ASCII: no version can be spelled like that, so nothing matches.
            let Ok(value) = value.to_str() else { continue };
            for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                if entry == "*" {
                    return IfMatch(Precondition::Any);
                }
                let tag = entry.strip_prefix("W/").unwrap_or(entry);
                let tag = tag
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .unwrap_or(tag);
                if let Ok(v) = tag.parse::<i64>() {
                    versions.push(v);
                }
            }
        }
        if any_header {
            IfMatch(Precondition::OneOf(versions))
        } else {
            IfMatch(Precondition::Any)
        }
    }

    pub fn matches(&self, version: i64) -> bool {
        self.0.matches(version)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(IfMatch::parse(&parts.headers))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with(values: &[&str]) -> IfMatch {
        let mut m = HeaderMap::new();
        for v in values {
            m.append(header::IF_MATCH, HeaderValue::from_str(v).unwrap());
        }
        IfMatch::parse(&m)
    }

    #[test]
    fn forms() {
        assert!(with(&[]).matches(3));
        assert_eq!(with(&[]).0, Precondition::Any);
        assert_eq!(with(&["*"]).0, Precondition::Any);
        assert!(with(&["\"3\""]).matches(3));
        assert!(with(&["W/\"3\""]).matches(3));
        assert!(with(&["3"]).matches(3));
        assert!(with(&["\"1\", \"3\""]).matches(3));
        assert!(with(&["\"1\", W/\"3\""]).matches(3));
        assert!(
            with(&["\"1\"", "\"3\""]).matches(3),
            "over two header lines"
        );
        assert!(with(&["\"1\", *"]).matches(3));
        assert!(!with(&["\"2\""]).matches(3));
        assert!(!with(&["\"1\", \"2\""]).matches(3));
        assert!(!with(&["\"abc\""]).matches(3));
        assert!(!with(&["\"3"]).matches(3));
    }
}
