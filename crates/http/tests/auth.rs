//! Register, login, logout, me, users, CSRF, roles and token tampering, over HTTP.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use till_test_support::*;

const REGISTER: &str = "/api/v1/auth/register";
const LOGIN: &str = "/api/v1/auth/login";
const USERS: &str = "/api/v1/users";

fn login_body(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password})
}

#[tokio::test]
async fn login_me_logout_with_bearer_token() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    assert_eq!(admin.user()["role"], "admin");
    let me = admin.me().await.expect_json(200);
    assert_eq!(me["user"]["email"], ADMIN_EMAIL);
    assert!(me["user"].get("password_hash").is_none());

    admin.logout().await.expect_status(204);
    admin.me().await.expect_error(401, "unauthorized");
}

#[tokio::test]
async fn register_creates_a_customer_login() {
    let app = TestApp::spawn().await;
    let anon = app.anon();
    let v = anon
        .post(
            REGISTER,
            json!({"email": "  Ann@Example.COM ", "password": "long-enough", "name": "Ann", "phone": "+1 (415) 555-0100"}),
        )
        .await
        .expect_json(201);
    assert_eq!(v["user"]["email"], "ann@example.com");
    assert_eq!(v["user"]["role"], "customer");
    assert_eq!(v["user"]["phone"], "+14155550100");
    assert!(v["user"]["customer_id"].is_string());
    let login = app.sign_in("ann@example.com", "long-enough").await;
    assert_eq!(login.user()["customer_id"], v["user"]["customer_id"]);

    // Same email (any case) → 409; same phone already tied to a login → 409.
    for dup in [
        json!({"email": "ANN@example.com", "password": "long-enough", "name": "Ann"}),
        json!({"email": "other@example.com", "password": "long-enough", "name": "Other", "phone": "415.555.0100"}),
    ] {
        anon.post(REGISTER, dup)
            .await
            .expect_error(409, "already_exists");
    }
}

#[tokio::test]
async fn register_validates_every_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let anon = app.anon();
    let v = anon
        .post(
            REGISTER,
            json!({"email": "not-an-email", "password": "short", "name": "", "phone": "12ab"}),
        )
        .await
        .expect_error(422, "validation_failed");
    for f in ["email", "password", "name", "phone"] {
        assert!(
            v["error"]["details"]["fields"][f].is_array(),
            "{f} missing in {v}"
        );
    }
    anon.post(
        REGISTER,
        json!({"email": "a@b.co", "password": "x".repeat(129), "name": "A"}),
    )
    .await
    .expect_error(422, "validation_failed");
    let users = count(&app, "SELECT count(*) FROM users", "").await;
    assert_eq!(users, 1, "only the bootstrap admin exists");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let mut messages = Vec::new();
    for email in [ADMIN_EMAIL, "nobody@test.local"] {
        let v = app
            .anon()
            .post(LOGIN, login_body(email, "wrong-password"))
            .await
            .expect_error(401, "invalid_credentials");
        messages.push(v["error"]["message"].clone());
    }
    assert_eq!(messages[0], messages[1]);
}

#[tokio::test]
async fn cookie_session_needs_csrf_on_unsafe_methods() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    let cookie = cashier.cookie_only();

    assert_eq!(
        cookie.me().await.status(),
        200,
        "cookie authenticates safe requests without CSRF"
    );
    cookie.logout().await.expect_error(403, "csrf_failed");
    cookie
        .request(reqwest::Method::POST, "/api/v1/auth/logout")
        .header("x-csrf-token", "not-the-token")
        .await
        .expect_error(403, "csrf_failed");
    // Still signed in: the refused requests changed nothing.
    cookie.me().await.expect_status(200);

    let ok = cashier.cookie_session().logout().await.expect_status(204);
    let cleared = ok.header("set-cookie");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The session and the token issued with it are both gone.
    cookie.me().await.expect_error(401, "unauthorized");
    cashier.me().await.expect_error(401, "unauthorized");
}

#[tokio::test]
async fn session_cookie_attributes() {
    let app = TestApp::spawn_with(&Opts::new().await.set("COOKIE_SECURE", "true")).await;
    let r = app
        .anon()
        .post(LOGIN, login_body(ADMIN_EMAIL, ADMIN_PASSWORD))
        .await;
    let c = r.header("set-cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(c.contains(attr), "{attr} missing in {c}");
    }
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 900);
}

