//! Register, login, logout, me, users, CSRF, roles and token tampering, over HTTP.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn register(app: &TestApp, body: Value) -> reqwest::Response {
    app.post("/api/v1/auth/register", None, body).await
}

#[tokio::test]
async fn login_me_logout_with_bearer_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    assert_eq!(admin.user["role"], "admin");
    let (s, me) = body(app.get("/api/v1/auth/me", Some(&admin.token)).await).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["user"]["email"], ADMIN_EMAIL);
    assert!(me["user"].get("password_hash").is_none());

    let r = logout(&app, &admin.token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.get("/api/v1/auth/me", Some(&admin.token)).await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn register_creates_a_customer_login() {
    let app = TestApp::spawn().await;
    let r = register(
        &app,
        json!({"email": "  Ann@Example.COM ", "password": "long-enough", "name": "Ann", "phone": "+1 (415) 555-0100"}),
    )
    .await;
    let (s, v) = body(r).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["user"]["email"], "ann@example.com");
    assert_eq!(v["user"]["role"], "customer");
    assert_eq!(v["user"]["phone"], "+14155550100");
    assert!(v["user"]["customer_id"].is_string());
    let login = app.login("ann@example.com", "long-enough").await;
    assert_eq!(login.user["customer_id"], v["user"]["customer_id"]);

    // Same email (any case) → 409; same phone already tied to a login → 409.
    let dup = register(
        &app,
        json!({"email": "ANN@example.com", "password": "long-enough", "name": "Ann"}),
    )
    .await;
    expect_error(dup, 409, "already_exists").await;
    let dup_phone = register(
        &app,
        json!({"email": "other@example.com", "password": "long-enough", "name": "Other", "phone": "415.555.0100"}),
    )
    .await;
    expect_error(dup_phone, 409, "already_exists").await;
}

#[tokio::test]
async fn register_validates_every_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let r = register(
        &app,
        json!({"email": "not-an-email", "password": "short", "name": "", "phone": "12ab"}),
    )
    .await;
    let v = expect_error(r, 422, "validation_failed").await;
    let fields = &v["error"]["details"]["fields"];
    for f in ["email", "password", "name", "phone"] {
        assert!(fields[f].is_array(), "{f} missing in {v}");
    }
    let too_long = "x".repeat(129);
    let r = register(
        &app,
        json!({"email": "a@b.co", "password": too_long, "name": "A"}),
    )
    .await;
    expect_error(r, 422, "validation_failed").await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.state.db.write)
        .await
        .unwrap();
    assert_eq!(count, 1, "only the bootstrap admin exists");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let a = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": ADMIN_EMAIL, "password": "wrong-password"}),
        )
        .await;
    let b = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "nobody@test.local", "password": "wrong-password"}),
        )
        .await;
    let va = expect_error(a, 401, "invalid_credentials").await;
    let vb = expect_error(b, 401, "invalid_credentials").await;
    assert_eq!(va["error"]["message"], vb["error"]["message"]);
}

#[tokio::test]
async fn cookie_session_needs_csrf_on_unsafe_methods() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let cookie = format!("till_session={}", cashier.cookie);

    let me = app
        .req(Method::GET, "/api/v1/auth/me")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "cookie authenticates safe requests without CSRF"
    );

    let no_token = app
        .req(Method::POST, "/api/v1/auth/logout")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    expect_error(no_token, 403, "csrf_failed").await;
    let wrong = app
        .req(Method::POST, "/api/v1/auth/logout")
        .header("cookie", &cookie)
        .header("x-csrf-token", "not-the-token")
        .send()
        .await
        .unwrap();
    expect_error(wrong, 403, "csrf_failed").await;
    // Still signed in: the refused requests changed nothing.
    let me = app
        .req(Method::GET, "/api/v1/auth/me")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);

    let ok = app
        .req(Method::POST, "/api/v1/auth/logout")
        .header("cookie", &cookie)
        .header("x-csrf-token", &cashier.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    let cleared = ok.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The session and the token issued with it are both gone.
    let me = app
        .req(Method::GET, "/api/v1/auth/me")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    expect_error(me, 401, "unauthorized").await;
    expect_error(
        app.get("/api/v1/auth/me", Some(&cashier.token)).await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn session_cookie_attributes() {
    let app = TestApp::spawn_with(&Opts::new().await.set("COOKIE_SECURE", "true")).await;
    let r = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await;
    let c = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(c.contains(attr), "{attr} missing in {c}");
    }
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 900);
}

