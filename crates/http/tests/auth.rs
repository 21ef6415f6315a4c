//! Register, login, logout, me, users, CSRF, roles and token tampering, over HTTP.

mod common;

use common::*;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn login_me_logout_with_bearer_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    assert_eq!(admin.user["role"], "admin");
    let (s, me) = body(app.get("/api/v1/auth/me", Some(&admin.token)).await).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["user"]["email"], ADMIN_EMAIL);
    assert!(me["user"].get("password_hash").is_none());

    let r = app
        .req(Method::POST, "/api/v1/auth/logout")
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.get("/api/v1/auth/me", Some(&admin.token)).await,
        401,
        "unauthorized",
    )
    .await;
}
