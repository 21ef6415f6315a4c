//! Order creation over HTTP: prices copied at order time, exact pricing, validation, discount
//! rules, roles, idempotency, and all-or-nothing stock.

use serde_json::{json, Value};
use till_test_support::*;

const ORDERS: &str = "/api/v1/orders";

async fn count_orders(app: &TestApp) -> i64 {
    count(app, "SELECT count(*) FROM orders", "").await
}

/// One field of every line.
fn per_line(o: &Value, key: &str) -> Vec<i64> {
    o["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l[key].as_i64().unwrap())
        .collect()
}

/// Order totals, in the order asked.
fn totals(o: &Value, keys: &[&str]) -> Vec<i64> {
    keys.iter().map(|k| o[*k].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn cashier_checkout_copies_prices_prices_exactly_and_takes_stock() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    let a = insert_product(&app, "A-1", 1000, 825, 10).await;
    let b = insert_product(&app, "B-1", 250, 0, 5).await;
    let c = ProductBuilder::new("C-1")
        .price(199)
        .tax_bp(1000)
        .untracked();
    let c = c.insert(&app).await;

    // The domain's worked example: 10 % off 2148 → 215, spread 100/75/40; tax 74 + 0 + 36.
    let order = OrderBuilder::pos()
        .line(&a, 1)
        .line(&b, 3)
        .line(&c, 2)
        .percent_off(1000)
        .note("  gift wrap  ");
    let r = cashier.post_order(&order).await.expect_status(201);
    let location = r.header("location").to_owned();
    assert_eq!(r.header("etag"), "\"1\"");
    let o = r.body;
    assert_eq!(location, format!("{ORDERS}/{}", o["id"].as_str().unwrap()));
    assert!(o["number"].as_str().unwrap().parse::<i64>().unwrap() >= 1001);
    assert_eq!(o["created_by"], cashier.id());
    let line_ids: Vec<&Value> = o["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["product_id"])
        .collect();
    assert_eq!(line_ids, [&json!(a), &json!(b), &json!(c)]);
    let history = o["status_history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["by"], cashier.id());
    assert!(history[0]["at"].as_str().unwrap().ends_with('Z'));
    // Every amount, the copied names and prices, and the order's defaults.
    assert_json_snap!("checkout", o);

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
    let r = cashier.get(&location).await;
    assert_eq!(r.header("etag"), "\"1\"");
    assert_eq!(r.expect_json(200), o);

    // A second order gets a larger number.
    let o2 = cashier
        .create_order(OrderBuilder::pickup().line(&b, 1))
        .await;
    let n1: i64 = o["number"].as_str().unwrap().parse().unwrap();
    let n2: i64 = o2["number"].as_str().unwrap().parse().unwrap();
    assert!(n2 > n1);
    assert_eq!(o2["note"], Value::Null);
}

#[tokio::test]
async fn pricing_worked_examples_through_the_api() {
    let app = TestApp::spawn().await;
    let manager = app.as_manager().await;
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
    let o = manager
        .create_order(OrderBuilder::pos().line(&x, 1).line(&y, 2).line(&z, 1))
        .await;
    assert_eq!(per_line(&o, "tax_cents"), [83, 17, 2]);
    assert_eq!(
        totals(&o, &["subtotal_cents", "tax_cents", "total_cents"]),
        [1230, 102, 1332]
    );

    // Amount discount of 333 over 500/300/200 (over 20 %: a manager may): floors 166/99/66,
    // the 2 leftover cents to the largest remainders (lines 2 and 3); 10 % tax on the rest.
    let (u, v, w) = (
        p("U", 100, 1000).await,
        p("V", 300, 1000).await,
        p("W", 200, 1000).await,
    );
    let o = manager
        .create_order(
            OrderBuilder::pickup()
                .line(&u, 5)
                .line(&v, 1)
                .line(&w, 1)
                .amount_off(333),
        )
        .await;
    assert_eq!(per_line(&o, "discount_cents"), [166, 100, 67]);
    assert_eq!(per_line(&o, "tax_cents"), [33, 20, 13]);
    assert_eq!(per_line(&o, "total_cents"), [367, 220, 146]);
    assert_eq!(
        totals(&o, &["discount_cents", "tax_cents", "total_cents"]),
        [333, 66, 733]
    );

    // Ties go to the earlier line: 2 cents over three equal lines → 1, 1, 0.
    let (t1, t2, t3) = (
        p("T1", 100, 0).await,
        p("T2", 100, 0).await,
        p("T3", 100, 0).await,
    );
    let o = manager
        .create_order(
            OrderBuilder::pickup()
                .line(&t1, 1)
                .line(&t2, 1)
                .line(&t3, 1)
                .amount_off(2),
        )
        .await;
    assert_eq!(per_line(&o, "discount_cents"), [1, 1, 0]);
    assert_eq!(o["total_cents"], 298);

    // Percent discounts round half up: 5 % of 150 = 7.5 → 8; 100 % leaves nothing to tax.
    let h = p("H", 150, 0).await;
    let o = manager
        .create_order(OrderBuilder::pickup().line(&h, 1).percent_off(500))
        .await;
    assert_eq!(o["discount_cents"], 8);
    let f = p("F", 999, 825).await;
    let o = manager
        .create_order(OrderBuilder::pickup().line(&f, 3).percent_off(10000))
        .await;
    assert_eq!(
        totals(
            &o,
            &[
                "subtotal_cents",
                "discount_cents",
                "tax_cents",
                "total_cents"
            ]
        ),
        [2997, 2997, 0, 0]
    );
}

#[tokio::test]
async fn invalid_orders_are_422_and_change_nothing() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    let a = insert_product(&app, "A", 100, 0, 5).await;
    let gone = ProductBuilder::new("GONE")
        .stock(5)
        .inactive()
        .insert(&app)
        .await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let pickup = || OrderBuilder::pickup();
    let pos = || OrderBuilder::pos().line(&a, 1);
    let many = (0..101).fold(pickup(), |o, _| o.line(&a, 1));

    let cases: Vec<(OrderBuilder, &str)> = vec![
        (pickup(), "lines"),
        (many, "lines"),
        (pickup().line(&a, 0), "lines[0].quantity"),
        (pickup().line(&a, 1001), "lines[0].quantity"),
        (pickup().line(&a, 1).line(&a, 2), "lines[1].product_id"),
        (
            pickup().line(&a, 1).line(&unknown, 1),
            "lines[1].product_id",
        ),
        (pickup().line(&gone, 1), "lines[0].product_id"),
        (
            OrderBuilder::fulfilment("delivery").line(&a, 1),
            "delivery_address",
        ),
        (
            OrderBuilder::delivery("   ").line(&a, 1),
            "delivery_address",
        ),
        (
            pickup()
                .line(&a, 1)
                .set("delivery_address", json!("1 Main St")),
            "delivery_address",
        ),
        (pos().amount_off(101), "discount.amount_cents"),
        (pos().percent_off(10001), "discount.value_bp"),
        (pos().amount_off(-1), "discount.amount_cents"),
        (pos().customer(&unknown), "customer_id"),
        (
            OrderBuilder::fulfilment("by_drone").line(&a, 1),
            "fulfilment",
        ),
        (
            pickup().set("lines", json!([{"product_id": a, "quantity": 1.5}])),
            "lines[0].quantity",
        ),
        (pickup().line(&a, 1).set("surprise", json!(true)), "body"),
    ];
    for (i, (req, field)) in cases.into_iter().enumerate() {
        let v = cashier
            .post(ORDERS, &req)
            .idem(&format!("k{i}"))
            .await
            .expect_error(422, "validation_failed");
        let fields = v["error"]["details"]["fields"].as_object().unwrap();
        assert!(
            fields.contains_key(field) || field == "body",
            "case {i} {}: {v}",
            req.body()
        );
    }
    assert_eq!(count_orders(&app).await, 0);
    assert_eq!(stock_of(&app, &a).await, 5);

    // Not JSON, malformed, missing key, key too long; 255 characters is still a key.
    let post = || cashier.request(reqwest::Method::POST, ORDERS);
    post()
        .idem("x")
        .body("fulfilment=pickup")
        .await
        .expect_error(415, "unsupported_media_type");
    post()
        .idem("y")
        .header("content-type", "application/json")
        .body("{nope")
        .await
        .expect_error(400, "bad_request");
    let one = pickup().line(&a, 1);
    cashier
        .post(ORDERS, &one)
        .await
        .expect_error(400, "idempotency_key_required");
    cashier
        .post(ORDERS, &one)
        .idem(&"k".repeat(256))
        .await
        .expect_error(400, "bad_request");
    cashier
        .post(ORDERS, &one)
        .idem(&"k".repeat(255))
        .await
        .expect_status(201);
}

#[tokio::test]
async fn discounts_and_roles() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    let manager = app.as_manager().await;
    let admin = app.as_admin().await;
    let staff = app.as_staff().await;
    let customer = app.as_customer().await;
    let other = app.as_customer().await;
    let a = insert_product(&app, "A", 1000, 0, 100).await;
    let order = || OrderBuilder::pos().line(&a, 1);

    // Cashiers may give up to 20 %; above needs manager+.
    cashier.create_order(order().percent_off(2000)).await;
    cashier.create_order(order().amount_off(200)).await;
    for over in [order().percent_off(2001), order().amount_off(201)] {
        cashier
            .post_order(&over)
            .await
            .expect_error(403, "forbidden");
        manager.create_order(&over).await;
        admin.create_order(&over).await;
    }
    // An amount over the subtotal is a 422 even for a manager.
    manager
        .post_order(order().amount_off(1001))
        .await
        .expect_error(422, "validation_failed");

    // Staff cannot create orders; anonymous cannot either.
    staff
        .post_order(OrderBuilder::pickup().line(&a, 1))
        .await
        .expect_error(403, "forbidden");
    app.anon()
        .post(ORDERS, json!({}))
        .idem("k")
        .await
        .expect_error(401, "unauthorized");

    // Customers: online, for themselves, pickup or delivery, no discounts.
    let own = customer.customer_id();
    let o = customer
        .create_order(OrderBuilder::delivery("1 Main St").line(&a, 2))
        .await;
    assert_eq!(o["channel"], "online");
    assert_eq!(o["customer_id"], own);
    assert_eq!(o["delivery_address"], "1 Main St");
    let o = customer
        .create_order(OrderBuilder::pickup().customer(own).line(&a, 1))
        .await;
    assert_eq!(o["customer_id"], own);
    let v = customer
        .post_order(OrderBuilder::pos().line(&a, 1))
        .await
        .expect_error(422, "validation_failed");
    assert!(v["error"]["details"]["fields"]["fulfilment"].is_array());
    customer
        .post_order(OrderBuilder::pickup().line(&a, 1).percent_off(100))
        .await
        .expect_error(403, "forbidden");
    let theirs = other.customer_id();
    customer
        .post_order(OrderBuilder::pickup().customer(theirs).line(&a, 1))
        .await
        .expect_error(403, "forbidden");

    // A cashier may attach any existing customer to a pos order.
    let o = cashier
        .create_order(OrderBuilder::pickup().customer(theirs).line(&a, 1))
        .await;
    assert_eq!(o["channel"], "pos");
    assert_eq!(o["customer_id"], theirs);

    // Staff writes are audited; the discount has its own entry.
    assert_eq!(audit_count(&app, "order.discount").await, 6);
    let n = count(
        &app,
        "SELECT count(*) FROM audit_log WHERE action = 'order.create' AND actor_id = $1::uuid",
        cashier.id(),
    )
    .await;
    assert_eq!(n, 3);
}

#[tokio::test]
async fn a_short_line_fails_the_whole_order_and_reports_every_short_line() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    let a = insert_product(&app, "A", 100, 0, 5).await;
    let b = insert_product(&app, "B", 100, 0, 1).await;
    let c = insert_product(&app, "C", 100, 0, 0).await;
    let stocks = || async {
        (
            stock_of(&app, &a).await,
            stock_of(&app, &b).await,
            stock_of(&app, &c).await,
        )
    };
    let order = OrderBuilder::pickup().line(&a, 5).line(&b, 2).line(&c, 1);

    let v = cashier
        .post(ORDERS, &order)
        .idem("short")
        .await
        .expect_error(409, "insufficient_stock");
    let mut got = v["error"]["details"]["lines"].as_array().unwrap().clone();
    got.sort_by_key(|l| l["product_id"].as_str().unwrap().to_owned());
    let mut want = vec![
        json!({"product_id": b, "requested": 2, "available": 1}),
        json!({"product_id": c, "requested": 1, "available": 0}),
    ];
    want.sort_by_key(|l| l["product_id"].as_str().unwrap().to_owned());
    assert_eq!(got, want);
    assert_eq!(stocks().await, (5, 1, 0));
    assert_eq!(count_orders(&app).await, 0);
    assert_eq!(
        count(&app, "SELECT count(*) FROM inventory_movements", "").await,
        0
    );

    // The failure was not stored: after a restock the same key and body go through.
    exec_sql(
        &app,
        "UPDATE products SET stock_on_hand = 10 WHERE id <> $1::uuid",
        &a,
    )
    .await;
    cashier
        .post(ORDERS, &order)
        .idem("short")
        .await
        .expect_status(201);
    assert_eq!(stocks().await, (0, 8, 9));
}

#[tokio::test]
async fn idempotency_replays_rejects_reuse_and_is_scoped_per_caller() {
    let app = TestApp::spawn_with(&Opts::new().await.set("CURRENCY", "EUR")).await;
    let cashier = app.as_cashier().await;
    let other = app.as_cashier().await;
    let a = insert_product(&app, "A", 100, 0, 10).await;
    let req = OrderBuilder::pickup().line(&a, 1).note("n");
    let two = OrderBuilder::pickup().line(&a, 2);
    let with_key = |who: &Client, body: &OrderBuilder| who.post(ORDERS, body).idem("key-1");

    let first = with_key(&cashier, &req).await.expect_status(201);
    assert!(!first.has_header("idempotent-replayed"));
    let o1 = first.body.clone();
    assert_eq!(o1["currency"], "EUR");

    // Same body, keys reordered and spaced differently: the same request.
    let same =
        json!({"note": "n", "lines": [{"quantity": 1, "product_id": a}], "fulfilment": "pickup"});
    let again = cashier
        .post(ORDERS, same)
        .idem("key-1")
        .await
        .expect_status(201);
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("etag"), "\"1\"");
    assert_eq!(again.body, o1);
    assert_eq!(stock_of(&app, &a).await, 9);

    // Replays answer even after the world changed (product gone, stock gone).
    exec_sql(
        &app,
        "UPDATE products SET active = false, stock_on_hand = 0 WHERE id = $1::uuid",
        &a,
    )
    .await;
    assert_eq!(with_key(&cashier, &req).await.expect_json(201), o1);
    exec_sql(
        &app,
        "UPDATE products SET active = true, stock_on_hand = 9 WHERE id = $1::uuid",
        &a,
    )
    .await;

    // Same key, different body.
    with_key(&cashier, &two)
        .await
        .expect_error(422, "idempotency_key_reused");
    // Same key and body on another path is another request too.
    let path = format!("{ORDERS}/{}/payments", o1["id"].as_str().unwrap());
    cashier
        .post(&path, json!({"method": "card", "amount_cents": 100}))
        .idem("key-1")
        .await
        .expect_error(422, "idempotency_key_reused");

    // Keys are per caller: another cashier's "key-1" is a new order.
    let r = with_key(&other, &req).await.expect_status(201);
    assert!(!r.has_header("idempotent-replayed"));
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
    let purge = || till_db::idempotency::purge_older_than(&app.state.db.write, 24);
    assert_eq!(purge().await.unwrap(), 1);
    assert_eq!(purge().await.unwrap(), 0);
    with_key(&other, &two)
        .await
        .expect_error(422, "idempotency_key_reused");
    with_key(&cashier, &two).await.expect_status(201);
}
