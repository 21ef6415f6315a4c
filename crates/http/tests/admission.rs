//! Turns for API requests (`API_MAX_IN_FLIGHT`): a burst larger than the database pool waits its
//! turn and is served, not answered 503 by the pool's acquire timeout; while PostgreSQL is gone,
//! requests waiting for a turn are still told 503 within about that timeout.

use std::time::{Duration, Instant};

use serde_json::Value;
use till_test_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_sales_beyond_the_pool_waits_its_turn_and_every_sale_goes_through() {
    // Two pooled connections and a 400 ms acquire timeout: 200 sales at once queued at the pool
    // would wait far longer than 400 ms for a connection (the burst takes about 2 s), and many
    // would answer 503. (Not 100 ms: opening a connection, TLS included, takes longer than
    // that in a debug build on a slow machine, and the acquire timeout covers it.)
    let opts = Opts::new()
        .await
        .set("DATABASE_MAX_CONNECTIONS", "2")
        .set("DATABASE_ACQUIRE_TIMEOUT_MS", "400");
    let app = TestApp::spawn_with(&opts).await;
    let cashier = app.as_cashier().await;
    let product = ProductBuilder::new("BURST-1")
        .price(250)
        .stock(1_000)
        .insert(&app)
        .await;

    let sales: Vec<_> = (0..200)
        .map(|_| {
            let (cashier, product) = (cashier.clone(), product.clone());
            tokio::spawn(async move {
                let r = cashier
                    .post("/api/v1/orders", OrderBuilder::pos().line(&product, 2))
                    .idem(&new_key())
                    .await;
                (r.status(), r.body)
            })
        })
        .collect();
    for sale in sales {
        let (status, body) = sale.await.unwrap();
        assert_eq!(status, 201, "a sale in the burst answered {status}: {body}");
    }

    let p: Value = cashier
        .get(&format!("/api/v1/products/{product}"))
        .await
        .expect_json(200);
    assert_eq!(p["stock_on_hand"], 1_000 - 400);
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&app.state.db.write)
        .await
        .unwrap();
    assert_eq!(orders, 200);
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l == "till_http_waiting 0"),
        "nothing is left waiting:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_is_gone_requests_waiting_for_a_turn_answer_503_within_the_timeout() {
    // One turn and a 500 ms acquire timeout: queued behind each other, eight sales would take
    // 8 × 500 ms to be told; waiting ones give up once nothing but 503s came back for 500 ms.
    let mut opts = Opts::new()
        .await
        .set("DATABASE_ACQUIRE_TIMEOUT_MS", "500")
        .set("API_MAX_IN_FLIGHT", "1");
    let proxy = TcpProxy::start_to(target_of(&opts.db_url).await).await;
    opts.db_url = reroute(&opts.db_url, proxy.addr);
    let app = TestApp::spawn_with(&opts).await;
    let cashier = app.as_cashier().await;
    let product = ProductBuilder::new("OUTAGE-TURN")
        .price(100)
        .stock(100)
        .insert(&app)
        .await;
    proxy.stop();
    // Idle pooled connections die with the proxy; let the last successful answer age.
    tokio::time::sleep(Duration::from_millis(600)).await;

    let started = Instant::now();
    let sales: Vec<_> = (0..8)
        .map(|_| {
            let (cashier, product) = (cashier.clone(), product.clone());
            tokio::spawn(async move {
                let r = cashier
                    .post("/api/v1/orders", OrderBuilder::pos().line(&product, 1))
                    .idem(&new_key())
                    .await;
                (r.status(), r.has_header("retry-after"), r.body)
            })
        })
        .collect();
    for sale in sales {
        let (status, retry_after, body) = sale.await.unwrap();
        assert_eq!(
            status, 503,
            "a sale during the outage answered {status}: {body}"
        );
        assert!(retry_after, "503 without Retry-After: {body}");
        assert_eq!(body["error"]["code"], "service_unavailable");
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2_500),
        "the last of eight queued sales was told after {took:?}"
    );

    proxy.start().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = cashier
            .post("/api/v1/orders", OrderBuilder::pos().line(&product, 1))
            .idem(&new_key())
            .await;
        if r.status() == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no sale within 5 s of the return"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
