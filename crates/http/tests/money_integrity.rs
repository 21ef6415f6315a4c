//! Money integrity: customers pay through payment intents that the provider confirms with a
//! signed callback (exactly once, however often and wherever it is delivered), orders holding
//! money cannot be cancelled until refunded, and a customer's open online orders are capped.

use futures::future::join_all;
use serde_json::{json, Value};
use till_test_support::*;

/// A 1000 + 8.25 % tax = 1083 pickup order placed by `who`.
async fn order_of_1083(who: &Client, product: &str) -> Value {
    who.create_order(OrderBuilder::pickup().line(product, 1))
        .await
}

async fn order(who: &Client, id: &str) -> Value {
    who.get(&format!("/api/v1/orders/{id}"))
        .await
        .expect_json(200)
}

async fn payments_of(app: &TestApp, order_id: &str) -> i64 {
    count(
        app,
        "SELECT count(*) FROM payments WHERE order_id = $1::uuid",
        order_id,
    )
    .await
}

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

#[tokio::test]
async fn a_customer_pays_an_online_order_through_a_confirmed_intent() {
    let app = TestApp::spawn().await;
    let customer = app.as_customer().await;
    let other = app.as_customer().await;
    let staff = app.as_staff().await;
    let cashier = app.as_cashier().await;
    let manager = app.as_manager().await;
    let p = insert_product(&app, "P", 1000, 825, 10).await;
    let o = order_of_1083(&customer, &p).await;
    let id = id_of(&o);

    // Customers no longer record payments themselves.
    customer
        .pay(&id, json!({"method": "card", "amount_cents": 1083}))
        .await
        .expect_error(403, "forbidden");

    // Who may ask for an intent: the order's customer or cashier+; another customer does not
    // see the order; fulfilment staff take no money; the key is required.
    other
        .payment_intent(&id)
        .await
        .expect_error(404, "not_found");
    staff
        .payment_intent(&id)
        .await
        .expect_error(403, "forbidden");
    customer
        .post(&format!("/api/v1/orders/{id}/payment-intents"), json!({}))
        .await
        .expect_error(400, "idempotency_key_required");
    customer
        .post_idem(
            &format!("/api/v1/orders/{id}/payment-intents"),
            json!({"amount_cents": 1}),
        )
        .await
        .expect_invalid(&[]);

    // The intent is for the balance due; a retry with the same key answers the same intent.
    let path = format!("/api/v1/orders/{id}/payment-intents");
    let first = customer.post(&path, json!({})).idem("intent-1").await;
    let intent = first.expect_json(201);
    assert_eq!(intent["order_id"], id.as_str());
    assert_eq!(intent["amount_cents"], 1083);
    assert_eq!(intent["status"], "requires_confirmation");
    assert!(intent["id"].is_string() && intent["created_at"].is_string());
    let again = customer.post(&path, json!({})).idem("intent-1").await;
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.body, intent);
    let intent_id = id_of(&intent);
    assert_eq!(
        order(&customer, &id).await["paid_cents"],
        0,
        "nothing is paid until the provider confirms"
    );

    // The provider confirms: one card payment of the intent's amount, on the same ledger.
    let event = provider_event_body("succeeded", &intent_id, 1083, "ch_123");
    let r = app.provider_event(&event, 0).await;
    assert!(
        !r.has_header("ratelimit-limit"),
        "callbacks are outside the user/IP buckets"
    );
    let settled = r.expect_json(200);
    assert_eq!(settled["intent"]["status"], "succeeded");
    assert_eq!(settled["intent"]["reference"], "ch_123");
    let payment = &settled["payment"];
    assert_eq!(payment["method"], "card");
    assert_eq!(payment["amount_cents"], 1083);
    assert_eq!(payment["reference"], "ch_123");
    assert_eq!(payment["intent_id"], intent_id.as_str());
    let now = order(&customer, &id).await;
    assert_eq!(now["paid_cents"], 1083);
    assert_eq!(now["balance_due_cents"], 0);
    assert_eq!(now["payment_status"], "paid");
    assert_eq!(now["payments"].as_array().unwrap().len(), 1);
    assert_eq!(now["payments"][0]["id"], payment["id"]);

    // A replay answers 200 with the same payment and records nothing more.
    let replay = app.provider_event(&event, 10).await.expect_json(200);
    assert_eq!(replay["payment"]["id"], payment["id"]);
    assert_eq!(payments_of(&app, &id).await, 1);

    // Same event stream and figures as a staff payment: an order.paid event (an order.updated
    // to live clients), and the sales report counts it as card money.
    let paid_events = count(
        &app,
        "SELECT count(*) FROM outbox WHERE topic = 'order.paid'
         AND payload->>'type' = 'order.updated'
         AND payload->'order'->>'id' = $1 AND payload->'order'->>'payment_status' = 'paid'",
        &id,
    )
    .await;
    assert_eq!(paid_events, 1);
    let report = manager
        .get(&format!(
            "/api/v1/reports/sales?from={}&to={}",
            today(),
            today()
        ))
        .await
        .expect_json(200);
    assert_eq!(report["by_payment_method"]["card"], 1083);

    // Nothing is due any more; a cancelled or delivered order takes no intent either.
    customer
        .payment_intent(&id)
        .await
        .expect_error(409, "conflict");
    let gone = order_of_1083(&customer, &p).await;
    customer
        .transition(&id_of(&gone), "cancelled")
        .await
        .expect_status(200);
    customer
        .payment_intent(&id_of(&gone))
        .await
        .expect_error(409, "conflict");
    // Cashier+ may open an intent for a customer's order (e.g. a card link at pickup).
    let pos = order_of_1083(&customer, &p).await;
    let v = cashier.payment_intent(&id_of(&pos)).await.expect_json(201);
    assert_eq!(v["amount_cents"], 1083);
}