#[tokio::test]
async fn roles_are_enforced_on_user_management() {
    let app = TestApp::spawn().await;
    app.anon()
        .get(USERS)
        .await
        .expect_error(401, "unauthorized");
    for role in ["manager", "cashier", "staff", "customer"] {
        let u = app.as_role(role).await;
        u.get(USERS).await.expect_error(403, "forbidden");
        u.post(
            USERS,
            json!({"email": "x@test.local", "password": "password-123", "name": "X", "role": "admin"}),
        )
        .await
        .expect_error(403, "forbidden");
    }
}

#[tokio::test]
async fn admin_manages_users_with_pagination_and_validation() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let user = |email: &str, role: &str| json!({"email": email, "password": "password-123", "name": "U", "role": role});
    for i in 0..3 {
        let v = admin
            .post(USERS, user(&format!("u{i}@test.local"), "cashier"))
            .await
            .expect_json(201);
        assert_eq!(v["role"], "cashier");
        assert_eq!(v["active"], true);
    }
    admin
        .post(USERS, user("z@test.local", "overlord"))
        .await
        .expect_error(422, "validation_failed");
    admin
        .post(USERS, user("u0@test.local", "staff"))
        .await
        .expect_error(409, "already_exists");

    // Walk 4 users two at a time: no repeats, no gaps.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{USERS}?limit=2&cursor={c}"),
            None => format!("{USERS}?limit=2"),
        };
        let v = admin.get(&path).await.expect_json(200);
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
        [
            ADMIN_EMAIL,
            "u0@test.local",
            "u1@test.local",
            "u2@test.local"
        ]
    );
    for q in ["limit=0", "limit=101", "cursor=garbage"] {
        admin
            .get(&format!("{USERS}?{q}"))
            .await
            .expect_error(422, "validation_failed");
    }
    admin
        .patch(
            &format!("{USERS}/{}", uuid::Uuid::now_v7()),
            json!({"name": "x"}),
        )
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn deactivation_ends_sessions_everywhere_and_blocks_login() {
    let (a, b) = TestApp::spawn_pair().await;
    let admin = a.as_admin().await;
    let cashier = a.as_cashier().await;
    let on_b = cashier.on(&b);
    on_b.me().await.expect_status(200);

    let v = admin
        .patch(
            &format!("{USERS}/{}", cashier.id()),
            json!({"active": false}),
        )
        .await
        .expect_json(200);
    assert_eq!(v["active"], false);
    // At once, on the other instance too: token and cookie.
    on_b.me().await.expect_error(401, "unauthorized");
    on_b.cookie_only()
        .me()
        .await
        .expect_error(401, "unauthorized");
    b.anon()
        .post(LOGIN, login_body(cashier.email(), "password-123"))
        .await
        .expect_error(401, "unauthorized");

    // Audit trail of the change.
    let n = count(
        &a,
        "SELECT count(*) FROM audit_log WHERE action = 'user.update' AND entity_id = $1",
        cashier.id(),
    )
    .await;
    assert_eq!(n, 1);
}

#[tokio::test]
async fn role_change_revokes_old_tokens_and_last_admin_is_protected() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let staff = app.as_staff().await;
    admin
        .patch(
            &format!("{USERS}/{}", staff.id()),
            json!({"role": "manager"}),
        )
        .await
        .expect_status(200);
    staff.me().await.expect_error(401, "unauthorized");

    let me = format!("{USERS}/{}", admin.id());
    for change in [json!({"active": false}), json!({"role": "cashier"})] {
        admin.patch(&me, change).await.expect_error(409, "conflict");
    }
    admin.me().await.expect_status(200);
}

#[tokio::test]
async fn tokens_and_cookies_work_on_every_instance_and_logout_is_shared() {
    let (a, b) = TestApp::spawn_pair().await;
    let cashier = a.as_cashier().await;
    for app in [&a, &b] {
        cashier.on(app).me().await.expect_status(200);
        cashier.on(app).cookie_only().me().await.expect_status(200);
    }
    cashier.on(&b).logout().await.expect_status(204);
    cashier.me().await.expect_error(401, "unauthorized");
    cashier
        .cookie_only()
        .me()
        .await
        .expect_error(401, "unauthorized");
}

