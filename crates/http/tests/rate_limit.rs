//! Shared rate limits: one bucket across instances, login limits, X-Forwarded-For trust.

use reqwest::{Method, StatusCode};
use serde_json::json;
use till_test_support::*;

async fn hit(app: &TestApp, xff: Option<&str>) -> reqwest::Response {
    let mut r = app.req(Method::GET, "/api/v1/no-such-route");
    if let Some(x) = xff {
        r = r.header("x-forwarded-for", x);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn anonymous_limit_is_shared_across_instances() {
    let opts = Opts::new().await.set("RATE_LIMIT_ANON_PER_MIN", "10");
    let a = TestApp::spawn_with(&opts).await;
    let b = TestApp::spawn_with(&opts).await;
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        let r = hit(app, None).await;
        assert_eq!(
            r.status(),
            StatusCode::NOT_FOUND,
            "request {i} is within the limit"
        );
        assert_eq!(r.headers()["ratelimit-limit"], "10");
        assert_eq!(
            r.headers()["ratelimit-remaining"],
            (9 - i).to_string().as_str()
        );
    }
    for app in [&a, &b] {
        let r = hit(app, None).await;
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(r.headers()["ratelimit-remaining"], "0");
        let reset: u64 = r.headers()["ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&reset));
        expect_error(r, 429, "rate_limited").await;
    }
}

#[tokio::test]
async fn signed_in_users_have_their_own_bucket() {
    let opts = Opts::new()
        .await
        .set("RATE_LIMIT_ANON_PER_MIN", "3")
        .set("RATE_LIMIT_USER_PER_MIN", "5");
    let (a, b) = (
        TestApp::spawn_with(&opts).await,
        TestApp::spawn_with(&opts).await,
    );
    let admin = a.admin().await; // one anonymous request
    for _ in 0..5 {
        assert_eq!(
            b.get("/api/v1/auth/me", Some(&admin.token)).await.status(),
            StatusCode::OK
        );
    }
    expect_error(
        a.get("/api/v1/auth/me", Some(&admin.token)).await,
        429,
        "rate_limited",
    )
    .await;
    // The anonymous bucket of the same IP is separate and still has room.
    assert_eq!(hit(&a, None).await.status(), StatusCode::NOT_FOUND);
}

async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> reqwest::Response {
    app.req(Method::POST, "/api/v1/auth/login")
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn failed_logins_are_limited_per_email_and_per_ip() {
    let opts = Opts::new()
        .await
        .set("RATE_LIMIT_LOGIN_PER_MIN", "5")
        .set("RATE_LIMIT_LOGIN_IP_PER_MIN", "3")
        .set("TRUSTED_PROXIES", "127.0.0.1");
    let (a, b) = (
        TestApp::spawn_with(&opts).await,
        TestApp::spawn_with(&opts).await,
    );
    // Per email: five failures from five client IPs, on either instance; the sixth attempt is
    // refused, even with the right password.
    for i in 0..5 {
        let app = if i % 2 == 0 { &a } else { &b };
        let r = login_from(
            app,
            &format!("203.0.113.{i}"),
            ADMIN_EMAIL,
            "wrong-password",
        )
        .await;
        expect_error(r, 401, "invalid_credentials").await;
    }
    let r = login_from(&b, "203.0.113.77", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(r.headers().contains_key("retry-after"));
    expect_error(r, 429, "rate_limited").await;

    // Per IP: one client cycling through emails is stopped too.
    for i in 0..3 {
        let r = login_from(
            &a,
            "198.51.100.9",
            &format!("guess{i}@test.local"),
            "whatever1",
        )
        .await;
        expect_error(r, 401, "invalid_credentials").await;
    }
    let r = login_from(&b, "198.51.100.9", "fresh@test.local", "whatever1").await;
    expect_error(r, 429, "rate_limited").await;
}

#[tokio::test]
async fn successful_logins_do_not_count() {
    // Opening time: every till of a shop signs in from the shop's one address.
    let opts = Opts::new()
        .await
        .set("RATE_LIMIT_LOGIN_PER_MIN", "5")
        .set("RATE_LIMIT_LOGIN_IP_PER_MIN", "60")
        .set("TRUSTED_PROXIES", "127.0.0.1");
    let app = TestApp::spawn_with(&opts).await;
    for i in 0..61 {
        let r = login_from(&app, "192.0.2.50", ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK, "good login {i}");
    }
    // Failures still count from there.
    for _ in 0..5 {
        let r = login_from(&app, "192.0.2.50", ADMIN_EMAIL, "wrong-password").await;
        expect_error(r, 401, "invalid_credentials").await;
    }
    let r = login_from(&app, "192.0.2.50", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    expect_error(r, 429, "rate_limited").await;
}

#[tokio::test]
async fn registration_has_its_own_per_ip_bucket() {
    let opts = Opts::new()
        .await
        .set("RATE_LIMIT_REGISTER_PER_MIN", "10")
        .set("TRUSTED_PROXIES", "127.0.0.1");
    let app = TestApp::spawn_with(&opts).await;
    let register = |ip: &'static str, i: usize| {
        app.req(Method::POST, "/api/v1/auth/register")
            .header("x-forwarded-for", ip)
            .json(&json!({"email": format!("r{i}@example.com"), "password": "long-enough", "name": "R"}))
            .send()
    };
    for i in 0..10 {
        assert_eq!(
            register("198.51.100.20", i).await.unwrap().status(),
            StatusCode::CREATED
        );
    }
    expect_error(
        register("198.51.100.20", 10).await.unwrap(),
        429,
        "rate_limited",
    )
    .await;
    // Another client registers, and logins are not affected.
    assert_eq!(
        register("198.51.100.21", 11).await.unwrap().status(),
        StatusCode::CREATED
    );
    let r = login_from(&app, "198.51.100.20", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn logins_stay_throttled_while_redis_is_down() {
    let mut redis = PrivateRedis::start();
    let mut opts = Opts::new()
        .await
        .set("RATE_LIMIT_LOGIN_PER_MIN", "3")
        .set("RATE_LIMIT_ANON_PER_MIN", "8");
    opts.redis_url = Some(redis.url.clone());
    let app = TestApp::spawn_with(&opts).await;
    redis.stop();
    for _ in 0..3 {
        let r = login_from(&app, "-", ADMIN_EMAIL, "wrong-password").await;
        expect_error(r, 401, "invalid_credentials").await;
    }
    let r = login_from(&app, "-", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    expect_error(r, 429, "rate_limited").await;
    // The other limits fall back to this instance's counters too (never off): 4 logins so far,
    // 4 more requests, then 429.
    for _ in 0..4 {
        assert_eq!(hit(&app, None).await.status(), StatusCode::NOT_FOUND);
    }
    expect_error(hit(&app, None).await, 429, "rate_limited").await;
}

#[tokio::test]
async fn ipv6_clients_share_a_bucket_per_64() {
    let opts = Opts::new()
        .await
        .set("RATE_LIMIT_ANON_PER_MIN", "2")
        .set("TRUSTED_PROXIES", "127.0.0.0/8");
    let app = TestApp::spawn_with(&opts).await;
    for ip in ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"] {
        assert_eq!(hit(&app, Some(ip)).await.status(), StatusCode::NOT_FOUND);
    }
    expect_error(
        hit(&app, Some("2001:db8:1:2:abcd::5")).await,
        429,
        "rate_limited",
    )
    .await;
    // The next /64 is another client.
    assert_eq!(
        hit(&app, Some("2001:db8:1:3::1")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn forged_forwarded_for_from_untrusted_peer_is_ignored() {
    // No trusted proxies: the socket peer is the client, whatever the header claims.
    let app = TestApp::spawn_with(&Opts::new().await.set("RATE_LIMIT_ANON_PER_MIN", "4")).await;
    for i in 0..4 {
        assert_eq!(
            hit(&app, Some(&format!("10.9.9.{i}"))).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    expect_error(hit(&app, Some("10.9.9.200")).await, 429, "rate_limited").await;
}

#[tokio::test]
async fn forwarded_for_from_trusted_proxy_names_the_client() {
    let opts = Opts::new()
        .await
        .set("RATE_LIMIT_ANON_PER_MIN", "2")
        .set("TRUSTED_PROXIES", "127.0.0.0/8");
    let app = TestApp::spawn_with(&opts).await;
    for _ in 0..2 {
        assert_eq!(
            hit(&app, Some("192.0.2.1")).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    expect_error(hit(&app, Some("192.0.2.1")).await, 429, "rate_limited").await;
    // A different client behind the same proxy has its own bucket; a spoofed left-most hop
    // does not help the limited client (the right-most untrusted hop counts).
    assert_eq!(
        hit(&app, Some("192.0.2.2")).await.status(),
        StatusCode::NOT_FOUND
    );
    expect_error(
        hit(&app, Some("6.6.6.6, 192.0.2.1")).await,
        429,
        "rate_limited",
    )
    .await;
}

#[tokio::test]
async fn limits_work_in_single_instance_mode() {
    let app = TestApp::spawn_with(
        &Opts::new()
            .await
            .without_redis()
            .set("RATE_LIMIT_ANON_PER_MIN", "2"),
    )
    .await;
    assert_eq!(hit(&app, None).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(hit(&app, None).await.status(), StatusCode::NOT_FOUND);
    expect_error(hit(&app, None).await, 429, "rate_limited").await;
}

#[tokio::test]
async fn large_limits_reserve_blocks_but_never_admit_more_than_the_limit() {
    // 1000/min: each instance reserves blocks of 10 hits from Redis at a time.
    let opts = Opts::new().await.set("RATE_LIMIT_ANON_PER_MIN", "1000");
    let (a, b) = (
        TestApp::spawn_with(&opts).await,
        TestApp::spawn_with(&opts).await,
    );
    let mut admitted = 0;
    let mut limited = 0;
    for i in 0..1040 {
        let app = if i % 3 == 0 { &b } else { &a };
        match hit(app, None).await.status() {
            StatusCode::NOT_FOUND => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            s => panic!("unexpected {s}"),
        }
    }
    assert!(admitted <= 1000, "never more than the limit: {admitted}");
    assert!(
        admitted >= 980,
        "at most one unused block per instance is lost: {admitted}"
    );
    assert_eq!(admitted + limited, 1040);
}
