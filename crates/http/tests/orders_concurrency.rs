//! Never oversold, exactly once: concurrent checkouts across two instances sharing PostgreSQL
//! and Redis.

use std::collections::HashMap;

use futures::future::join_all;
use rand::Rng;
use serde_json::{json, Value};
use till_test_support::*;

const ORDERS: &str = "/api/v1/orders";

async fn count_orders(app: &TestApp) -> i64 {
    count(app, "SELECT count(*) FROM orders", "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_checkouts_for_fifty_units_sell_exactly_fifty() {
    let (a, b) = TestApp::spawn_pair().await;
    let mut cashiers = Vec::new();
    for _ in 0..5 {
        cashiers.push(a.as_cashier().await);
    }
    let product = insert_product(&a, "HOT", 500, 825, 50).await;

    let requests = (0..200).map(|i| {
        let who = cashiers[i % cashiers.len()].on(if i % 2 == 0 { &a } else { &b });
        let order = OrderBuilder::pos().line(&product, 1);
        async move { who.post_order(&order).await }
    });
    let results = join_all(requests).await;
    let is_short = |r: &Resp| r.status() == 409 && r.error_code() == Some("insufficient_stock");
    let created = results.iter().filter(|r| r.status() == 201).count();
    let short: Vec<&Resp> = results.iter().filter(|r| is_short(r)).collect();
    let others: Vec<_> = results
        .iter()
        .filter(|r| !(r.status() == 201 || is_short(r)))
        .collect();
    assert!(others.is_empty(), "unexpected answers: {others:?}");
    assert_eq!(created, 50);
    assert_eq!(short.len(), 150);
    for r in short {
        assert_eq!(
            r.body["error"]["details"]["lines"],
            json!([{"product_id": product, "requested": 1, "available": 0}])
        );
    }
    assert_eq!(stock_of(&a, &product).await, 0);
    let (orders, lines, moved): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders), (SELECT COALESCE(sum(quantity), 0)::bigint FROM order_lines),
                (SELECT COALESCE(sum(delta), 0)::bigint FROM inventory_movements WHERE reason = 'sale')",
    )
    .fetch_one(&a.state.db.write)
    .await
    .unwrap();
    assert_eq!((orders, lines, moved), (50, 50, -50));
    // Every movement's balance is distinct: 49 down to 0, one per sale.
    let mut balances: Vec<i64> =
        sqlx::query_scalar("SELECT balance_after FROM inventory_movements")
            .fetch_all(&a.state.db.write)
            .await
            .unwrap();
    balances.sort();
    assert_eq!(balances, (0..50).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_baskets_and_cancels_never_deadlock_or_lose_stock() {
    let (a, b) = TestApp::spawn_pair().await;
    let mut cashiers = Vec::new();
    for _ in 0..4 {
        cashiers.push(a.as_cashier().await);
    }
    let manager = a.as_manager().await;
    const INITIAL: i64 = 40;
    let mut products = Vec::new();
    for i in 0..8 {
        products.push(insert_product(&a, &format!("P{i}"), 100 + i, 0, INITIAL).await);
    }
    let clients = (0..24).map(|c| {
        let who = if c % 6 == 5 {
            &manager
        } else {
            &cashiers[c % cashiers.len()]
        };
        let who = who.on(if c % 2 == 0 { &a } else { &b });
        let products = products.clone();
        async move {
            let mut answers = Vec::new();
            for _ in 0..6 {
                let basket = {
                    let mut rng = rand::thread_rng();
                    let n = rng.gen_range(1..=4);
                    let mut picked = products.clone();
                    // A random subset in random order: line order differs between requests.
                    for i in (1..picked.len()).rev() {
                        picked.swap(i, rng.gen_range(0..=i));
                    }
                    picked.truncate(n);
                    picked.iter().fold(OrderBuilder::pickup(), |o, p| {
                        o.line(p, rng.gen_range(1..=5))
                    })
                };
                let r = who.post_order(&basket).await;
                let cancel = rand::thread_rng().gen_bool(0.3);
                if r.status() == 201 && cancel {
                    answers.push(who.transition(&id_of(&r.body), "cancelled").await);
                }
                answers.push(r);
            }
            answers
        }
    });
    let answers: Vec<Resp> = join_all(clients).await.into_iter().flatten().collect();
    let mut created = 0;
    for r in &answers {
        let v = &r.body;
        match r.status() {
            200 => assert_eq!(v["status"], "cancelled"),
            201 => created += 1,
            409 => assert_eq!(v["error"]["code"], "insufficient_stock", "{v}"),
            s => panic!("unexpected {s}: {v}"),
        }
    }
    assert!(created > 0);

    // Per product: on hand + sold on live orders = initial; the ledger agrees with both.
    let sold: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT l.product_id::text, sum(l.quantity)::bigint FROM order_lines l JOIN orders o ON o.id = l.order_id
         WHERE o.status <> 'cancelled' GROUP BY 1",
    )
    .fetch_all(&a.state.db.write)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let ledger: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT product_id::text, sum(delta)::bigint FROM inventory_movements GROUP BY 1",
    )
    .fetch_all(&a.state.db.write)
    .await
    .unwrap()
    .into_iter()
    .collect();
    for p in &products {
        let on_hand = stock_of(&a, p).await;
        let s = sold.get(p).copied().unwrap_or(0);
        assert!(on_hand >= 0);
        assert_eq!(on_hand + s, INITIAL, "product {p}");
        assert_eq!(
            INITIAL + ledger.get(p).copied().unwrap_or(0),
            on_hand,
            "ledger of {p}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_requests_with_one_key_make_one_order() {
    let (a, b) = TestApp::spawn_pair().await;
    let cashier = a.as_cashier().await;
    let product = insert_product(&a, "ONE", 250, 0, 100).await;
    let req = OrderBuilder::pos().line(&product, 2);
    let on = |app: &TestApp| cashier.on(app).post(ORDERS, &req).idem("same-key").send();

    let results = join_all((0..20).map(|i| on(if i % 2 == 0 { &a } else { &b }))).await;
    let created: Vec<&Value> = results
        .iter()
        .filter(|r| r.status() == 201)
        .map(|r| &r.body)
        .collect();
    for r in &results {
        assert!(
            r.status() == 201
                || (r.status() == 409 && r.error_code() == Some("idempotency_key_in_use")),
            "{}: {}",
            r.status,
            r.body
        );
    }
    assert!(!created.is_empty());
    assert!(
        created.iter().all(|v| *v == created[0]),
        "every 201 is the same order"
    );
    assert_eq!(count_orders(&a).await, 1);
    assert_eq!(stock_of(&a, &product).await, 98);

    // After it finished: a replay on either instance, then a different body is refused.
    for app in [&a, &b] {
        let r = on(app).await.expect_status(201);
        assert_eq!(r.header("idempotent-replayed"), "true");
        assert_eq!(&r.body, created[0]);
    }
    cashier
        .on(&b)
        .post(ORDERS, OrderBuilder::pos().line(&product, 3))
        .idem("same-key")
        .await
        .expect_error(422, "idempotency_key_reused");
    assert_eq!(stock_of(&a, &product).await, 98);
}

#[tokio::test]
async fn a_key_being_written_elsewhere_is_409_and_free_once_that_ends() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    let product = insert_product(&app, "BUSY", 250, 0, 10).await;
    let req = OrderBuilder::pos().line(&product, 1);

    // Another request holding this key right now: the key's transaction lock, as its write takes.
    let mut other = app.state.db.write.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 0))")
        .bind(cashier.id())
        .bind("busy-key")
        .execute(&mut *other)
        .await
        .unwrap();
    let order = || cashier.post(ORDERS, &req).idem("busy-key").send();
    order().await.expect_error(409, "idempotency_key_in_use");
    assert_eq!(stock_of(&app, &product).await, 10);

    // That request ends without storing an answer: the key is free and works once.
    other.rollback().await.unwrap();
    order().await.expect_status(201);
    let r = order().await.expect_status(201);
    assert_eq!(r.header("idempotent-replayed"), "true");
    assert_eq!(stock_of(&app, &product).await, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_stored_while_a_retry_waited_is_replayed_not_written_twice() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    let product = insert_product(&app, "LATE", 250, 0, 10).await;
    let req = OrderBuilder::pos().line(&product, 1);
    let send = || cashier.post(ORDERS, &req).idem("late-key").send();
    let first = send().await.expect_json(201);

    // Stage the race: the stored answer is taken away, so the retry reads "no answer yet"; the
    // product is held, so the retry then stops inside its write (it has the key's lock); the
    // answer is stored again meanwhile, as by a request that committed in that gap.
    let pool = app.state.db.write.clone();
    let saved: (String, String, String, Option<i32>, Option<Value>) = sqlx::query_as(
        "DELETE FROM idempotency_keys WHERE key = 'late-key'
         RETURNING scope, key, request_hash, response_status, response_body",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM products WHERE id = $1::uuid FOR UPDATE")
        .bind(&product)
        .execute(&mut *holder)
        .await
        .unwrap();
    let meanwhile = async move {
        // Bounded: if the retry never waited (a regression), fail instead of hanging.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "the retry never waited for the held product"
            );
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, response_status, response_body)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(saved.0)
        .bind(saved.1)
        .bind(saved.2)
        .bind(saved.3)
        .bind(saved.4)
        .execute(&mut *holder)
        .await
        .unwrap();
        holder.commit().await.unwrap();
    };
    let (r, ()) = tokio::join!(send(), meanwhile);

    let r = r.expect_status(201);
    assert_eq!(r.header("idempotent-replayed"), "true");
    assert_eq!(r.body, first, "the stored answer, not a second order");
    assert_eq!(stock_of(&app, &product).await, 9);
    assert_eq!(count_orders(&app).await, 1);
}