/// A bearer request reads its session and the user's revocation epoch from the shared store in
/// one round trip; an epoch found there is honoured as it is, without asking PostgreSQL (which
/// here still holds the old one), on every instance.
#[tokio::test]
async fn an_epoch_in_the_shared_store_ends_bearer_tokens_on_every_instance() {
    let (a, b) = TestApp::spawn_pair().await;
    let cashier = a.as_cashier().await;
    let other = a.as_cashier().await;
    cashier.on(&b).me().await.expect_status(200);
    let id: uuid::Uuid = cashier.id().parse().unwrap();
    till_http::auth::session::publish_epoch(&a.state.store, id, 1_000_000)
        .await
        .unwrap();
    cashier.on(&b).me().await.expect_error(401, "unauthorized");
    cashier.me().await.expect_error(401, "unauthorized");
    // Another user's epoch key is not consulted for this one.
    other.on(&b).me().await.expect_status(200);
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
    let cashier = app.as_cashier().await;
    let t = cashier.token();
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
        assert_eq!(cashier.with_token(&tok).me().await.status(), 401, "{what}");
    }
    // Correctly signed but expired: sign with the real secret, exp in the past.
    let mut claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(t.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    claims["exp"] = json!(chrono::Utc::now().timestamp() - 120);
    let key = jsonwebtoken::EncodingKey::from_secret(DEV_JWT_SECRET.as_bytes()).unwrap();
    let expired = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    cashier
        .with_token(&expired)
        .me()
        .await
        .expect_error(401, "unauthorized");
    // The untampered token still works.
    cashier.me().await.expect_status(200);
}

#[tokio::test]
async fn first_admin_is_created_once() {
    let opts = Opts::new().await;
    let a = TestApp::spawn_with(&opts).await;
    let b = TestApp::spawn_with(&opts).await;
    // Both instances bootstrapping at the same moment still make one admin.
    let (ra, rb) = tokio::join!(a.bootstrap_admin(), b.bootstrap_admin());
    assert!(!ra.unwrap() && !rb.unwrap(), "an admin already exists");
    assert_eq!(b.as_admin().await.email(), ADMIN_EMAIL);
    let n = count(&a, "SELECT count(*) FROM users WHERE role = 'admin'", "").await;
    assert_eq!(n, 1);
}

#[tokio::test]
async fn single_instance_mode_without_redis() {
    let app = TestApp::spawn_with(&Opts::new().await.without_redis()).await;
    let admin = app.as_admin().await;
    admin.me().await.expect_status(200);
    let h = app.anon().get("/health").await.body;
    assert_eq!(h["status"], "healthy");
    assert_eq!(h["cache"]["backend"], "in_process");
    admin.logout().await.expect_status(204);
    admin.me().await.expect_error(401, "unauthorized");
}

#[tokio::test]
async fn register_links_a_known_phone_only_to_the_same_email() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    // Walk-in customers the till already knows: one with an email, one without.
    let bob = cashier
        .post_idem(
            "/api/v1/customers",
            json!({"name": "Bob", "phone": "+14155550111", "email": "Bob@Example.com"}),
        )
        .await
        .expect_json(201);
    cashier
        .post_idem(
            "/api/v1/customers",
            json!({"name": "Walk-in", "phone": "+14155550112"}),
        )
        .await
        .expect_status(201);
    let anon = app.anon();
    // Someone else typing Bob's phone does not get Bob's history; nor does anyone get the
    // record that has no email.
    for (email, phone) in [
        ("mallory@example.com", "+14155550111"),
        ("walkin@example.com", "+14155550112"),
    ] {
        let e = anon
            .post(
                REGISTER,
                json!({"email": email, "password": "long-enough", "name": "X", "phone": phone}),
            )
            .await
            .expect_error(409, "already_exists");
        assert_eq!(e["error"]["details"]["field"], "phone");
    }
    // Bob himself (any case) is linked to his record.
    let v = anon
        .post(
            REGISTER,
            json!({"email": "bob@EXAMPLE.com", "password": "long-enough", "name": "Bob", "phone": "415-555-0111"}),
        )
        .await
        .expect_json(201);
    assert_eq!(v["user"]["customer_id"], bob["id"]);
    // An email that is taken is refused on `email` (checked before the password is hashed).
    let e = anon
        .post(
            REGISTER,
            json!({"email": "BOB@example.com", "password": "long-enough", "name": "Bob"}),
        )
        .await
        .expect_error(409, "already_exists");
    assert_eq!(e["error"]["details"]["field"], "email");
}

