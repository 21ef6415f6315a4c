//! Order creation over HTTP: prices copied at order time, exact pricing, validation, discount
//! rules, roles, idempotency, and all-or-nothing stock.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn line(product_id: &str, quantity: i64) -> Value {
    json!({"product_id": product_id, "quantity": quantity})
}

async fn count_orders(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&app.state.db.write)
        .await
        .unwrap()
}

#[tokio::test]
async fn cashier_checkout_copies_prices_prices_exactly_and_takes_stock() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let a = insert_product(&app, "A-1", 1000, 825, 10).await;
    let b = insert_product(&app, "B-1", 250, 0, 5).await;
    let c = insert_product(&app, "C-1", 199, 1000, 0).await;
    exec_sql(
        &app,
        "UPDATE products SET track_stock = false WHERE id = $1::uuid",
        &c,
    )
    .await;

    // The domain's worked example: 10 % off 2148 → 215, spread 100/75/40; tax 74 + 0 + 36.
    let resp = post_idem(
        &app,
        "/api/v1/orders",
        &cashier.token,
        &new_key(),
        json!({"fulfilment": "in_store", "lines": [line(&a, 1), line(&b, 3), line(&c, 2)],
               "discount": {"type": "percent", "value_bp": 1000}, "note": "  gift wrap  "}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(resp.headers()["etag"], "\"1\"");
    let (_, o) = body(resp).await;
    assert_eq!(
        location,
        format!("/api/v1/orders/{}", o["id"].as_str().unwrap())
    );
    assert!(o["number"].is_string(), "{o}");
    assert!(o["number"].as_str().unwrap().parse::<i64>().unwrap() >= 1001);
    assert_eq!(o["channel"], "pos");
    assert_eq!(o["status"], "pending");
    assert_eq!(o["fulfilment"], "in_store");
    assert_eq!(o["customer_id"], Value::Null);
    assert_eq!(o["created_by"], cashier.id());
    assert_eq!(o["currency"], "USD");
    assert_eq!(o["note"], "gift wrap");
    assert_eq!(o["version"], 1);
    assert_eq!(o["subtotal_cents"], 2148);
    assert_eq!(o["discount_cents"], 215);
    assert_eq!(o["tax_cents"], 110);
    assert_eq!(o["total_cents"], 2043);
    assert_eq!(o["paid_cents"], 0);
    assert_eq!(o["refunded_cents"], 0);
    assert_eq!(o["balance_due_cents"], 2043);
    assert_eq!(o["payment_status"], "unpaid");
    assert_eq!(o["payments"], json!([]));
    assert_eq!(o["refunds"], json!([]));
    assert_eq!(o["discount"], json!({"type": "percent", "value_bp": 1000}));
    let lines = o["lines"].as_array().unwrap();
    let want = [
        (&a, "A-1", 1000, 1, 825, 1000, 100, 74, 974),
        (&b, "B-1", 250, 3, 0, 750, 75, 0, 675),
        (&c, "C-1", 199, 2, 1000, 398, 40, 36, 394),
    ];
    for (l, (id, sku, price, q, rate, sub, disc, tax, total)) in lines.iter().zip(want) {
        assert_eq!(
            l,
            &json!({"product_id": id, "sku": sku, "name": format!("Product {sku}"), "unit_price_cents": price,
                    "quantity": q, "tax_rate_bp": rate, "subtotal_cents": sub, "discount_cents": disc,
                    "tax_cents": tax, "total_cents": total})
        );
    }
    let history = o["status_history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["status"], "pending");
    assert_eq!(history[0]["by"], cashier.id());
    assert!(history[0]["at"].as_str().unwrap().ends_with('Z'));

    // Tracked lines took stock with `sale` movements; the untracked one did not move.
    assert_eq!(stock_of(&app, &a).await, 9);
    assert_eq!(stock_of(&app, &b).await, 2);
    assert_eq!(stock_of(&app, &c).await, 0);
    let moves: Vec<(String, i64, i64, String)> = sqlx::query_as(
        "SELECT reason, delta, balance_after, user_id::text FROM inventory_movements
         WHERE order_id = $1::uuid ORDER BY product_id",
    )
    .bind(o["id"].as_str().unwrap())
    .fetch_all(&app.state.db.write)
    .await
    .unwrap();
    let mut want_moves = vec![
        ("sale".to_string(), -1, 9, cashier.id().to_string()),
        ("sale".into(), -3, 2, cashier.id().into()),
    ];
    if b < a {
        want_moves.reverse();
    }
    assert_eq!(moves, want_moves);

    // Later catalog changes do not alter the order.
    exec_sql(
        &app,
        "UPDATE products SET price_cents = 1, name = 'Renamed' WHERE id = $1::uuid",
        &a,
    )
    .await;
    let resp = app.get(&location, Some(&cashier.token)).await;
    assert_eq!(resp.headers()["etag"], "\"1\"");
    let (s, again) = body(resp).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again, o);

    // A second order gets a larger number.
    let o2 = create_order(
        &app,
        &cashier.token,
        json!({"fulfilment": "pickup", "lines": [line(&b, 1)]}),
    )
    .await;
    let n1: i64 = o["number"].as_str().unwrap().parse().unwrap();
    let n2: i64 = o2["number"].as_str().unwrap().parse().unwrap();
    assert!(n2 > n1);
    assert_eq!(o2["note"], Value::Null);
}

#[tokio::test]
async fn pricing_worked_examples_through_the_api() {
    let app = TestApp::spawn().await;
    let manager = app.user("manager").await;
    let p = |sku: &'static str, price, rate| {
        let app = &app;
        async move { insert_product(app, sku, price, rate, 1000).await }
    };

    // No discount, tax rounds half up per line: 82.5 → 83, 16.5 → 17, 2.475 → 2.
    let (x, y, z) = (
        p("X", 1000, 825).await,
        p("Y", 100, 825).await,
        p("Z", 30, 825).await,
    );
    let o = create_order(
        &app,
        &manager.token,
        json!({"fulfilment": "in_store", "lines": [line(&x, 1), line(&y, 2), line(&z, 1)]}),
    )
    .await;
    let taxes: Vec<i64> = o["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["tax_cents"].as_i64().unwrap())
        .collect();
    assert_eq!(taxes, [83, 17, 2]);
    assert_eq!(
        (
            o["subtotal_cents"].as_i64(),
            o["tax_cents"].as_i64(),
            o["total_cents"].as_i64()
        ),
        (Some(1230), Some(102), Some(1332))
    );

    // Amount discount of 333 over 500/300/200 (over 20 %: a manager may): floors 166/99/66,
    // the 2 leftover cents to the largest remainders (lines 2 and 3); 10 % tax on the rest.
    let (u, v, w) = (
        p("U", 100, 1000).await,
        p("V", 300, 1000).await,
        p("W", 200, 1000).await,
    );
    let o = create_order(
        &app,
        &manager.token,
        json!({"fulfilment": "pickup", "lines": [line(&u, 5), line(&v, 1), line(&w, 1)], "discount": {"type": "amount", "amount_cents": 333}}),
    )
    .await;
    let got: Vec<(i64, i64, i64)> = o["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["discount_cents"].as_i64().unwrap(),
                l["tax_cents"].as_i64().unwrap(),
                l["total_cents"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(166, 33, 367), (100, 20, 220), (67, 13, 146)]);
    assert_eq!(o["discount_cents"], 333);
    assert_eq!(o["tax_cents"], 66);
    assert_eq!(o["total_cents"], 733);

    // Ties go to the earlier line: 2 cents over three equal lines → 1, 1, 0.
    let (t1, t2, t3) = (
        p("T1", 100, 0).await,
        p("T2", 100, 0).await,
        p("T3", 100, 0).await,
    );
    let o = create_order(
        &app,
        &manager.token,
        json!({"fulfilment": "pickup", "lines": [line(&t1, 1), line(&t2, 1), line(&t3, 1)], "discount": {"type": "amount", "amount_cents": 2}}),
    )
    .await;
    let d: Vec<i64> = o["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["discount_cents"].as_i64().unwrap())
        .collect();
    assert_eq!(d, [1, 1, 0]);
    assert_eq!(o["total_cents"], 298);

    // Percent discounts round half up: 5 % of 150 = 7.5 → 8; 100 % leaves nothing to tax.
    let h = p("H", 150, 0).await;
    let o = create_order(&app, &manager.token, json!({"fulfilment": "pickup", "lines": [line(&h, 1)], "discount": {"type": "percent", "value_bp": 500}})).await;
    assert_eq!(o["discount_cents"], 8);
    let f = p("F", 999, 825).await;
    let o = create_order(&app, &manager.token, json!({"fulfilment": "pickup", "lines": [line(&f, 3)], "discount": {"type": "percent", "value_bp": 10000}})).await;
    assert_eq!(
        (
            o["subtotal_cents"].as_i64(),
            o["discount_cents"].as_i64(),
            o["tax_cents"].as_i64(),
            o["total_cents"].as_i64()
        ),
        (Some(2997), Some(2997), Some(0), Some(0))
    );
}

#[tokio::test]
async fn invalid_orders_are_422_and_change_nothing() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let a = insert_product(&app, "A", 100, 0, 5).await;
    let gone = insert_product(&app, "GONE", 100, 0, 5).await;
    exec_sql(
        &app,
        "UPDATE products SET active = false WHERE id = $1::uuid",
        &gone,
    )
    .await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let many: Vec<Value> = (0..101).map(|_| line(&a, 1)).collect();

    let cases: Vec<(Value, &str)> = vec![
        (json!({"fulfilment": "pickup", "lines": []}), "lines"),
        (json!({"fulfilment": "pickup", "lines": many}), "lines"),
        (
            json!({"fulfilment": "pickup", "lines": [line(&a, 0)]}),
            "lines[0].quantity",
        ),
        (
            json!({"fulfilment": "pickup", "lines": [line(&a, 1001)]}),
            "lines[0].quantity",
        ),
        (
            json!({"fulfilment": "pickup", "lines": [line(&a, 1), line(&a, 2)]}),
            "lines[1].product_id",
        ),
        (
            json!({"fulfilment": "pickup", "lines": [line(&a, 1), line(&unknown, 1)]}),
            "lines[1].product_id",
        ),
        (
            json!({"fulfilment": "pickup", "lines": [line(&gone, 1)]}),
            "lines[0].product_id",
        ),
        (
            json!({"fulfilment": "delivery", "lines": [line(&a, 1)]}),
            "delivery_address",
        ),
        (
            json!({"fulfilment": "delivery", "lines": [line(&a, 1)], "delivery_address": "   "}),
            "delivery_address",
        ),
        (
            json!({"fulfilment": "pickup", "lines": [line(&a, 1)], "delivery_address": "1 Main St"}),
            "delivery_address",
        ),
        (
            json!({"fulfilment": "in_store", "lines": [line(&a, 1)], "discount": {"type": "amount", "amount_cents": 101}}),
            "discount.amount_cents",
        ),
        (
            json!({"fulfilment": "in_store", "lines": [line(&a, 1)], "discount": {"type": "percent", "value_bp": 10001}}),
            "discount.value_bp",
        ),
        (
            json!({"fulfilment": "in_store", "lines": [line(&a, 1)], "discount": {"type": "amount", "amount_cents": -1}}),
            "discount.amount_cents",
        ),
        (
            json!({"fulfilment": "in_store", "lines": [line(&a, 1)], "customer_id": unknown}),
            "customer_id",
        ),
        (
            json!({"fulfilment": "by_drone", "lines": [line(&a, 1)]}),
            "fulfilment",
        ),
        (
            json!({"fulfilment": "pickup", "lines": [{"product_id": a, "quantity": 1.5}]}),
            "lines[0].quantity",
        ),
        (
            json!({"fulfilment": "pickup", "lines": [line(&a, 1)], "surprise": true}),
            "body",
        ),
    ];
    for (i, (req, field)) in cases.into_iter().enumerate() {
        let resp = post_idem(
            &app,
            "/api/v1/orders",
            &cashier.token,
            &format!("k{i}"),
            req.clone(),
        )
        .await;
        let v = expect_error(resp, 422, "validation_failed").await;
        let fields = v["error"]["details"]["fields"].as_object().unwrap();
        assert!(
            fields.contains_key(field) || field == "body",
            "case {i} {req}: {v}"
        );
    }
    assert_eq!(count_orders(&app).await, 0);
    assert_eq!(stock_of(&app, &a).await, 5);

    // Not JSON, malformed, missing key.
    let r = app
        .req(Method::POST, "/api/v1/orders")
        .bearer_auth(&cashier.token)
        .header("Idempotency-Key", "x")
        .body("fulfilment=pickup")
        .send()
        .await
        .unwrap();
    expect_error(r, 415, "unsupported_media_type").await;
    let r = app
        .req(Method::POST, "/api/v1/orders")
        .bearer_auth(&cashier.token)
        .header("Idempotency-Key", "y")
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "bad_request").await;
    let r = app
        .post(
            "/api/v1/orders",
            Some(&cashier.token),
            json!({"fulfilment": "pickup", "lines": [line(&a, 1)]}),
        )
        .await;
    expect_error(r, 400, "idempotency_key_required").await;
    let long = "k".repeat(256);
    let r = post_idem(
        &app,
        "/api/v1/orders",
        &cashier.token,
        &long,
        json!({"fulfilment": "pickup", "lines": [line(&a, 1)]}),
    )
    .await;
    expect_error(r, 400, "bad_request").await;
    let ok = "k".repeat(255);
    let r = post_idem(
        &app,
        "/api/v1/orders",
        &cashier.token,
        &ok,
        json!({"fulfilment": "pickup", "lines": [line(&a, 1)]}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn discounts_and_roles() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let manager = app.user("manager").await;
    let admin = app.admin().await;
    let staff = app.user("staff").await;
    let customer = app.user("customer").await;
    let other = app.user("customer").await;
    let a = insert_product(&app, "A", 1000, 0, 100).await;
    let order = |d: Value| json!({"fulfilment": "in_store", "lines": [line(&a, 1)], "discount": d});

    // Cashiers may give up to 20 %; above needs manager+.
    create_order(
        &app,
        &cashier.token,
        order(json!({"type": "percent", "value_bp": 2000})),
    )
    .await;
    create_order(
        &app,
        &cashier.token,
        order(json!({"type": "amount", "amount_cents": 200})),
    )
    .await;
    for d in [
        json!({"type": "percent", "value_bp": 2001}),
        json!({"type": "amount", "amount_cents": 201}),
    ] {
        let r = post_idem(
            &app,
            "/api/v1/orders",
            &cashier.token,
            &new_key(),
            order(d.clone()),
        )
        .await;
        expect_error(r, 403, "forbidden").await;
        create_order(&app, &manager.token, order(d.clone())).await;
        create_order(&app, &admin.token, order(d)).await;
    }
    // An amount over the subtotal is a 422 even for a manager.
    let r = post_idem(
        &app,
        "/api/v1/orders",
        &manager.token,
        &new_key(),
        order(json!({"type": "amount", "amount_cents": 1001})),
    )
    .await;
    expect_error(r, 422, "validation_failed").await;

    // Staff cannot create orders; anonymous cannot either.
    let r = post_idem(
        &app,
        "/api/v1/orders",
        &staff.token,
        &new_key(),
        json!({"fulfilment": "pickup", "lines": [line(&a, 1)]}),
    )
    .await;
    expect_error(r, 403, "forbidden").await;
    let r = app
        .req(Method::POST, "/api/v1/orders")
        .header("Idempotency-Key", "k")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "unauthorized").await;

    // Customers: online, for themselves, pickup or delivery, no discounts.
    let own = customer.user["customer_id"].as_str().unwrap().to_owned();
    let o = create_order(
        &app,
        &customer.token,
        json!({"fulfilment": "delivery", "delivery_address": "1 Main St", "lines": [line(&a, 2)]}),
    )
    .await;
    assert_eq!(o["channel"], "online");
    assert_eq!(o["customer_id"], own.as_str());
    assert_eq!(o["delivery_address"], "1 Main St");
    let o = create_order(
        &app,
        &customer.token,
        json!({"fulfilment": "pickup", "customer_id": own, "lines": [line(&a, 1)]}),
    )
    .await;
    assert_eq!(o["customer_id"], own.as_str());
    let r = post_idem(
        &app,
        "/api/v1/orders",
        &customer.token,
        &new_key(),
        json!({"fulfilment": "in_store", "lines": [line(&a, 1)]}),
    )
    .await;
    let v = expect_error(r, 422, "validation_failed").await;
    assert!(v["error"]["details"]["fields"]["fulfilment"].is_array());
    let r = post_idem(&app, "/api/v1/orders", &customer.token, &new_key(), json!({"fulfilment": "pickup", "lines": [line(&a, 1)], "discount": {"type": "percent", "value_bp": 100}})).await;
    expect_error(r, 403, "forbidden").await;
    let theirs = other.user["customer_id"].as_str().unwrap();
    let r = post_idem(
        &app,
        "/api/v1/orders",
        &customer.token,
        &new_key(),
        json!({"fulfilment": "pickup", "customer_id": theirs, "lines": [line(&a, 1)]}),
    )
    .await;
    expect_error(r, 403, "forbidden").await;

    // A cashier may attach any existing customer to a pos order.
    let o = create_order(
        &app,
        &cashier.token,
        json!({"fulfilment": "pickup", "customer_id": theirs, "lines": [line(&a, 1)]}),
    )
    .await;
    assert_eq!(o["channel"], "pos");
    assert_eq!(o["customer_id"], theirs);

    // Staff writes are audited; the discount has its own entry.
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'order.discount'")
            .fetch_one(&app.state.db.write)
            .await
            .unwrap();
    assert_eq!(n, 6);
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'order.create' AND actor_id = $1::uuid",
    )
    .bind(cashier.id())
    .fetch_one(&app.state.db.write)
    .await
    .unwrap();
    assert_eq!(n, 3);
}