#[tokio::test]
async fn roles_are_enforced_on_user_management() {
    let app = TestApp::spawn().await;
    expect_error(app.get("/api/v1/users", None).await, 401, "unauthorized").await;
    for role in ["manager", "cashier", "staff", "customer"] {
        let u = app.user(role).await;
        expect_error(
            app.get("/api/v1/users", Some(&u.token)).await,
            403,
            "forbidden",
        )
        .await;
        let r = app
            .post(
                "/api/v1/users",
                Some(&u.token),
                json!({"email": "x@test.local", "password": "password-123", "name": "X", "role": "admin"}),
            )
            .await;
        expect_error(r, 403, "forbidden").await;
    }
}

#[tokio::test]
async fn admin_manages_users_with_pagination_and_validation() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    for i in 0..3 {
        let r = app
            .post(
                "/api/v1/users",
                Some(&admin.token),
                json!({"email": format!("u{i}@test.local"), "password": "password-123", "name": format!("U{i}"), "role": "cashier"}),
            )
            .await;
        let (s, v) = body(r).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["role"], "cashier");
        assert_eq!(v["active"], true);
    }
    let bad_role = app
        .post(
            "/api/v1/users",
            Some(&admin.token),
            json!({"email": "z@test.local", "password": "password-123", "name": "Z", "role": "overlord"}),
        )
        .await;
    expect_error(bad_role, 422, "validation_failed").await;
    let dup = app
        .post(
            "/api/v1/users",
            Some(&admin.token),
            json!({"email": "u0@test.local", "password": "password-123", "name": "U", "role": "staff"}),
        )
        .await;
    expect_error(dup, 409, "already_exists").await;

    // Walk 4 users two at a time: no repeats, no gaps.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users?limit=2&cursor={c}"),
            None => "/api/v1/users?limit=2".into(),
        };
        let (s, v) = body(app.get(&path, Some(&admin.token)).await).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for u in v["items"].as_array().unwrap() {
            seen.push(u["email"].as_str().unwrap().to_owned());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        vec![
            ADMIN_EMAIL,
            "u0@test.local",
            "u1@test.local",
            "u2@test.local"
        ]
    );
    expect_error(
        app.get("/api/v1/users?limit=0", Some(&admin.token)).await,
        422,
        "validation_failed",
    )
    .await;
    expect_error(
        app.get("/api/v1/users?limit=101", Some(&admin.token)).await,
        422,
        "validation_failed",
    )
    .await;
    expect_error(
        app.get("/api/v1/users?cursor=garbage", Some(&admin.token))
            .await,
        422,
        "validation_failed",
    )
    .await;
    let missing = format!("/api/v1/users/{}", uuid::Uuid::now_v7());
    expect_error(
        app.patch(&missing, Some(&admin.token), json!({"name": "x"}))
            .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn deactivation_ends_sessions_everywhere_and_blocks_login() {
    let (a, b) = TestApp::spawn_pair().await;
    let admin = a.admin().await;
    let cashier = a.user("cashier").await;
    assert_eq!(
        b.get("/api/v1/auth/me", Some(&cashier.token))
            .await
            .status(),
        StatusCode::OK
    );

    let path = format!("/api/v1/users/{}", cashier.id());
    let (s, v) = body(
        a.patch(&path, Some(&admin.token), json!({"active": false}))
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["active"], false);
    // At once, on the other instance too: token and cookie.
    expect_error(
        b.get("/api/v1/auth/me", Some(&cashier.token)).await,
        401,
        "unauthorized",
    )
    .await;
    let r = b
        .req(Method::GET, "/api/v1/auth/me")
        .header("cookie", format!("till_session={}", cashier.cookie))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "unauthorized").await;
    let email = cashier.user["email"].as_str().unwrap();
    let r = b
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": email, "password": "password-123"}),
        )
        .await;
    expect_error(r, 401, "unauthorized").await;

    // Audit trail of the change.
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'user.update' AND entity_id = $1",
    )
    .bind(cashier.id())
    .fetch_one(&a.state.db.write)
    .await
    .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn role_change_revokes_old_tokens_and_last_admin_is_protected() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let staff = app.user("staff").await;
    let path = format!("/api/v1/users/{}", staff.id());
    let (s, v) = body(
        app.patch(&path, Some(&admin.token), json!({"role": "manager"}))
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    expect_error(
        app.get("/api/v1/auth/me", Some(&staff.token)).await,
        401,
        "unauthorized",
    )
    .await;

    let me = format!("/api/v1/users/{}", admin.id());
    let r = app
        .patch(&me, Some(&admin.token), json!({"active": false}))
        .await;
    expect_error(r, 409, "conflict").await;
    let r = app
        .patch(&me, Some(&admin.token), json!({"role": "cashier"}))
        .await;
    expect_error(r, 409, "conflict").await;
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&admin.token))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn tokens_and_cookies_work_on_every_instance_and_logout_is_shared() {
    let (a, b) = TestApp::spawn_pair().await;
    let cashier = a.user("cashier").await;
    let cookie = format!("till_session={}", cashier.cookie);
    for app in [&a, &b] {
        assert_eq!(
            app.get("/api/v1/auth/me", Some(&cashier.token))
                .await
                .status(),
            StatusCode::OK
        );
        let r = app
            .req(Method::GET, "/api/v1/auth/me")
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = logout(&b, &cashier.token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    expect_error(
        a.get("/api/v1/auth/me", Some(&cashier.token)).await,
        401,
        "unauthorized",
    )
    .await;
    let r = a
        .req(Method::GET, "/api/v1/auth/me")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "unauthorized").await;
}

fn forge(
    token: &str,
    header: Option<&str>,
    payload_edit: Option<(&str, Value)>,
    signature: Option<&str>,
) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let h = header
        .map(|h| URL_SAFE_NO_PAD.encode(h))
        .unwrap_or_else(|| parts[0].to_owned());
    let p = match payload_edit {
        Some((k, v)) => {
            let mut claims: Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
            claims[k] = v;
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        }
        None => parts[1].to_owned(),
    };
    format!("{h}.{p}.{}", signature.unwrap_or(parts[2]))
}

