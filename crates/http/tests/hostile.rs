//! Hostile input, through two instances sharing one database and Redis: every refusal is the
//! 4xx it should be, names the field, and changes nothing; cursors are only the server's own;
//! a retried POST with its Idempotency-Key writes once, on whichever instance it lands.

use serde_json::{json, Value};
use till_test_support::*;

/// What a refusal must not have changed: the catalog, the stock of `product`, the orders.
async fn fingerprint(client: &Client, product: &str) -> Value {
    let products = client
        .get("/api/v1/products?include_inactive=true&limit=100")
        .await
        .expect_json(200);
    let stock = client
        .get(&format!("/api/v1/products/{product}"))
        .await
        .expect_json(200)["stock_on_hand"]
        .clone();
    let orders = client
        .get("/api/v1/orders?limit=100")
        .await
        .expect_json(200);
    let customers = client
        .get("/api/v1/customers?phone=%2B14155550199")
        .await
        .status();
    json!({
        "products": products["items"].as_array().map(Vec::len),
        "stock": stock,
        "orders": orders["items"].as_array().map(Vec::len),
        "customer_lookup": customers,
    })
}

#[tokio::test]
async fn a_table_of_hostile_inputs_each_answers_its_4xx_and_changes_nothing() {
    let (a, b) = TestApp::spawn_pair().await;
    let manager_a = a.as_manager().await;
    let manager = manager_a.on(&b);
    let customer = a.as_customer().await.on(&b);
    let product = ProductBuilder::new("HOSTILE-1")
        .price(250)
        .stock(10)
        .insert(&a)
        .await;
    let order = manager_a
        .create_order(OrderBuilder::pos().line(&product, 1))
        .await;
    let order_id = id_of(&order);
    let before = fingerprint(&manager, &product).await;

    let big = 10_000_000_000_i64;
    let money_max = 1_000_000_000_000_i64;
    let anon = b.anon();
    let cases: Vec<(Req, u16, &str, &str)> = vec![
        // Control characters in query parameters, read or not.
        (anon.get("/api/v1/products?q=a%00b"), 422, "validation_failed", "q"),
        (anon.get("/api/v1/products?q=%1B%5B31m"), 422, "validation_failed", "q"),
        (anon.get("/api/v1/products?x%00=1"), 422, "validation_failed", "query"),
        (anon.get("/api/v1/categories?utm=%07"), 422, "validation_failed", "utm"),
        (manager.get("/api/v1/customers?phone=%2B1555%00"), 422, "validation_failed", "phone"),
        // Dates outside 2000..=9999, in every spelling.
        (manager.get("/api/v1/orders?created_from=1999-12-31"), 422, "validation_failed", "created_from"),
        (manager.get("/api/v1/orders?created_from=-5000-01-01T00:00:00Z"), 422, "validation_failed", "created_from"),
        (manager.get("/api/v1/orders?created_to=10000-01-01"), 422, "validation_failed", "created_to"),
        (manager.get("/api/v1/orders?created_to=1970-01-01T00:00:00Z"), 422, "validation_failed", "created_to"),
        (manager.get("/api/v1/reports/sales?from=1900-01-01&to=1900-01-02"), 422, "validation_failed", "from"),
        // Cursors the server did not issue.
        (anon.get("/api/v1/products?cursor=WyJhIiwiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwIl0"), 422, "validation_failed", "cursor"),
        (manager.get("/api/v1/orders?cursor=eyJ4IjoxfQ.AAAAAAAAAAAAAAAAAAAAAA"), 422, "validation_failed", "cursor"),
        (manager.get(&format!("/api/v1/audit?cursor={}", "A".repeat(4000))), 422, "validation_failed", "cursor"),
        (manager.get("/api/v1/inventory/movements?cursor=..."), 422, "validation_failed", "cursor"),
        // Control characters in bodies; a line break only where text may span lines.
        (manager.post("/api/v1/products", ProductBuilder::new("H-2").name("Nul\u{0}Name")), 422, "validation_failed", "name"),
        (manager.post("/api/v1/products", ProductBuilder::new("H\t3")), 422, "validation_failed", "sku"),
        (manager.post("/api/v1/products", ProductBuilder::new("H-4").description("ok\nbut \u{1b}[2J")), 422, "validation_failed", "description"),
        (manager.post("/api/v1/categories", json!({"name": "Tea\r\nSet-Cookie: x"})), 422, "validation_failed", "name"),
        (manager.post("/api/v1/customers", json!({"name": "Ann\u{8}", "phone": "+14155550199"})), 422, "validation_failed", "name"),
        (anon.post("/api/v1/auth/register", json!({"email": "x@example.com", "password": "password-1", "name": "X\u{0}"})), 422, "validation_failed", "name"),
        (manager.post_idem("/api/v1/orders", OrderBuilder::pos().line(&product, 1).note("a\u{0}b")), 422, "validation_failed", "note"),
        (manager.post("/api/v1/inventory/adjustments", json!({"product_id": product, "delta": 1, "reason": "count", "note": "\u{0}"})), 422, "validation_failed", "note"),
        // Numbers out of range.
        (manager.post("/api/v1/products", ProductBuilder::new("H-5").price(big + 1)), 422, "validation_failed", "price_cents"),
        (manager.post("/api/v1/products", ProductBuilder::new("H-6").price(-1)), 422, "validation_failed", "price_cents"),
        (manager.post("/api/v1/products", with(ProductBuilder::new("H-7").body(), "price_cents", json!(1e30))), 422, "validation_failed", "price_cents"),
        (manager.post("/api/v1/products", ProductBuilder::new("H-8").low_stock(2_000_000)), 422, "validation_failed", "low_stock_threshold"),
        (manager.post("/api/v1/inventory/adjustments", json!({"product_id": product, "delta": 1_000_001, "reason": "received"})), 422, "validation_failed", "delta"),
        (manager.post("/api/v1/inventory/adjustments", json!({"product_id": product, "delta": i64::MIN, "reason": "count"})), 422, "validation_failed", "delta"),
        (manager.post_idem("/api/v1/orders", OrderBuilder::pos().line(&product, 1).amount_off(money_max + 1)), 422, "validation_failed", "discount.amount_cents"),
        (manager.pay(&order_id, json!({"method": "card", "amount_cents": money_max + 1})), 422, "validation_failed", "amount_cents"),
        (manager.pay(&order_id, json!({"method": "cash", "amount_cents": 1, "tendered_cents": i64::MAX})), 422, "validation_failed", "tendered_cents"),
        (manager.refund(&order_id, json!({"amount_cents": money_max + 1, "reason": "x"})), 422, "validation_failed", "amount_cents"),
        // A customer probing another's order by a forged cursor still sees nothing.
        (customer.get("/api/v1/orders?cursor=e30"), 422, "validation_failed", "cursor"),
    ];
    for (i, (req, status, code, field)) in cases.into_iter().enumerate() {
        let r = req.send().await;
        assert_eq!(
            (r.status(), r.error_code()),
            (status, Some(code)),
            "case {i}: {}",
            r.body
        );
        assert!(
            r.error_fields()[field].is_array(),
            "case {i} names {field}: {}",
            r.body
        );
        let text = r.body.to_string();
        assert!(
            !text.contains("SQL") && !text.contains("panicked"),
            "case {i} leaks internals: {text}"
        );
    }
    assert_eq!(fingerprint(&manager_a, &product).await, before);
    // Line breaks and tabs are fine where text may span lines.
    let ok = ProductBuilder::new("H-OK").description("Line one\n\tline two");
    manager.create_product(ok).await;
}