#[tokio::test]
async fn concurrent_registrations_with_one_phone_get_one_login() {
    let (a, b) = TestApp::spawn_pair().await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let client = if i % 2 == 0 { a.anon() } else { b.anon() };
        tasks.push(tokio::spawn(async move {
            client
                .post(
                    REGISTER,
                    json!({"email": format!("racer{i}@example.com"), "password": "long-enough",
                           "name": "Racer", "phone": "+14155550177"}),
                )
                .await
        }));
    }
    let mut created = 0;
    for t in tasks {
        let r = t.await.unwrap();
        if r.status() == 201 {
            created += 1;
        } else {
            let e = r.expect_error(409, "already_exists");
            assert_eq!(e["error"]["details"]["field"], "phone");
        }
    }
    assert_eq!(created, 1);
    let logins = count(
        &a,
        "SELECT count(*) FROM users u JOIN customers c ON c.id = u.customer_id WHERE c.phone = $1",
        "+14155550177",
    )
    .await;
    assert_eq!(logins, 1);
}

#[tokio::test]
async fn overlong_emails_are_refused_without_touching_any_store() {
    // With one failed attempt allowed per email and per IP, a counted attempt would show as 429.
    let app = TestApp::spawn_with(
        &Opts::new()
            .await
            .set("RATE_LIMIT_LOGIN_PER_MIN", "1")
            .set("RATE_LIMIT_LOGIN_IP_PER_MIN", "1"),
    )
    .await;
    let long = format!("{}@example.com", "a".repeat(250));
    for _ in 0..3 {
        app.anon()
            .post(LOGIN, login_body(&long, "whatever-1"))
            .await
            .expect_error(401, "invalid_credentials");
    }
    app.anon()
        .post(
            REGISTER,
            json!({"email": long, "password": "long-enough", "name": "Long"}),
        )
        .await
        .expect_invalid(&["email"]);
    // Nothing was counted: a real attempt is still allowed.
    app.as_admin().await;
}

#[tokio::test]
async fn a_tokens_payload_is_not_a_session_cookie() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    let login = cashier.login.clone().unwrap();
    let payload = login.token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let values: Vec<String> = claims
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().map(str::to_owned).unwrap_or(v.to_string()))
        .collect();
    assert!(values.len() >= 5, "{claims}");
    for v in &values {
        assert_ne!(v, &login.cookie, "the token carries the cookie value");
        let forged = Login {
            cookie: v.clone(),
            ..login.clone()
        };
        Client::from_login(&app, forged)
            .cookie_only()
            .me()
            .await
            .expect_error(401, "unauthorized");
    }
    // The real cookie works.
    cashier.cookie_only().me().await.expect_status(200);
}

#[tokio::test]
async fn logins_racing_a_deactivation_leave_no_working_credential() {
    let (a, b) = TestApp::spawn_pair().await;
    let admin = a.as_admin().await;
    let cashier = a.as_cashier().await;
    let email = cashier.email().to_owned();
    let mut logins = Vec::new();
    for i in 0..20 {
        let client = if i % 2 == 0 { a.anon() } else { b.anon() };
        let email = email.clone();
        logins.push(tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(i * 5)).await;
            let r = client.post(LOGIN, login_body(&email, USER_PASSWORD)).await;
            (r.status(), r)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    admin
        .patch(
            &format!("{USERS}/{}", cashier.id()),
            json!({"active": false}),
        )
        .await
        .expect_status(200);
    let mut issued = 0;
    for t in logins {
        let (status, r) = t.await.unwrap();
        if status != 200 {
            r.expect_error(401, "unauthorized");
            continue;
        }
        issued += 1;
        let cookie = r
            .header_all("set-cookie")
            .iter()
            .find_map(|v| v.strip_prefix("till_session="))
            .and_then(|v| v.split(';').next())
            .unwrap()
            .to_owned();
        let login = Login {
            token: r.json()["access_token"].as_str().unwrap().to_owned(),
            csrf: r.json()["csrf_token"].as_str().unwrap().to_owned(),
            cookie,
            user: r.json()["user"].clone(),
        };
        for app in [&a, &b] {
            let c = Client::from_login(app, login.clone());
            c.me().await.expect_error(401, "unauthorized");
            c.cookie_only().me().await.expect_error(401, "unauthorized");
        }
    }
    // Logins that finished before the change, during it, or after it (refused): none of their
    // credentials outlives the PATCH, nor does the session the cashier had.
    eprintln!("{issued} of 20 racing logins were issued credentials");
    cashier.me().await.expect_error(401, "unauthorized");
}