#[tokio::test]
async fn callbacks_without_a_valid_fresh_signature_are_refused() {
    let app = TestApp::spawn().await;
    let customer = app.as_customer().await;
    let p = insert_product(&app, "P", 1000, 0, 10).await;
    let o = order_of_1083(&customer, &p).await;
    let id = id_of(&o);
    let intent = customer.payment_intent(&id).await.expect_json(201);
    let event = provider_event_body("succeeded", &id_of(&intent), 1000, "ch_1");
    let body = event.to_string();
    let now = chrono::Utc::now().timestamp();
    let good = till_app::payments::sign(
        till_app::config::DEV_PAYMENT_WEBHOOK_SECRET.as_bytes(),
        now,
        body.as_bytes(),
    );
    let wrong_key = till_app::payments::sign(b"not-the-secret", now, body.as_bytes());
    let other_body = till_app::payments::sign(
        till_app::config::DEV_PAYMENT_WEBHOOK_SECRET.as_bytes(),
        now,
        br#"{"type":"payment_intent.failed"}"#,
    );
    let cases = [
        app.provider_event_raw(&body, None),
        app.provider_event_raw(&body, Some("")),
        app.provider_event_raw(&body, Some("v1=abc")),
        app.provider_event_raw(&body, Some(&format!("t={now},v1=not-hex"))),
        app.provider_event_raw(&body, Some(&wrong_key)),
        app.provider_event_raw(&body, Some(&other_body)),
        // Signed 301 s ago, and 301 s ahead of the clock.
        app.provider_event(&event, 301),
        app.provider_event(&event, -301),
    ];
    for req in cases {
        let v = req.await.expect_error(401, "unauthorized");
        assert_eq!(
            v["error"]["message"],
            "Missing, invalid or expired Till-Signature."
        );
    }
    assert_eq!(payments_of(&app, &id).await, 0, "nothing was recorded");
    assert_eq!(order(&customer, &id).await["paid_cents"], 0);

    // The same body with the right signature, just inside the window, is taken.
    app.provider_event_raw(&body, Some(&good))
        .await
        .expect_status(200);
    app.provider_event(&event, 290).await.expect_status(200);
    assert_eq!(payments_of(&app, &id).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_of_the_same_callback_on_two_instances_pays_once() {
    let (a, b) = TestApp::spawn_pair().await;
    let customer = a.as_customer().await;
    let p = insert_product(&a, "P", 1000, 825, 10).await;
    let o = order_of_1083(&customer, &p).await;
    let id = id_of(&o);
    let intent = customer.payment_intent(&id).await.expect_json(201);
    let event = provider_event_body("succeeded", &id_of(&intent), 1083, "ch_storm");
    let deliveries = (0..20).map(|i| {
        let to = if i % 2 == 0 { &a } else { &b };
        to.provider_event(&event, i).send()
    });
    let answers = join_all(deliveries).await;
    let ids: Vec<&Value> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status(), 200, "{}", r.body);
            &r.body["payment"]["id"]
        })
        .collect();
    assert!(ids[0].is_string());
    assert!(ids.iter().all(|p| *p == ids[0]), "one payment: {ids:?}");
    assert_eq!(payments_of(&a, &id).await, 1);
    let now = order(&customer.on(&b), &id).await;
    assert_eq!(now["paid_cents"], 1083);
    assert_eq!(now["payment_status"], "paid");
}

