//! The error envelope everywhere: axum's own rejections, unknown routes, limits, request ids.

use reqwest::{Method, StatusCode};
use till_test_support::*;

#[tokio::test]
async fn unknown_routes_and_methods_use_the_envelope() {
    let app = TestApp::spawn().await;
    expect_error(
        app.get("/api/v1/nothing/here", None).await,
        404,
        "not_found",
    )
    .await;
    expect_error(app.get("/not-api", None).await, 404, "not_found").await;
    let r = app
        .req(Method::DELETE, "/api/v1/auth/login")
        .send()
        .await
        .unwrap();
    expect_error(r, 405, "method_not_allowed").await;
    let r = app.req(Method::POST, "/health").send().await.unwrap();
    expect_error(r, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn bodies_are_json_only_and_size_limited() {
    let app = TestApp::spawn_with(&Opts::new().await.set("MAX_BODY_BYTES", "1024")).await;
    let login = "/api/v1/auth/login";
    let r = app
        .req(Method::POST, login)
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    expect_error(r, 415, "unsupported_media_type").await;
    let r = app
        .req(Method::POST, login)
        .body(r#"{"email":"a"}"#)
        .send()
        .await
        .unwrap();
    expect_error(r, 415, "unsupported_media_type").await;
    let r = app
        .req(Method::POST, login)
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "bad_request").await;
    let big = format!(r#"{{"email":"{}","password":"x"}}"#, "a".repeat(4096));
    let r = app
        .req(Method::POST, login)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    expect_error(r, 413, "payload_too_large").await;
    // Wrong JSON types are a 422 naming the field, without internals.
    let r = app
        .req(Method::POST, "/api/v1/auth/register")
        .header("content-type", "application/json")
        .body(r#"{"email":"a@b.co","password":"password-1","name":5}"#)
        .send()
        .await
        .unwrap();
    let v = expect_error(r, 422, "validation_failed").await;
    assert!(v["error"]["details"]["fields"]["name"].is_array(), "{v}");
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let r = app
        .req(Method::GET, "/api/v1/nope")
        .header("x-request-id", "till-abc_123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "till-abc_123");
    let v = expect_error(r, 404, "not_found").await;
    assert_eq!(v["error"]["request_id"], "till-abc_123");

    let too_long = "x".repeat(65);
    let r = app
        .req(Method::GET, "/health/liveness")
        .header("x-request-id", &too_long)
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, too_long);
    assert_eq!(id.len(), 36);
    let r = app
        .req(Method::GET, "/health/liveness")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"].len(), 36);
}

#[tokio::test]
async fn security_headers_and_compression() {
    let app = TestApp::spawn().await;
    for encoding in ["gzip", "br"] {
        let r = app
            .req(Method::GET, "/metrics")
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-encoding"], encoding);
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        // Data, not a page: it may load nothing (HTML pages get the document policy, see
        // openapi.rs).
        assert_eq!(
            r.headers()["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
    }
    // An error is data too.
    let r = app
        .req(Method::GET, "/api/v1/no-such-thing")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
}

async fn boom() -> &'static str {
    panic!("secret internal detail")
}

async fn slow() -> &'static str {
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    "late"
}

#[tokio::test]
async fn panics_are_500_and_slow_requests_503_in_the_envelope() {
    let extra = axum::Router::new()
        .route("/test/boom", axum::routing::get(boom))
        .route("/test/slow", axum::routing::get(slow));
    let opts = Opts::new().await.set("REQUEST_TIMEOUT_SECONDS", "1");
    let app = TestApp::spawn_with_routes(&opts, extra).await;
    let v = expect_error(app.get("/api/v1/test/boom", None).await, 500, "internal").await;
    assert!(!v.to_string().contains("secret internal detail"), "{v}");
    // The server survives the panic.
    assert_eq!(
        app.get("/health/liveness", None).await.status(),
        StatusCode::OK
    );
    let started = std::time::Instant::now();
    let r = app.get("/api/v1/test/slow", None).await;
    assert!(r.headers().contains_key("retry-after"));
    expect_error(r, 503, "service_unavailable").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

#[tokio::test]
async fn rewritten_errors_keep_the_security_headers() {
    // The body-limit layer answers a plain 413 before any handler; the envelope rewrites it.
    let app = TestApp::spawn_with(&Opts::new().await.set("MAX_BODY_BYTES", "64")).await;
    let r = app
        .req(Method::POST, "/api/v1/auth/login")
        .header("content-type", "application/json")
        .body("x".repeat(1000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    expect_error(r, 413, "payload_too_large").await;
}

/// Values PostgreSQL refuses (SQLSTATE class 22) are the client's fault: 422, never 500, and
/// nothing is written.
#[tokio::test]
async fn values_the_database_refuses_are_422_not_500() {
    let app = TestApp::spawn().await;
    let manager = app.as_manager().await;
    // A NUL byte in a search reaches PostgreSQL's text type, which cannot hold it.
    let r = app.anon().get("/api/v1/products?q=a%00b").send().await;
    r.expect_error(422, "validation_failed");
    // Year −5000 parses as a timestamp but is outside PostgreSQL's range.
    let r = manager
        .get("/api/v1/orders?created_from=-5000-01-01T00:00:00Z")
        .send()
        .await;
    r.expect_error(422, "validation_failed");
    // A NUL byte in a product's name: refused, and no product was made.
    let body = ProductBuilder::new("NUL-1").name("Nul\u{0}Name").body();
    let r = manager.post_idem("/api/v1/products", body).send().await;
    r.expect_error(422, "validation_failed");
    let n = manager
        .get("/api/v1/products?q=Nul")
        .send()
        .await
        .expect_json(200);
    assert_eq!(n["items"].as_array().map(Vec::len), Some(0));
}
