//! Redis is a cache, never the only copy: with it stopped, sessions and tokens issued before
//! keep working, sign-ins and sign-outs work, the tills keep selling, `/health` says
//! `degraded`; when it returns, everything carries on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use till_test_support::*;

#[tokio::test]
async fn the_tills_keep_selling_while_redis_is_down() {
    let mut redis = PrivateRedis::start();
    let mut opts = Opts::new().await;
    opts.redis_url = Some(redis.url.clone());
    let app = TestApp::spawn_with(&opts).await;
    let cashier = app.as_cashier().await;
    let by_cookie = app.as_manager().await.cookie_session();
    let product = ProductBuilder::new("REDIS-DOWN")
        .price(300)
        .stock(50)
        .insert(&app)
        .await;
    // Warm the cache: these sessions are in Redis when it goes.
    cashier.me().await.expect_status(200);
    by_cookie.me().await.expect_status(200);

    redis.stop();
    // Sessions and tokens from before the outage keep working: a sale and its payment.
    let mut sold = 0;
    for _ in 0..10 {
        let order = cashier
            .create_order(OrderBuilder::pos().line(&product, 1))
            .await;
        cashier
            .pay(
                &id_of(&order),
                json!({"method": "cash", "amount_cents": order["total_cents"]}),
            )
            .await
            .expect_status(201);
        sold += 1;
    }
    // Cookie requests too, reads and CSRF-checked writes.
    by_cookie.me().await.expect_status(200);
    by_cookie
        .post("/api/v1/categories", json!({"name": "Outage teas"}))
        .await
        .expect_status(201);
    // Signing in and out work, and a sign-out holds.
    let late = app.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    late.me().await.expect_status(200);
    late.logout().await.expect_status(204);
    late.me().await.expect_error(401, "unauthorized");
    // The catalog is served from the database and this instance's own cache tier.
    let list = app
        .anon()
        .get("/api/v1/products?q=REDIS")
        .await
        .expect_json(200);
    assert_eq!(list["items"][0]["sku"], "REDIS-DOWN");
    let health = app.anon().get("/health").await.expect_json(200);
    assert_eq!(health["status"], "degraded", "{health}");

    redis.restart();
    // Back: the same credentials, no sign-in needed.
    cashier.me().await.expect_status(200);
    by_cookie.me().await.expect_status(200);
    let p = cashier
        .get(&format!("/api/v1/products/{product}"))
        .await
        .expect_json(200);
    assert_eq!(p["stock_on_hand"], 50 - sold);
}

/// Sessions survive a Redis that lost its data (a restart without persistence): the record is
/// in PostgreSQL, and the cache fills again.
#[tokio::test]
async fn sessions_survive_a_redis_that_forgot_everything() {
    let mut redis = PrivateRedis::start();
    let mut opts = Opts::new().await;
    opts.redis_url = Some(redis.url.clone());
    let app = TestApp::spawn_with(&opts).await;
    let cashier = app.as_cashier().await;
    cashier.me().await.expect_status(200);
    redis.stop();
    redis.restart();
    cashier.me().await.expect_status(200);
}

#[derive(Default)]
struct Tally {
    sales: AtomicU64,
    cookie_requests: AtomicU64,
    failed: AtomicU64,
}

/// Redis stops and comes back while four tills ring up sales (bearer tokens) and two back-office
/// screens poll (session cookies): no sale and no cookie request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_under_checkout_load_fails_no_sale_and_no_cookie_request() {
    let mut redis = PrivateRedis::start();
    let mut opts = Opts::new().await;
    opts.redis_url = Some(redis.url.clone());
    let app = TestApp::spawn_with(&opts).await;
    let cashier = app.as_cashier().await;
    let manager = app.as_manager().await.cookie_session();
    let product = ProductBuilder::new("REDIS-LOAD")
        .price(250)
        .stock(100_000)
        .insert(&app)
        .await;
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (cashier, product) = (cashier.clone(), product.clone());
        let (tally, stop) = (tally.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = cashier
                    .post_order(OrderBuilder::pos().line(&product, 1))
                    .await;
                if r.status() != 201 {
                    eprintln!("sale failed: {} {}", r.status(), r.body);
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let paid = cashier
                    .pay(
                        &id_of(&r.body),
                        json!({"method": "cash", "amount_cents": r.body["total_cents"]}),
                    )
                    .await;
                if paid.status() == 201 {
                    tally.sales.fetch_add(1, Ordering::Relaxed);
                } else {
                    eprintln!("payment failed: {} {}", paid.status(), paid.body);
                    tally.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for _ in 0..2 {
        let (manager, tally, stop) = (manager.clone(), tally.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for path in ["/api/v1/auth/me", "/api/v1/orders?limit=5"] {
                    let r = manager.get(path).await;
                    if r.status() == 200 {
                        tally.cookie_requests.fetch_add(1, Ordering::Relaxed);
                    } else {
                        eprintln!("cookie request failed: {} {}", r.status(), r.body);
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let sales = tally.sales.load(Ordering::Relaxed);
    let cookie = tally.cookie_requests.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    println!(
        "redis outage under load: {sales} paid sales, {cookie} cookie requests, {failed} failed"
    );
    assert_eq!(failed, 0);
    assert!(sales > 0 && cookie > 0);
    let p = cashier
        .get(&format!("/api/v1/products/{product}"))
        .await
        .expect_json(200);
    assert_eq!(p["stock_on_hand"], 100_000 - sales as i64);
}