#[tokio::test]
async fn a_short_line_fails_the_whole_order_and_reports_every_short_line() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let a = insert_product(&app, "A", 100, 0, 5).await;
    let b = insert_product(&app, "B", 100, 0, 1).await;
    let c = insert_product(&app, "C", 100, 0, 0).await;

    let r = post_idem(
        &app,
        "/api/v1/orders",
        &cashier.token,
        "short",
        json!({"fulfilment": "pickup", "lines": [line(&a, 5), line(&b, 2), line(&c, 1)]}),
    )
    .await;
    let v = expect_error(r, 409, "insufficient_stock").await;
    let mut got = v["error"]["details"]["lines"].as_array().unwrap().clone();
    got.sort_by_key(|l| l["product_id"].as_str().unwrap().to_owned());
    let mut want = vec![
        json!({"product_id": b, "requested": 2, "available": 1}),
        json!({"product_id": c, "requested": 1, "available": 0}),
    ];
    want.sort_by_key(|l| l["product_id"].as_str().unwrap().to_owned());
    assert_eq!(got, want);
    assert_eq!(
        (
            stock_of(&app, &a).await,
            stock_of(&app, &b).await,
            stock_of(&app, &c).await
        ),
        (5, 1, 0)
    );
    assert_eq!(count_orders(&app).await, 0);
    let moves: i64 = sqlx::query_scalar("SELECT count(*) FROM inventory_movements")
        .fetch_one(&app.state.db.write)
        .await
        .unwrap();
    assert_eq!(moves, 0);

    // The failure was not stored: after a restock the same key and body go through.
    exec_sql(
        &app,
        "UPDATE products SET stock_on_hand = 10 WHERE id <> $1::uuid",
        &a,
    )
    .await;
    let r = post_idem(
        &app,
        "/api/v1/orders",
        &cashier.token,
        "short",
        json!({"fulfilment": "pickup", "lines": [line(&a, 5), line(&b, 2), line(&c, 1)]}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        (
            stock_of(&app, &a).await,
            stock_of(&app, &b).await,
            stock_of(&app, &c).await
        ),
        (0, 8, 9)
    );
}

