//! Redis is a cache, never the only copy: with it stopped, sessions and tokens issued before
//! keep working, sign-ins and sign-outs work, the tills keep selling, `/health` says
//! `degraded`; when it returns, everything carries on.

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
