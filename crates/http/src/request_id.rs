//! Request ids: the incoming `X-Request-Id` when it is 1..64 visible ASCII characters, else a new
//! UUID v7. Held in a task-local for the request so errors and logs can name it without threading
//! it through every call.

use axum::http::HeaderValue;

tokio::task_local! {
    static REQUEST_ID: String;
}

pub const HEADER: &str = "x-request-id";

/// The id of the request this task is serving, or `-` outside one.
pub fn current() -> String {
    REQUEST_ID
        .try_with(|r| r.clone())
        .unwrap_or_else(|_| "-".into())
}

pub fn accept_or_new(incoming: Option<&HeaderValue>) -> String {
    incoming
        .and_then(|v| v.to_str().ok())
        .filter(|s| (1..=64).contains(&s.len()) && s.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

pub async fn scope<F: std::future::Future>(id: String, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_visible_ascii_only() {
        let ok = HeaderValue::from_static("abc-123_XYZ");
        assert_eq!(accept_or_new(Some(&ok)), "abc-123_XYZ");
        let spaced = HeaderValue::from_static("has space");
        assert_ne!(accept_or_new(Some(&spaced)), "has space");
        let long = HeaderValue::from_str(&"a".repeat(65)).unwrap();
        assert_eq!(accept_or_new(Some(&long)).len(), 36);
        assert_eq!(accept_or_new(None).len(), 36);
    }
}