#[tokio::test]
async fn idempotency_replays_rejects_reuse_and_is_scoped_per_caller() {
    let app = TestApp::spawn_with(&Opts::new().await.set("CURRENCY", "EUR")).await;
    let cashier = app.user("cashier").await;
    let other = app.user("cashier").await;
    let a = insert_product(&app, "A", 100, 0, 10).await;
    let req = json!({"fulfilment": "pickup", "lines": [line(&a, 1)], "note": "n"});

    let first = post_idem(&app, "/api/v1/orders", &cashier.token, "key-1", req.clone()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let loc = first.headers()["location"].clone();
    let (_, o1) = body(first).await;
    assert_eq!(o1["currency"], "EUR");

    // Same body, keys reordered and spaced differently: the same request.
    let same =
        json!({"note": "n", "lines": [{"quantity": 1, "product_id": a}], "fulfilment": "pickup"});
    let again = post_idem(&app, "/api/v1/orders", &cashier.token, "key-1", same).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"], loc);
    assert_eq!(again.headers()["etag"], "\"1\"");
    let (_, o2) = body(again).await;
    assert_eq!(o1, o2);
    assert_eq!(stock_of(&app, &a).await, 9);

    // Replays answer even after the world changed (product gone, stock gone).
    exec_sql(
        &app,
        "UPDATE products SET active = false, stock_on_hand = 0 WHERE id = $1::uuid",
        &a,
    )
    .await;
    let (s, o3) =
        body(post_idem(&app, "/api/v1/orders", &cashier.token, "key-1", req.clone()).await).await;
    assert_eq!((s, &o3), (StatusCode::CREATED, &o1));
    exec_sql(
        &app,
        "UPDATE products SET active = true, stock_on_hand = 9 WHERE id = $1::uuid",
        &a,
    )
    .await;

    // Same key, different body.
    let r = post_idem(
        &app,
        "/api/v1/orders",
        &cashier.token,
        "key-1",
        json!({"fulfilment": "pickup", "lines": [line(&a, 2)]}),
    )
    .await;
    expect_error(r, 422, "idempotency_key_reused").await;
    // Same key and body on another path is another request too.
    let path = format!("/api/v1/orders/{}/payments", o1["id"].as_str().unwrap());
    let r = post_idem(
        &app,
        &path,
        &cashier.token,
        "key-1",
        json!({"method": "card", "amount_cents": 100}),
    )
    .await;
    expect_error(r, 422, "idempotency_key_reused").await;

    // Keys are per caller: another cashier's "key-1" is a new order.
    let r = post_idem(&app, "/api/v1/orders", &other.token, "key-1", req).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.headers().get("idempotent-replayed").is_none());
    assert_eq!(count_orders(&app).await, 2);
    assert_eq!(stock_of(&app, &a).await, 8);

    // Keys are kept 24 h; the purge (run by the worker) frees older ones.
    sqlx::query(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE scope = $1",
    )
    .bind(cashier.id())
    .execute(&app.state.db.write)
    .await
    .unwrap();
    assert_eq!(
        till_db::idempotency::purge_older_than(&app.state.db.write, 24)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        till_db::idempotency::purge_older_than(&app.state.db.write, 24)
            .await
            .unwrap(),
        0
    );
    let r = post_idem(
        &app,
        "/api/v1/orders",
        &other.token,
        "key-1",
        json!({"fulfilment": "pickup", "lines": [line(&a, 2)]}),
    )
    .await;
    expect_error(r, 422, "idempotency_key_reused").await;
    let r = post_idem(
        &app,
        "/api/v1/orders",
        &cashier.token,
        "key-1",
        json!({"fulfilment": "pickup", "lines": [line(&a, 2)]}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}
