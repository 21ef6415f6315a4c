//! The worker's order and stock jobs, end to end against a real database.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use till_server::worker::WorkerConfig;
use till_test_support::*;

fn config() -> WorkerConfig {
    WorkerConfig {
        concurrency: 2,
        lease: Duration::from_secs(5),
        poll: Duration::from_millis(30),
        backoff_base: Duration::from_millis(100),
        backoff_cap: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(5),
        health_addr: "127.0.0.1:0".parse().unwrap(),
    }
}

/// Runs the production worker until `done` holds (checked every 50 ms) or 15 s pass.
async fn work_until<F, Fut>(app: &TestApp, done: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let w = till_server::jobs::production_worker(app.state.app.clone(), config());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(w.run(async move {
        let _ = stopped.await;
    }));
    let until = Instant::now() + Duration::from_secs(15);
    while !done().await {
        assert!(Instant::now() < until, "worker did not get there in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    run.await.unwrap().unwrap();
}

async fn outbox_events(app: &TestApp, topic: &str) -> Vec<Value> {
    sqlx::query_scalar("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id")
        .bind(topic)
        .fetch_all(&app.state.db.write)
        .await
        .unwrap()
}

/// A 100-cent card payment taken by `token` (staff) on order `o`; returns the status.
async fn pay_100(app: &TestApp, o: &Value, token: &str) -> u16 {
    let path = format!("/api/v1/orders/{}/payments", o["id"].as_str().unwrap());
    let body = json!({"method": "card", "amount_cents": 100});
    post_idem(app, &path, token, &new_key(), body)
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn expired_online_orders_not_fully_paid_are_cancelled_unless_they_hold_money() {
    // Five open orders for one shopper: more than the default cap of 3.
    let app = TestApp::spawn_with(
        &Opts::new()
            .await
            .set("ORDER_UNPAID_TTL_MINUTES", "30")
            .set("ONLINE_OPEN_ORDERS_PER_CUSTOMER", "10"),
    )
    .await;
    let product = insert_product(&app, "BREAD-1", 350, 0, 15).await;
    let r = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "c@test.local", "password": "password-123", "name": "C"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let shopper = app.login("c@test.local", "password-123").await;
    let cashier = app.user("cashier").await;
    let manager = app.user("manager").await;
    let line = json!([{"product_id": product, "quantity": 3}]);
    let online = || {
        create_order(
            &app,
            &shopper.token,
            json!({"fulfilment": "pickup", "lines": line}),
        )
    };
    let stale = online().await;
    let fresh = online().await;
    let part_paid = online().await;
    let refunded = online().await;
    let pos = create_order(
        &app,
        &cashier.token,
        json!({"fulfilment": "pickup", "lines": [{"product_id": product, "quantity": 3}]}),
    )
    .await;
    assert_eq!(stock_of(&app, &product).await, 0);
    // Partly paid at the till: money on it. Another partly paid, then refunded in full: none.
    assert_eq!(pay_100(&app, &part_paid, &cashier.token).await, 201);
    assert_eq!(pay_100(&app, &refunded, &cashier.token).await, 201);
    let r = post_idem(
        &app,
        &format!(
            "/api/v1/orders/{}/refunds",
            refunded["id"].as_str().unwrap()
        ),
        &manager.token,
        &new_key(),
        json!({"amount_cents": 100, "reason": "changed mind"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    // Age every order but `fresh` past the 30-minute limit.
    for o in [&stale, &part_paid, &refunded, &pos] {
        exec_sql(
            &app,
            "UPDATE orders SET created_at = now() - interval '31 minutes' WHERE id = $1::uuid",
            o["id"].as_str().unwrap(),
        )
        .await;
    }
    let status = |o: &Value| {
        let id = o["id"].as_str().unwrap().to_owned();
        let db = app.state.db.write.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT status FROM orders WHERE id = $1::uuid")
                .bind(id)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    work_until(&app, || async {
        status(&stale).await == "cancelled" && status(&refunded).await == "cancelled"
    })
    .await;
    assert_eq!(status(&fresh).await, "pending", "not old enough");
    assert_eq!(
        status(&part_paid).await,
        "pending",
        "an order holding money waits for a manager's refund"
    );
    assert_eq!(
        status(&pos).await,
        "pending",
        "till orders are not online orders"
    );
    assert_eq!(
        stock_of(&app, &product).await,
        6,
        "the two cancelled orders' 3 units each are back"
    );
    for o in [&stale, &refunded] {
        let movements: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM inventory_movements WHERE reason = 'cancel' AND order_id = $1::uuid AND delta = 3",
        )
        .bind(o["id"].as_str().unwrap())
        .fetch_one(&app.state.db.write)
        .await
        .unwrap();
        assert_eq!(movements, 1);
    }
    // `order.cancelled` for webhooks; live clients see it as an `order.updated`.
    let updates = outbox_events(&app, "order.cancelled").await;
    assert!(updates
        .iter()
        .any(|e| e["order"]["id"] == stale["id"] && e["order"]["status"] == "cancelled"));

    // Running the job again changes nothing: the order with money on it is only reported.
    let n = till_app::orders::cancel_expired_unpaid(&app.state.app)
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(status(&part_paid).await, "pending");
}

#[tokio::test]
async fn a_low_stock_crossing_raises_a_staff_only_event() {
    let app = TestApp::spawn().await;
    let product = insert_product(&app, "EGGS-12", 499, 0, 5).await;
    exec_sql(
        &app,
        "UPDATE products SET low_stock_threshold = 2 WHERE id = $1::uuid",
        &product,
    )
    .await;
    let cashier = app.user("cashier").await;
    create_order(
        &app,
        &cashier.token,
        json!({"fulfilment": "in_store", "lines": [{"product_id": product, "quantity": 4}]}),
    )
    .await;
    work_until(&app, || async {
        !outbox_events(&app, "stock.low").await.is_empty()
    })
    .await;
    let events = outbox_events(&app, "stock.low").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["audience"], "staff");
    assert_eq!(events[0]["product"]["id"], product);
    assert_eq!(events[0]["product"]["stock_on_hand"], 1);
    assert_eq!(events[0]["product"]["low_stock_threshold"], 2);
}