#[tokio::test]
async fn failed_unknown_mismatched_and_late_callbacks() {
    let app = TestApp::spawn().await;
    let customer = app.as_customer().await;
    let p = insert_product(&app, "P", 1000, 0, 10).await;
    let o = order_of_1083(&customer, &p).await;
    let id = id_of(&o);
    let first = id_of(&customer.payment_intent(&id).await.expect_json(201));

    // Failed: the intent says so, nothing is paid; a replay answers the same.
    let failed = provider_event_body("failed", &first, 1000, "ch_declined");
    for _ in 0..2 {
        let v = app.provider_event(&failed, 0).await.expect_json(200);
        assert_eq!(v["intent"]["status"], "failed");
        assert_eq!(v["payment"], Value::Null);
    }
    assert_eq!(order(&customer, &id).await["paid_cents"], 0);

    // Unknown intent → 404; another amount than the intent's → 422, nothing recorded.
    let unknown = uuid::Uuid::now_v7().to_string();
    app.provider_event(&provider_event_body("succeeded", &unknown, 1000, "x"), 0)
        .await
        .expect_error(404, "not_found");
    let second = id_of(&customer.payment_intent(&id).await.expect_json(201));
    let v = app
        .provider_event(&provider_event_body("succeeded", &second, 999, "x"), 0)
        .await
        .expect_invalid(&["amount_cents"]);
    assert_eq!(
        v["error"]["details"]["fields"]["amount_cents"],
        json!(["must equal the intent's amount (1000)"])
    );
    // Malformed bodies, once signed, are the usual 400/422.
    app.provider_event(&json!({"type": "charge.refunded"}), 0)
        .await
        .expect_invalid(&["type"]);
    assert_eq!(payments_of(&app, &id).await, 0);

    // It succeeds after all; a late "failed" cannot undo it.
    app.provider_event(&provider_event_body("succeeded", &second, 1000, "ch_ok"), 0)
        .await
        .expect_status(200);
    app.provider_event(&provider_event_body("failed", &second, 1000, "ch_ok"), 0)
        .await
        .expect_error(409, "conflict");
    assert_eq!(order(&customer, &id).await["paid_cents"], 1000);

    // An order cancelled while its intent was open takes no money: 409, nothing recorded.
    let o = order_of_1083(&customer, &p).await;
    let late = id_of(&customer.payment_intent(&id_of(&o)).await.expect_json(201));
    customer
        .transition(&id_of(&o), "cancelled")
        .await
        .expect_status(200);
    app.provider_event(&provider_event_body("succeeded", &late, 1000, "ch_late"), 0)
        .await
        .expect_error(409, "conflict");
    assert_eq!(payments_of(&app, &id_of(&o)).await, 0);
}

#[tokio::test]
async fn an_order_holding_money_is_refunded_before_it_is_cancelled() {
    let app = TestApp::spawn().await;
    let customer = app.as_customer().await;
    let cashier = app.as_cashier().await;
    let manager = app.as_manager().await;
    let p = insert_product(&app, "P", 1000, 0, 10).await;

    // Paid in part at the till: nobody may cancel it, by any role.
    let o = cashier
        .create_order(OrderBuilder::pickup().line(&p, 2))
        .await;
    let id = id_of(&o);
    cashier
        .pay(&id, json!({"method": "cash", "amount_cents": 500}))
        .await
        .expect_status(201);
    for who in [&cashier, &manager] {
        let v = who
            .transition(&id, "cancelled")
            .await
            .expect_error(409, "conflict");
        assert_eq!(v["error"]["details"], json!({"refundable_cents": 500}));
    }
    assert_eq!(stock_of(&app, &p).await, 8, "no stock came back");

    // A partial refund leaves money on it; the full refund frees it.
    let refund = |cents: i64| json!({"amount_cents": cents, "reason": "customer changed mind"});
    manager.refund(&id, refund(200)).await.expect_status(201);
    let v = cashier
        .transition(&id, "cancelled")
        .await
        .expect_error(409, "conflict");
    assert_eq!(v["error"]["details"]["refundable_cents"], 300);
    manager.refund(&id, refund(300)).await.expect_status(201);
    let v = cashier.transition(&id, "cancelled").await.expect_json(200);
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["payment_status"], "refunded");
    assert_eq!(stock_of(&app, &p).await, 10);

    // A customer's own pending order paid online cannot be cancelled by them either.
    let mine = order_of_1083(&customer, &p).await;
    let intent = customer
        .payment_intent(&id_of(&mine))
        .await
        .expect_json(201);
    app.provider_event(
        &provider_event_body("succeeded", &id_of(&intent), 1000, "ch_9"),
        0,
    )
    .await
    .expect_status(200);
    let v = customer
        .transition(&id_of(&mine), "cancelled")
        .await
        .expect_error(409, "conflict");
    assert_eq!(v["error"]["details"]["refundable_cents"], 1000);
}

