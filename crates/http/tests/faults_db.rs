//! PostgreSQL failing under a running shop: every statement is bounded by a server-side
//! `statement_timeout`; while the database is gone requests answer 503 with `Retry-After`
//! within the acquire timeout (never a hang, never a 500); when it returns the tills sell again
//! within 5 s by themselves, and stock, orders and the ledger agree.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use till_test_support::*;

#[tokio::test]
async fn every_connection_carries_the_statement_timeout_and_a_cancelled_statement_is_unavailable() {
    let opts = Opts::new()
        .await
        .set("DATABASE_STATEMENT_TIMEOUT_MS", "300");
    let app = TestApp::spawn_with(&opts).await;
    let shown: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&app.state.db.write)
        .await
        .unwrap();
    assert_eq!(shown, "300ms");
    let started = Instant::now();
    let err = sqlx::query("SELECT pg_sleep(5)")
        .execute(&app.state.db.read)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(
            till_db::DbError::from(err),
            till_db::DbError::Unavailable(_)
        ),
        "a statement cancelled by statement_timeout is the database's trouble, not the input's"
    );
}

#[derive(Default)]
struct Tally {
    created: AtomicU64,
    unavailable: AtomicU64,
    slowest_ms: AtomicU64,
    /// When the most recent 201 arrived, to measure recovery.
    last_created: Mutex<Option<Instant>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_during_checkout_answers_503_then_recovers_with_consistent_stock() {
    let mut opts = Opts::new().await.set("DATABASE_ACQUIRE_TIMEOUT_MS", "1000");
    let proxy = TcpProxy::start_to(target_of(&opts.db_url).await).await;
    opts.db_url = reroute(&opts.db_url, proxy.addr);
    let app = TestApp::spawn_with(&opts).await;
    let cashier = app.as_cashier().await;
    let product = ProductBuilder::new("PG-OUTAGE")
        .price(100)
        .stock(100_000)
        .insert(&app)
        .await;

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tills = Vec::new();
    for _ in 0..4 {
        let (cashier, product) = (cashier.clone(), product.clone());
        let (tally, stop) = (tally.clone(), stop.clone());
        tills.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                // One sale, retried with its key until it is in: a till never gives up a sale.
                let key = new_key();
                loop {
                    let sent = Instant::now();
                    let r = cashier
                        .post("/api/v1/orders", OrderBuilder::pos().line(&product, 1))
                        .idem(&key)
                        .await;
                    let ms = sent.elapsed().as_millis() as u64;
                    tally.slowest_ms.fetch_max(ms, Ordering::Relaxed);
                    match r.status() {
                        201 => {
                            tally.created.fetch_add(1, Ordering::Relaxed);
                            *tally.last_created.lock().unwrap() = Some(Instant::now());
                            break;
                        }
                        503 => {
                            assert!(r.has_header("retry-after"), "503 without Retry-After");
                            tally.unavailable.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        other => panic!("a sale answered {other}: {}", r.body),
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let back = Instant::now();
    proxy.start().await;
    // Back by itself: a sale goes through within 5 s of the database's return.
    let recovered = loop {
        let last = *tally.last_created.lock().unwrap();
        if let Some(t) = last.filter(|t| *t > back) {
            break t - back;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "no sale within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tills {
        t.await.unwrap();
    }
    let created = tally.created.load(Ordering::Relaxed);
    let unavailable = tally.unavailable.load(Ordering::Relaxed);
    let slowest = tally.slowest_ms.load(Ordering::Relaxed);
    println!(
        "outage: {created} sales, {unavailable} answers 503, slowest {slowest} ms, \
         recovered in {} ms",
        recovered.as_millis()
    );
    assert!(unavailable > 0, "the outage was never noticed");
    assert!(slowest < 4000, "a request hung for {slowest} ms");

    // Every sale once: orders, stock and the ledger agree.
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&app.state.db.write)
        .await
        .unwrap();
    assert_eq!(
        orders as u64, created,
        "one order per sale, none half-written"
    );
    let p: Value = cashier
        .get(&format!("/api/v1/products/{product}"))
        .await
        .expect_json(200);
    assert_eq!(p["stock_on_hand"], 100_000 - created as i64);
    let moved: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(delta), 0)::bigint FROM inventory_movements WHERE product_id = $1::uuid",
    )
    .bind(&product)
    .fetch_one(&app.state.db.write)
    .await
    .unwrap();
    assert_eq!(moved, -(created as i64));
}