#[tokio::test]
async fn cursors_are_the_servers_own_and_work_on_every_instance() {
    let (a, b) = TestApp::spawn_pair().await;
    let manager = a.as_manager().await;
    for i in 0..3 {
        ProductBuilder::new(&format!("CUR-{i}"))
            .name(&format!("Cursor {i}"))
            .insert(&a)
            .await;
    }
    // Page with instance A, continue on instance B: the key is shared.
    let first = a
        .anon()
        .get("/api/v1/products?limit=2")
        .await
        .expect_json(200);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let second = b
        .anon()
        .get(&format!("/api/v1/products?limit=2&cursor={cursor}"))
        .await
        .expect_json(200);
    assert_eq!(second["items"][0]["name"], "Cursor 2");
    // The same position without its signature, or with one character changed, is refused.
    let (raw, tag) = cursor.rsplit_once('.').unwrap();
    let flipped = format!("{raw}.{}", flip_first(tag));
    for bad in [
        raw.to_owned(),
        flipped,
        format!("{}.{tag}", flip_first(raw)),
    ] {
        b.anon()
            .get(&format!("/api/v1/products?limit=2&cursor={bad}"))
            .await
            .expect_invalid(&["cursor"]);
    }
    // Every list signs its cursors: page through users (admin) and movements (manager).
    let admin = a.as_admin().await;
    a.as_cashier().await;
    let users = admin.get("/api/v1/users?limit=1").await.expect_json(200);
    let next = users["next_cursor"].as_str().unwrap();
    admin
        .on(&b)
        .get(&format!("/api/v1/users?limit=1&cursor={next}"))
        .await
        .expect_json(200);
    manager.get("/api/v1/audit?limit=1").await.expect_json(200);
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

fn flip_first(s: &str) -> String {
    let mut c = s.chars();
    let first = match c.next() {
        Some('A') => 'B',
        _ => 'A',
    };
    format!("{first}{}", c.as_str())
}

/// Every POST that writes honours Idempotency-Key: a retry on the other instance gets the
/// first answer (marked as replayed) and the write happened once.
#[tokio::test]
async fn a_retried_post_with_its_key_writes_once_on_any_instance() {
    let (a, b) = TestApp::spawn_pair().await;
    let admin_a = a.as_admin().await;
    let admin_b = admin_a.on(&b);
    let product = ProductBuilder::new("IDEM-1").stock(5).insert(&a).await;

    let adjustment = json!({"product_id": product, "delta": 3, "reason": "received"});
    let requests: Vec<(&str, Value)> = vec![
        ("/api/v1/inventory/adjustments", adjustment.clone()),
        ("/api/v1/products", ProductBuilder::new("IDEM-2").body()),
        ("/api/v1/categories", json!({"name": "Idempotent teas"})),
        (
            "/api/v1/customers",
            json!({"name": "Ida", "phone": "+14155550177"}),
        ),
        (
            "/api/v1/auth/register",
            json!({"email": "shopper@example.com", "password": "password-1", "name": "Shopper"}),
        ),
        (
            "/api/v1/users",
            json!({"email": "idem@example.com", "password": "password-1", "name": "Idem", "role": "cashier"}),
        ),
    ];
    for (path, body) in requests {
        let key = new_key();
        let first = admin_a.post(path, &body).idem(&key).await;
        assert_eq!(first.status(), 201, "{path}: {}", first.body);
        assert!(!first.has_header("idempotent-replayed"));
        let again = admin_b.post(path, &body).idem(&key).await;
        assert_eq!(again.status(), 201, "{path}: {}", again.body);
        assert_eq!(again.header("idempotent-replayed"), "true", "{path}");
        assert_eq!(again.body, first.body, "{path}");
        // The same key for another request is refused, and writes nothing.
        let other = if path.ends_with("adjustments") {
            with(body.clone(), "delta", json!(4))
        } else {
            with(body.clone(), "name", json!("Something else"))
        };
        admin_b
            .post(path, &other)
            .idem(&key)
            .await
            .expect_error(422, "idempotency_key_reused");
    }
    // A retried transition gets its answer back instead of a 409 for a move already made.
    let order = id_of(
        &admin_a
            .create_order(OrderBuilder::pickup().line(&product, 1))
            .await,
    );
    let path = format!("/api/v1/orders/{order}/transitions");
    let key = new_key();
    let first = admin_a
        .post(&path, json!({"to": "confirmed"}))
        .idem(&key)
        .await
        .expect_json(200);
    let again = admin_b
        .post(&path, json!({"to": "confirmed"}))
        .idem(&key)
        .await;
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.body, first);
    admin_b
        .post(&path, json!({"to": "confirmed"}))
        .await
        .expect_error(409, "invalid_transition");
    // The adjustment applied once: 5 + 3 (the order took 1).
    let p = admin_b
        .get(&format!("/api/v1/products/{product}"))
        .await
        .expect_json(200);
    assert_eq!(p["stock_on_hand"], 7);
    let moves = admin_a
        .get(&format!("/api/v1/inventory/movements?product_id={product}"))
        .await
        .expect_json(200);
    let received = moves["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["reason"] == "received")
        .count();
    assert_eq!(received, 1, "{moves}");
    // Without a key every request is its own write.
    for _ in 0..2 {
        admin_a
            .post("/api/v1/inventory/adjustments", &adjustment)
            .await
            .expect_status(201);
    }
    let p = admin_b
        .get(&format!("/api/v1/products/{product}"))
        .await
        .expect_json(200);
    assert_eq!(p["stock_on_hand"], 13);
}
