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
        metrics_addr: None,
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

#[tokio::test]
async fn unpaid_online_orders_are_cancelled_and_restocked() {
    let app = TestApp::spawn_with(&Opts::new().await.set("ORDER_UNPAID_TTL_MINUTES", "30")).await;
    let product = insert_product(&app, "BREAD-1", 350, 0, 10).await;
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
    let line = json!([{"product_id": product, "quantity": 3}]);
    let stale = create_order(
        &app,
        &shopper.token,
        json!({"fulfilment": "pickup", "lines": line}),
    )
    .await;
    let fresh = create_order(
        &app,
        &shopper.token,
        json!({"fulfilment": "pickup", "lines": line}),
    )
    .await;
    let paid = create_order(
        &app,
        &shopper.token,
        json!({"fulfilment": "pickup", "lines": line}),
    )
    .await;
    let pos = create_order(
        &app,
        &cashier.token,
        json!({"fulfilment": "pickup", "lines": [{"product_id": product, "quantity": 1}]}),
    )
    .await;
    assert_eq!(stock_of(&app, &product).await, 0);
    let r = post_idem(
        &app,
        &format!("/api/v1/orders/{}/payments", paid["id"].as_str().unwrap()),
        &shopper.token,
        &new_key(),
        json!({"method": "card", "amount_cents": 100}),
    )
    .await;
    assert_eq!(r.status(), 201);
    // Age every order but `fresh` past the 30-minute limit.
    for o in [&stale, &paid, &pos] {
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
    work_until(&app, || async { status(&stale).await == "cancelled" }).await;
    assert_eq!(status(&fresh).await, "pending", "not old enough");
    assert_eq!(
        status(&paid).await,
        "pending",
        "partly paid orders are kept"
    );
    assert_eq!(
        status(&pos).await,
        "pending",
        "till orders are not online orders"
    );
    assert_eq!(
        stock_of(&app, &product).await,
        3,
        "the cancelled order's 3 units are back"
    );
    let movements: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inventory_movements WHERE reason = 'cancel' AND order_id = $1::uuid AND delta = 3",
    )
    .bind(stale["id"].as_str().unwrap())
    .fetch_one(&app.state.db.write)
    .await
    .unwrap();
    assert_eq!(movements, 1);
    let updates = outbox_events(&app, "order.updated").await;
    assert!(updates
        .iter()
        .any(|e| e["order"]["id"] == stale["id"] && e["order"]["status"] == "cancelled"));
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