#[tokio::test]
async fn tampered_tokens_are_rejected() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let t = &cashier.token;
    let forged = [
        (
            "alg none",
            forge(t, Some(r#"{"alg":"none","typ":"JWT"}"#), None, Some("")),
        ),
        (
            "HS512 header",
            forge(t, Some(r#"{"alg":"HS512","typ":"JWT"}"#), None, None),
        ),
        (
            "role edited",
            forge(t, None, Some(("role", json!("admin"))), None),
        ),
        (
            "sub edited",
            forge(t, None, Some(("sub", json!(uuid::Uuid::now_v7()))), None),
        ),
        ("bad signature", forge(t, None, None, Some("AAAA"))),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, tok) in forged {
        let r = app.get("/api/v1/auth/me", Some(&tok)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
    // Correctly signed but expired: sign with the real secret, exp in the past.
    let mut claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(t.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    claims["exp"] = json!(chrono::Utc::now().timestamp() - 120);
    let key = jsonwebtoken::EncodingKey::from_secret(till_http::config::DEV_JWT_SECRET.as_bytes());
    let expired = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    expect_error(
        app.get("/api/v1/auth/me", Some(&expired)).await,
        401,
        "unauthorized",
    )
    .await;
    // The untampered token still works.
    assert_eq!(
        app.get("/api/v1/auth/me", Some(t)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn first_admin_is_created_once() {
    let opts = Opts::new().await;
    let a = TestApp::spawn_with(&opts).await;
    let b = TestApp::spawn_with(&opts).await;
    // Both instances bootstrapping at the same moment still make one admin.
    let (ra, rb) = tokio::join!(
        till_app::accounts::bootstrap_admin(&a.state),
        till_app::accounts::bootstrap_admin(&b.state)
    );
    assert!(!ra.unwrap() && !rb.unwrap(), "an admin already exists");
    assert_eq!(b.admin().await.user["email"], ADMIN_EMAIL);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE role = 'admin'")
        .fetch_one(&a.state.db.write)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn single_instance_mode_without_redis() {
    let app = TestApp::spawn_with(&Opts::new().await.without_redis()).await;
    let admin = app.admin().await;
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&admin.token))
            .await
            .status(),
        StatusCode::OK
    );
    let (_, h) = body(app.get("/health", None).await).await;
    assert_eq!(h["status"], "healthy");
    assert_eq!(h["cache"]["backend"], "in_process");
    let r = logout(&app, &admin.token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.get("/api/v1/auth/me", Some(&admin.token)).await,
        401,
        "unauthorized",
    )
    .await;
}
