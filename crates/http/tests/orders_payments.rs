//! Payments and refunds: split tenders, change, payment status, auto-completion of in-store
//! orders, every error, roles, concurrency and restock limits.

mod common;

use common::*;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn pay(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    post_idem(
        app,
        &format!("/api/v1/orders/{id}/payments"),
        token,
        &new_key(),
        body,
    )
    .await
}

async fn refund(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    post_idem(
        app,
        &format!("/api/v1/orders/{id}/refunds"),
        token,
        &new_key(),
        body,
    )
    .await
}

/// A 1000 + 8.25 % tax = 1083 order (`fulfilment` as given).
async fn order_of_1083(app: &TestApp, token: &str, product: &str, fulfilment: &str) -> Value {
    create_order(
        app,
        token,
        json!({"fulfilment": fulfilment, "lines": [{"product_id": product, "quantity": 1}]}),
    )
    .await
}

#[tokio::test]
async fn split_tenders_with_change_complete_an_in_store_order() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let p = insert_product(&app, "P", 1000, 825, 10).await;
    let o = order_of_1083(&app, &cashier.token, &p, "in_store").await;
    let id = o["id"].as_str().unwrap();
    assert_eq!(o["total_cents"], 1083);

    // Cash 500 from a 2000 note: 1500 change.
    let r = pay(
        &app,
        &cashier.token,
        id,
        json!({"method": "cash", "amount_cents": 500, "tendered_cents": 2000}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["etag"], "\"2\"");
    let (_, v) = body(r).await;
    let pay1 = &v["payment"];
    assert_eq!(
        (
            pay1["method"].as_str(),
            pay1["amount_cents"].as_i64(),
            pay1["tendered_cents"].as_i64(),
            pay1["change_cents"].as_i64()
        ),
        (Some("cash"), Some(500), Some(2000), Some(1500))
    );
    assert!(pay1["id"].is_string() && pay1["created_at"].is_string());
    assert_eq!(pay1["reference"], Value::Null);
    assert_eq!(v["order"]["paid_cents"], 500);
    assert_eq!(v["order"]["balance_due_cents"], 583);
    assert_eq!(v["order"]["payment_status"], "partially_paid");
    assert_eq!(v["order"]["status"], "pending");

    // Card for the rest: fully paid, so the in-store order completes by itself.
    let (s, v) = body(
        pay(
            &app,
            &cashier.token,
            id,
            json!({"method": "card", "amount_cents": 583, "reference": "auth-77"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["payment"]["tendered_cents"], Value::Null);
    assert_eq!(v["payment"]["change_cents"], 0);
    assert_eq!(v["payment"]["reference"], "auth-77");
    let o = &v["order"];
    assert_eq!(
        (o["paid_cents"].as_i64(), o["balance_due_cents"].as_i64()),
        (Some(1083), Some(0))
    );
    assert_eq!(o["payment_status"], "paid");
    assert_eq!(o["status"], "completed");
    assert_eq!(o["version"], 3);
    assert_eq!(o["payments"].as_array().unwrap().len(), 2);
    let last = o["status_history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["status"].as_str(), last["by"].as_str()),
        (Some("completed"), Some(cashier.id()))
    );

    // Nothing is due now: even one cent more is an overpayment.
    let v = expect_error(
        pay(
            &app,
            &cashier.token,
            id,
            json!({"method": "cash", "amount_cents": 1}),
        )
        .await,
        422,
        "overpayment",
    )
    .await;
    assert_eq!(v["error"]["details"]["balance_due_cents"], 0);

    // Cash without tendered_cents is exact cash; a pickup order does not complete on payment.
    let o = order_of_1083(&app, &cashier.token, &p, "pickup").await;
    let (_, v) = body(
        pay(
            &app,
            &cashier.token,
            o["id"].as_str().unwrap(),
            json!({"method": "cash", "amount_cents": 1083}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (
            v["payment"]["tendered_cents"].as_i64(),
            v["payment"]["change_cents"].as_i64()
        ),
        (Some(1083), Some(0))
    );
    assert_eq!(v["order"]["payment_status"], "paid");
    assert_eq!(v["order"]["status"], "pending");

    // Payments are audited.
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'order.payment' AND actor_id = $1::uuid",
    )
    .bind(cashier.id())
    .fetch_one(&app.state.db.write)
    .await
    .unwrap();
    assert_eq!(n, 3);
}

#[tokio::test]
async fn payment_errors_and_roles() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let staff = app.user("staff").await;
    let customer = app.user("customer").await;
    let other = app.user("customer").await;
    let p = insert_product(&app, "P", 1000, 825, 10).await;
    let o = order_of_1083(&app, &cashier.token, &p, "pickup").await;
    let id = o["id"].as_str().unwrap();

    for (req, field) in [
        (json!({"method": "cash", "amount_cents": 0}), "amount_cents"),
        (
            json!({"method": "cash", "amount_cents": -5}),
            "amount_cents",
        ),
        (
            json!({"method": "cash", "amount_cents": 500, "tendered_cents": 499}),
            "tendered_cents",
        ),
        (
            json!({"method": "card", "amount_cents": 500, "tendered_cents": 500}),
            "tendered_cents",
        ),
        (json!({"method": "cheque", "amount_cents": 500}), "method"),
        (
            json!({"method": "cash", "amount_cents": 5.5}),
            "amount_cents",
        ),
        (
            json!({"method": "other", "amount_cents": 5, "reference": "x".repeat(201)}),
            "reference",
        ),
    ] {
        let v = expect_error(
            pay(&app, &cashier.token, id, req.clone()).await,
            422,
            "validation_failed",
        )
        .await;
        assert!(
            v["error"]["details"]["fields"][field].is_array(),
            "{req}: {v}"
        );
    }
    let v = expect_error(
        pay(
            &app,
            &cashier.token,
            id,
            json!({"method": "card", "amount_cents": 1084}),
        )
        .await,
        422,
        "overpayment",
    )
    .await;
    assert_eq!(v["error"]["details"]["balance_due_cents"], 1083);
    let r = app
        .post(
            &format!("/api/v1/orders/{id}/payments"),
            Some(&cashier.token),
            json!({"method": "card", "amount_cents": 1}),
        )
        .await;
    expect_error(r, 400, "idempotency_key_required").await;
    // Customers: their own order, by card only; another's does not exist for them. Staff run
    // the board but take no money.
    let mine = create_order(
        &app,
        &customer.token,
        json!({"fulfilment": "pickup", "lines": [{"product_id": p, "quantity": 1}]}),
    )
    .await;
    let mine_id = mine["id"].as_str().unwrap();
    let missing = uuid::Uuid::now_v7().to_string();
    let card = |cents: i64| json!({"method": "card", "amount_cents": cents});
    for (who, order, req, status, code) in [
        (&cashier, missing.as_str(), card(1), 404, "not_found"),
        (&staff, id, card(1), 403, "forbidden"),
        (
            &customer,
            mine_id,
            json!({"method": "cash", "amount_cents": 100}),
            403,
            "forbidden",
        ),
        (&other, mine_id, card(100), 404, "not_found"),
        (&customer, id, card(100), 404, "not_found"),
    ] {
        expect_error(pay(&app, &who.token, order, req).await, status, code).await;
    }
    let (s, v) = body(
        pay(
            &app,
            &customer.token,
            mine_id,
            json!({"method": "card", "amount_cents": 1083}),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v["order"]["payment_status"], "paid");

    // Nothing above changed the first order.
    let (_, now) = body(
        app.get(&format!("/api/v1/orders/{id}"), Some(&cashier.token))
            .await,
    )
    .await;
    assert_eq!(now, o);

    // Replays: same key, same answer, one payment.
    let path = format!("/api/v1/orders/{id}/payments");
    let first = post_idem(
        &app,
        &path,
        &cashier.token,
        "tender-1",
        json!({"method": "card", "amount_cents": 83}),
    )
    .await;
    let (s1, v1) = body(first).await;
    assert_eq!(s1, StatusCode::CREATED);
    let again = post_idem(
        &app,
        &path,
        &cashier.token,
        "tender-1",
        json!({"method": "card", "amount_cents": 83}),
    )
    .await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(body(again).await.1, v1);
    let r = post_idem(
        &app,
        &path,
        &cashier.token,
        "tender-1",
        json!({"method": "card", "amount_cents": 84}),
    )
    .await;
    expect_error(r, 422, "idempotency_key_reused").await;
    let (_, now) = body(
        app.get(&format!("/api/v1/orders/{id}"), Some(&cashier.token))
            .await,
    )
    .await;
    assert_eq!(now["paid_cents"], 83);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tenders_never_overpay() {
    let (a, b) = TestApp::spawn_pair().await;
    let cashier = a.user("cashier").await;
    let p = insert_product(&a, "P", 1000, 0, 10).await;
    let o = create_order(
        &a,
        &cashier.token,
        json!({"fulfilment": "pickup", "lines": [{"product_id": p, "quantity": 1}]}),
    )
    .await;
    let id = o["id"].as_str().unwrap().to_owned();
    let sends = (0..12).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        let (token, id) = (cashier.token.clone(), id.clone());
        async move {
            body(
                pay(
                    app,
                    &token,
                    &id,
                    json!({"method": "card", "amount_cents": 400}),
                )
                .await,
            )
            .await
        }
    });
    let results = join_all(sends).await;
    let ok = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let over = results
        .iter()
        .filter(|(s, v)| s.as_u16() == 422 && v["error"]["code"] == "overpayment")
        .count();
    assert_eq!((ok, over), (2, 10), "{results:?}");
    let (_, now) = body(
        a.get(&format!("/api/v1/orders/{id}"), Some(&cashier.token))
            .await,
    )
    .await;
    assert_eq!(
        (
            now["paid_cents"].as_i64(),
            now["balance_due_cents"].as_i64()
        ),
        (Some(800), Some(200))
    );
}

#[tokio::test]
async fn refunds_money_and_goods_within_limits() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let manager = app.user("manager").await;
    let a = insert_product(&app, "A", 1000, 0, 10).await;
    let b = insert_product(&app, "B", 500, 0, 10).await;
    let svc = insert_product(&app, "SVC", 200, 0, 0).await;
    exec_sql(
        &app,
        "UPDATE products SET track_stock = false WHERE id = $1::uuid",
        &svc,
    )
    .await;
    let o = create_order(
        &app,
        &cashier.token,
        json!({"fulfilment": "pickup", "lines": [{"product_id": a, "quantity": 3}, {"product_id": b, "quantity": 1}, {"product_id": svc, "quantity": 1}]}),
    )
    .await;
    let id = o["id"].as_str().unwrap();
    assert_eq!(o["total_cents"], 3700);

    // Nothing paid yet: nothing to refund.
    let v = expect_error(
        refund(
            &app,
            &manager.token,
            id,
            json!({"amount_cents": 1, "reason": "x"}),
        )
        .await,
        422,
        "over_refund",
    )
    .await;
    assert_eq!(v["error"]["details"]["refundable_cents"], 0);
    assert_eq!(
        body(
            pay(
                &app,
                &cashier.token,
                id,
                json!({"method": "card", "amount_cents": 3000})
            )
            .await
        )
        .await
        .0,
        StatusCode::CREATED
    );

    // Cashiers cannot refund; bad bodies are 422.
    expect_error(
        refund(
            &app,
            &cashier.token,
            id,
            json!({"amount_cents": 100, "reason": "x"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    for (req, field) in [
        (json!({"amount_cents": 0, "reason": "x"}), "amount_cents"),
        (json!({"amount_cents": 100, "reason": "  "}), "reason"),
        (
            json!({"amount_cents": 100, "reason": "x", "restock": [{"product_id": a, "quantity": 0}]}),
            "restock[0].quantity",
        ),
        (
            json!({"amount_cents": 100, "reason": "x", "restock": [{"product_id": a, "quantity": 1}, {"product_id": a, "quantity": 1}]}),
            "restock[1].product_id",
        ),
        (
            json!({"amount_cents": 100, "reason": "x", "restock": [{"product_id": a, "quantity": 4}]}),
            "restock[0].quantity",
        ),
        (
            json!({"amount_cents": 100, "reason": "x", "restock": [{"product_id": svc, "quantity": 1}]}),
            "restock[0].product_id",
        ),
        (
            json!({"amount_cents": 100, "reason": "x", "restock": [{"product_id": uuid::Uuid::now_v7(), "quantity": 1}]}),
            "restock[0].product_id",
        ),
    ] {
        let v = expect_error(
            refund(&app, &manager.token, id, req.clone()).await,
            422,
            "validation_failed",
        )
        .await;
        assert!(
            v["error"]["details"]["fields"][field].is_array(),
            "{req}: {v}"
        );
    }
    let v = expect_error(
        refund(
            &app,
            &manager.token,
            id,
            json!({"amount_cents": 3001, "reason": "x"}),
        )
        .await,
        422,
        "over_refund",
    )
    .await;
    assert_eq!(v["error"]["details"]["refundable_cents"], 3000);
    assert_eq!(stock_of(&app, &a).await, 7);

    // A partial refund with two units back on the shelf.
    let r = refund(&app, &manager.token, id, json!({"amount_cents": 2000, "reason": "  two broken  ", "restock": [{"product_id": a, "quantity": 2}]})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, v) = body(r).await;
    assert_eq!(v["refund"]["amount_cents"], 2000);
    assert_eq!(v["refund"]["reason"], "two broken");
    assert_eq!(
        v["refund"]["restock"],
        json!([{"product_id": a, "quantity": 2}])
    );
    assert_eq!(v["order"]["refunded_cents"], 2000);
    assert_eq!(v["order"]["payment_status"], "partially_refunded");
    // Refunds do not reopen the balance.
    assert_eq!(v["order"]["balance_due_cents"], 700);
    assert_eq!(v["order"]["refunds"].as_array().unwrap().len(), 1);
    assert_eq!(stock_of(&app, &a).await, 9);

    // Only one more unit of A can come back; the remaining 1000 can be refunded.
    let v = expect_error(refund(&app, &manager.token, id, json!({"amount_cents": 1, "reason": "x", "restock": [{"product_id": a, "quantity": 2}]})).await, 422, "validation_failed").await;
    assert_eq!(
        v["error"]["details"]["fields"]["restock[0].quantity"],
        json!(["at most 1 can still be returned"])
    );
    let (s, v) = body(refund(&app, &manager.token, id, json!({"amount_cents": 1000, "reason": "rest", "restock": [{"product_id": a, "quantity": 1}, {"product_id": b, "quantity": 1}]})).await).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["order"]["payment_status"], "refunded");
    assert_eq!(
        (stock_of(&app, &a).await, stock_of(&app, &b).await),
        (10, 10)
    );
    expect_error(
        refund(
            &app,
            &manager.token,
            id,
            json!({"amount_cents": 1, "reason": "x"}),
        )
        .await,
        422,
        "over_refund",
    )
    .await;

    let returns: i64 = sqlx::query_scalar("SELECT sum(delta)::bigint FROM inventory_movements WHERE order_id = $1::uuid AND reason = 'return'")
        .bind(id)
        .fetch_one(&app.state.db.write)
        .await
        .unwrap();
    assert_eq!(returns, 4);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'order.refund'")
        .fetch_one(&app.state.db.write)
        .await
        .unwrap();
    assert_eq!(n, 2);
}
