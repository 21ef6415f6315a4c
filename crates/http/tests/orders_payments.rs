//! Payments and refunds: split tenders, change, payment status, auto-completion of in-store
//! orders, every error, roles, concurrency and restock limits.

use futures::future::join_all;
use serde_json::{json, Value};
use till_test_support::*;

/// A 1000 + 8.25 % tax = 1083 order (`fulfilment` as given).
async fn order_of_1083(who: &Client, product: &str, fulfilment: &str) -> Value {
    who.create_order(OrderBuilder::fulfilment(fulfilment).line(product, 1))
        .await
}

fn card(cents: i64) -> Value {
    json!({"method": "card", "amount_cents": cents})
}

fn restock(lines: &[(&str, i64)]) -> Value {
    lines
        .iter()
        .map(|(p, q)| json!({"product_id": p, "quantity": q}))
        .collect()
}

#[tokio::test]
async fn split_tenders_with_change_complete_an_in_store_order() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    let p = insert_product(&app, "P", 1000, 825, 10).await;
    let o = order_of_1083(&cashier, &p, "in_store").await;
    let id = o["id"].as_str().unwrap();
    assert_eq!(o["total_cents"], 1083);

    // Cash 500 from a 2000 note: 1500 change.
    let r = cashier
        .pay(
            id,
            json!({"method": "cash", "amount_cents": 500, "tendered_cents": 2000}),
        )
        .await
        .expect_status(201);
    assert_eq!(r.header("etag"), "\"2\"");
    let v = r.body;
    let pay1 = &v["payment"];
    assert_eq!(pay1["method"], "cash");
    assert_eq!(pay1["amount_cents"], 500);
    assert_eq!(pay1["tendered_cents"], 2000);
    assert_eq!(pay1["change_cents"], 1500);
    assert!(pay1["id"].is_string() && pay1["created_at"].is_string());
    assert_eq!(pay1["reference"], Value::Null);
    assert_eq!(v["order"]["paid_cents"], 500);
    assert_eq!(v["order"]["balance_due_cents"], 583);
    assert_eq!(v["order"]["payment_status"], "partially_paid");
    assert_eq!(v["order"]["status"], "pending");

    // Card for the rest: fully paid, so the in-store order completes by itself.
    let v = cashier
        .pay(
            id,
            json!({"method": "card", "amount_cents": 583, "reference": "auth-77"}),
        )
        .await
        .expect_json(201);
    assert_eq!(v["payment"]["tendered_cents"], Value::Null);
    assert_eq!(v["payment"]["change_cents"], 0);
    assert_eq!(v["payment"]["reference"], "auth-77");
    let o = &v["order"];
    assert_eq!(o["paid_cents"], 1083);
    assert_eq!(o["balance_due_cents"], 0);
    assert_eq!(o["payment_status"], "paid");
    assert_eq!(o["status"], "completed");
    assert_eq!(o["version"], 3);
    assert_eq!(o["payments"].as_array().unwrap().len(), 2);
    let last = o["status_history"].as_array().unwrap().last().unwrap();
    assert_eq!(last["status"], "completed");
    assert_eq!(last["by"], cashier.id());

    // Nothing is due now: even one cent more is an overpayment.
    let v = cashier
        .pay(id, json!({"method": "cash", "amount_cents": 1}))
        .await
        .expect_error(422, "overpayment");
    assert_eq!(v["error"]["details"]["balance_due_cents"], 0);

    // Cash without tendered_cents is exact cash; a pickup order does not complete on payment.
    let o = order_of_1083(&cashier, &p, "pickup").await;
    let v = cashier
        .pay(&id_of(&o), json!({"method": "cash", "amount_cents": 1083}))
        .await
        .body;
    assert_eq!(v["payment"]["tendered_cents"], 1083);
    assert_eq!(v["payment"]["change_cents"], 0);
    assert_eq!(v["order"]["payment_status"], "paid");
    assert_eq!(v["order"]["status"], "pending");

    // Payments are audited.
    let n = count(
        &app,
        "SELECT count(*) FROM audit_log WHERE action = 'order.payment' AND actor_id = $1::uuid",
        cashier.id(),
    )
    .await;
    assert_eq!(n, 3);
}