#[tokio::test]
async fn a_customer_holds_at_most_three_open_online_orders() {
    let app = TestApp::spawn().await;
    let customer = app.as_customer().await;
    let cashier = app.as_cashier().await;
    let p = insert_product(&app, "P", 1000, 0, 20).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(order_of_1083(&customer, &p).await);
    }
    let v = customer
        .post_order(OrderBuilder::pickup().line(&p, 1))
        .await
        .expect_error(409, "conflict");
    assert_eq!(v["error"]["details"], json!({"limit": 3}));
    assert_eq!(
        stock_of(&app, &p).await,
        17,
        "the refused order took nothing"
    );

    // Till orders for the same customer do not count.
    cashier
        .create_order(
            OrderBuilder::pickup()
                .line(&p, 1)
                .customer(customer.customer_id()),
        )
        .await;
    // Paying one in full frees a place; so does cancelling one.
    let intent = customer
        .payment_intent(&id_of(&open[0]))
        .await
        .expect_json(201);
    app.provider_event(
        &provider_event_body("succeeded", &id_of(&intent), 1000, "ch"),
        0,
    )
    .await
    .expect_status(200);
    order_of_1083(&customer, &p).await;
    customer
        .post_order(OrderBuilder::pickup().line(&p, 1))
        .await
        .expect_error(409, "conflict");
    customer
        .transition(&id_of(&open[1]), "cancelled")
        .await
        .expect_status(200);
    order_of_1083(&customer, &p).await;
    // Another customer has places of their own.
    let other = app.as_customer().await;
    order_of_1083(&other, &p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_open_orders_cap_holds_under_concurrent_checkouts() {
    let (a, b) = TestApp::spawn_pair().await;
    let customer = a.as_customer().await;
    let on_b = customer.on(&b);
    let p = insert_product(&a, "P", 1000, 0, 50).await;
    let sends = (0..12).map(|i| {
        let who = if i % 2 == 0 { &customer } else { &on_b };
        who.post_order(OrderBuilder::pickup().line(&p, 1))
    });
    let answers = join_all(sends).await;
    let created = answers.iter().filter(|r| r.status() == 201).count();
    let refused = answers
        .iter()
        .filter(|r| r.status() == 409 && r.error_code() == Some("conflict"))
        .count();
    assert_eq!((created, refused), (3, 9), "{answers:?}");
    let held = count(
        &a,
        "SELECT count(*) FROM orders WHERE customer_id = $1::uuid",
        customer.customer_id(),
    )
    .await;
    assert_eq!(held, 3);
    assert_eq!(stock_of(&a, &p).await, 47);
}

#[tokio::test]
async fn the_simulated_provider_exists_in_development_only() {
    let app = TestApp::spawn().await;
    let customer = app.as_customer().await;
    let other = app.as_customer().await;
    let p = insert_product(&app, "P", 1000, 0, 10).await;
    let o = order_of_1083(&customer, &p).await;
    let intent = id_of(&customer.payment_intent(&id_of(&o)).await.expect_json(201));
    let simulate = "/api/v1/dev/payment-provider/simulate";
    other
        .post(
            simulate,
            json!({"intent_id": intent, "outcome": "succeeded"}),
        )
        .await
        .expect_error(404, "not_found");
    let v = customer
        .post(
            simulate,
            json!({"intent_id": intent, "outcome": "succeeded"}),
        )
        .await
        .expect_json(200);
    assert_eq!(v["intent"]["status"], "succeeded");
    assert_eq!(v["payment"]["amount_cents"], 1000);
    assert_eq!(order(&customer, &id_of(&o)).await["payment_status"], "paid");

    // Production: no simulator, and the callback checks the operator's secret.
    let secret = "whsec_production_0123456789abcdef0123";
    let prod = TestApp::spawn_with(
        &Opts::new()
            .await
            .set("APP_ENV", "production")
            .set("JWT_SECRET", "0123456789abcdef0123456789abcdef0123")
            .set("PAYMENT_WEBHOOK_SECRET", secret),
    )
    .await;
    let customer = prod.as_customer().await;
    let p = insert_product(&prod, "P", 1000, 0, 10).await;
    let o = order_of_1083(&customer, &p).await;
    let intent = id_of(&customer.payment_intent(&id_of(&o)).await.expect_json(201));
    customer
        .post(
            simulate,
            json!({"intent_id": intent, "outcome": "succeeded"}),
        )
        .await
        .expect_error(404, "not_found");
    let event = provider_event_body("succeeded", &intent, 1000, "ch_prod");
    let body = event.to_string();
    let now = chrono::Utc::now().timestamp();
    let dev_signed = till_app::payments::sign(
        till_app::config::DEV_PAYMENT_WEBHOOK_SECRET.as_bytes(),
        now,
        body.as_bytes(),
    );
    prod.provider_event_raw(&body, Some(&dev_signed))
        .await
        .expect_error(401, "unauthorized");
    prod.provider_event(&event, 0).await.expect_status(200);
    assert_eq!(order(&customer, &id_of(&o)).await["payment_status"], "paid");
}
