//! What the web UI relies on beyond the basic auth flow.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use till_test_support::*;

#[tokio::test]
async fn me_returns_the_csrf_token_to_a_cookie_session_only() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let me = app
        .req(Method::GET, "/api/v1/auth/me")
        .header("cookie", format!("till_session={}", cashier.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let v: Value = me.json().await.unwrap();
    assert_eq!(v["csrf_token"], cashier.csrf.as_str(), "{v}");
    assert_eq!(v["user"]["role"], "cashier");

    // A bearer client needs no CSRF token and is not given one.
    let (s, v) = body(app.get("/api/v1/auth/me", Some(&cashier.token)).await).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v.get("csrf_token").is_none(), "{v}");
}