#[tokio::test]
async fn payment_errors_and_roles() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    let staff = app.as_staff().await;
    let customer = app.as_customer().await;
    let other = app.as_customer().await;
    let p = insert_product(&app, "P", 1000, 825, 10).await;
    let o = order_of_1083(&cashier, &p, "pickup").await;
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
        // Found by the schema fuzzer: the change was computed from the out-of-range pair and
        // overflowed (a 500) before the field errors were answered.
        (
            json!({"method": "cash", "amount_cents": -103879390, "tendered_cents": i64::MAX - 1}),
            "tendered_cents",
        ),
        (
            json!({"method": "cash", "amount_cents": i64::MIN, "tendered_cents": i64::MAX}),
            "amount_cents",
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
        let v = cashier
            .pay(id, req.clone())
            .await
            .expect_error(422, "validation_failed");
        assert!(
            v["error"]["details"]["fields"][field].is_array(),
            "{req}: {v}"
        );
    }
    let v = cashier
        .pay(id, card(1084))
        .await
        .expect_error(422, "overpayment");
    assert_eq!(v["error"]["details"]["balance_due_cents"], 1083);
    let payments = format!("/api/v1/orders/{id}/payments");
    cashier
        .post(&payments, card(1))
        .await
        .expect_error(400, "idempotency_key_required");
    // Customers never record payments (they pay through payment intents): 403 whatever the
    // order, even their own by card. Staff run the board but take no money.
    let mine = customer
        .create_order(OrderBuilder::pickup().line(&p, 1))
        .await;
    let mine_id = mine["id"].as_str().unwrap();
    let missing = uuid::Uuid::now_v7().to_string();
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
        (&customer, mine_id, card(1083), 403, "forbidden"),
        (&other, mine_id, card(100), 403, "forbidden"),
        (&customer, id, card(100), 403, "forbidden"),
    ] {
        who.pay(order, req).await.expect_error(status, code);
    }
    let unpaid = cashier.get(&format!("/api/v1/orders/{mine_id}")).await.body;
    assert_eq!(unpaid["paid_cents"], 0);
    // A cashier takes the customer's money at pickup.
    let v = cashier.pay(mine_id, card(1083)).await.expect_json(201);
    assert_eq!(v["order"]["payment_status"], "paid");

    // Nothing above changed the first order.
    let order = format!("/api/v1/orders/{id}");
    assert_eq!(cashier.get(&order).await.body, o);

    // Replays: same key, same answer, one payment.
    let tender = |cents| cashier.post(&payments, card(cents)).idem("tender-1");
    let v1 = tender(83).await.expect_json(201);
    let again = tender(83).await;
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.body, v1);
    tender(84).await.expect_error(422, "idempotency_key_reused");
    assert_eq!(cashier.get(&order).await.body["paid_cents"], 83);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tenders_never_overpay() {
    let (a, b) = TestApp::spawn_pair().await;
    let cashier = a.as_cashier().await;
    let p = insert_product(&a, "P", 1000, 0, 10).await;
    let o = cashier
        .create_order(OrderBuilder::pickup().line(&p, 1))
        .await;
    let id = id_of(&o);
    let on_b = cashier.on(&b);
    let sends = (0..12).map(|i| {
        let who = if i % 2 == 0 { &cashier } else { &on_b };
        who.pay(&id, card(400)).send()
    });
    let results = join_all(sends).await;
    let ok = results.iter().filter(|r| r.status() == 201).count();
    let over = results
        .iter()
        .filter(|r| r.status() == 422 && r.error_code() == Some("overpayment"))
        .count();
    assert_eq!((ok, over), (2, 10), "{results:?}");
    let now = cashier.get(&format!("/api/v1/orders/{id}")).await.body;
    assert_eq!(now["paid_cents"], 800);
    assert_eq!(now["balance_due_cents"], 200);
}

#[tokio::test]
async fn refunds_money_and_goods_within_limits() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    let manager = app.as_manager().await;
    let a = insert_product(&app, "A", 1000, 0, 10).await;
    let b = insert_product(&app, "B", 500, 0, 10).await;
    let svc = ProductBuilder::new("SVC")
        .price(200)
        .untracked()
        .insert(&app)
        .await;
    let o = cashier
        .create_order(OrderBuilder::pickup().line(&a, 3).line(&b, 1).line(&svc, 1))
        .await;
    let id = o["id"].as_str().unwrap();
    assert_eq!(o["total_cents"], 3700);
    let money = |cents: i64| json!({"amount_cents": cents, "reason": "x"});
    let goods = |back: &[(&str, i64)]| json!({"amount_cents": 100, "reason": "x", "restock": restock(back)});

    // Nothing paid yet: nothing to refund.
    let v = manager
        .refund(id, money(1))
        .await
        .expect_error(422, "over_refund");
    assert_eq!(v["error"]["details"]["refundable_cents"], 0);
    cashier.pay(id, card(3000)).await.expect_status(201);

    // Cashiers cannot refund; bad bodies are 422.
    cashier
        .refund(id, money(100))
        .await
        .expect_error(403, "forbidden");
    let unknown = uuid::Uuid::now_v7().to_string();
    for (req, field) in [
        (money(0), "amount_cents"),
        (json!({"amount_cents": 100, "reason": "  "}), "reason"),
        (goods(&[(&a, 0)]), "restock[0].quantity"),
        (goods(&[(&a, 1), (&a, 1)]), "restock[1].product_id"),
        (goods(&[(&a, 4)]), "restock[0].quantity"),
        (goods(&[(&svc, 1)]), "restock[0].product_id"),
        (goods(&[(&unknown, 1)]), "restock[0].product_id"),
    ] {
        let v = manager
            .refund(id, req.clone())
            .await
            .expect_error(422, "validation_failed");
        assert!(
            v["error"]["details"]["fields"][field].is_array(),
            "{req}: {v}"
        );
    }
    let v = manager
        .refund(id, money(3001))
        .await
        .expect_error(422, "over_refund");
    assert_eq!(v["error"]["details"]["refundable_cents"], 3000);
    assert_eq!(stock_of(&app, &a).await, 7);

    // A partial refund with two units back on the shelf.
    let v = manager
        .refund(
            id,
            json!({"amount_cents": 2000, "reason": "  two broken  ", "restock": restock(&[(&a, 2)])}),
        )
        .await
        .expect_json(201);
    assert_eq!(v["refund"]["amount_cents"], 2000);
    assert_eq!(v["refund"]["reason"], "two broken");
    assert_eq!(v["refund"]["restock"], restock(&[(&a, 2)]));
    assert_eq!(v["order"]["refunded_cents"], 2000);
    assert_eq!(v["order"]["payment_status"], "partially_refunded");
    // Refunds do not reopen the balance.
    assert_eq!(v["order"]["balance_due_cents"], 700);
    assert_eq!(v["order"]["refunds"].as_array().unwrap().len(), 1);
    assert_eq!(stock_of(&app, &a).await, 9);

    // Only one more unit of A can come back; the remaining 1000 can be refunded.
    let v = manager
        .refund(
            id,
            json!({"amount_cents": 1, "reason": "x", "restock": restock(&[(&a, 2)])}),
        )
        .await
        .expect_error(422, "validation_failed");
    assert_eq!(
        v["error"]["details"]["fields"]["restock[0].quantity"],
        json!(["at most 1 can still be returned"])
    );
    let v = manager
        .refund(
            id,
            json!({"amount_cents": 1000, "reason": "rest", "restock": restock(&[(&a, 1), (&b, 1)])}),
        )
        .await
        .expect_json(201);
    assert_eq!(v["order"]["payment_status"], "refunded");
    assert_eq!(
        (stock_of(&app, &a).await, stock_of(&app, &b).await),
        (10, 10)
    );
    manager
        .refund(id, money(1))
        .await
        .expect_error(422, "over_refund");

    let returns = count(
        &app,
        "SELECT sum(delta)::bigint FROM inventory_movements WHERE order_id = $1::uuid AND reason = 'return'",
        id,
    )
    .await;
    assert_eq!(returns, 4);
    assert_eq!(audit_count(&app, "order.refund").await, 2);
}
