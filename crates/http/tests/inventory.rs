//! The stock ledger over HTTP: adjustments, never below zero, movements, low stock, roles.

use serde_json::{json, Value};
use till_test_support::*;

const ADJUST: &str = "/api/v1/inventory/adjustments";
const MOVEMENTS: &str = "/api/v1/inventory/movements";
const LOW_STOCK: &str = "/api/v1/inventory/low-stock";

fn adjustment(product: &Value, delta: impl Into<Value>, reason: &str) -> Value {
    json!({"product_id": product["id"], "delta": delta.into(), "reason": reason})
}

async fn adjust(who: &Client, product: &Value, delta: i64, reason: &str) -> Resp {
    who.post(ADJUST, adjustment(product, delta, reason)).await
}

async fn movement_count(app: &TestApp, product: &Value) -> i64 {
    count(
        app,
        "SELECT count(*) FROM inventory_movements WHERE product_id = $1::uuid",
        product["id"].as_str().unwrap(),
    )
    .await
}

fn product_path(p: &Value) -> String {
    format!("/api/v1/products/{}", p["id"].as_str().unwrap())
}

/// A list's `items[].<key>` numbers.
fn column(page: &Value, key: &str) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[key].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn adjustments_move_stock_and_write_the_ledger() {
    let app = TestApp::spawn().await;
    let mgr = app.as_manager().await;
    let p = mgr.create_product(ProductBuilder::new("BEANS")).await;
    let path = product_path(&p);
    // Cache the product so the adjustment must invalidate it.
    assert_eq!(app.anon().get(&path).await.body["stock_on_hand"], 0);

    let v = mgr
        .post(
            ADJUST,
            json!({"product_id": p["id"], "delta": 12, "reason": "received", "note": "  delivery #88 "}),
        )
        .await
        .expect_json(201);
    let m = &v["movement"];
    assert_eq!(m["product_id"], p["id"]);
    assert_eq!(m["user_id"].as_str(), Some(mgr.id()));
    assert!(m["id"].is_string() && m["created_at"].is_string());
    // Delta, reason, balance, no order, the trimmed note; stock is not an editable field
    // (the product's version stays 1).
    assert_json_snap!("adjustment", v);

    let v = adjust(&mgr, &p, -2, "damage").await.expect_json(201);
    assert_eq!(v["movement"]["balance_after"], 10);
    assert_eq!(app.anon().get(&path).await.body["stock_on_hand"], 10);

    let (action, data): (String, Value) = sqlx::query_as(
        "SELECT action, data FROM audit_log WHERE action = 'stock.adjust'
         ORDER BY at DESC, id DESC LIMIT 1",
    )
    .fetch_one(&app.state.db.write)
    .await
    .unwrap();
    assert_eq!(action, "stock.adjust");
    assert_eq!(data["delta"], -2);
    assert_eq!(data["balance_after"], 10);
}

#[tokio::test]
async fn stock_never_goes_below_zero() {
    let app = TestApp::spawn().await;
    let mgr = app.as_manager().await;
    let p = mgr.create_product(ProductBuilder::new("CUPS")).await;
    adjust(&mgr, &p, 3, "received").await;
    let before = movement_count(&app, &p).await;

    let v = adjust(&mgr, &p, -5, "count")
        .await
        .expect_error(409, "insufficient_stock");
    assert_eq!(
        v["error"]["details"],
        json!({"product_id": p["id"], "requested": 5, "available": 3})
    );
    assert_eq!(
        movement_count(&app, &p).await,
        before,
        "no movement written"
    );
    assert_eq!(
        app.anon().get(&product_path(&p)).await.body["stock_on_hand"],
        3
    );

    // Exactly down to zero is fine.
    let v = adjust(&mgr, &p, -3, "correction").await.expect_json(201);
    assert_eq!(v["product"]["stock_on_hand"], 0);
}

#[tokio::test]
async fn concurrent_takes_never_oversell() {
    let app = TestApp::spawn().await;
    let mgr = app.as_manager().await;
    let p = mgr.create_product(ProductBuilder::new("RACE")).await;
    adjust(&mgr, &p, 10, "received").await;
    let tasks: Vec<_> = (0..25)
        .map(|_| tokio::spawn(mgr.post(ADJUST, adjustment(&p, -1, "damage")).send()))
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap().status() {
            201 => ok += 1,
            409 => {}
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!(ok, 10);
    let (stock, sum): (i64, i64) = sqlx::query_as(
        "SELECT p.stock_on_hand, (SELECT sum(delta)::bigint FROM inventory_movements m WHERE m.product_id = p.id)
         FROM products p WHERE id = $1::uuid",
    )
    .bind(p["id"].as_str().unwrap())
    .fetch_one(&app.state.db.write)
    .await
    .unwrap();
    assert_eq!((stock, sum), (0, 0), "the balance is the sum of the ledger");
}

#[tokio::test]
async fn adjustment_validation_and_roles() {
    let app = TestApp::spawn().await;
    let mgr = app.as_manager().await;
    let cashier = app.as_cashier().await;
    let p = mgr.create_product(ProductBuilder::new("VAL")).await;
    let unknown = json!({"id": uuid::Uuid::now_v7()});

    // (body, fields the answer must name)
    let mut invalid: Vec<(Value, &[&str])> = vec![
        (adjustment(&p, 0, "received"), &["delta"]),
        (json!({}), &["product_id", "delta", "reason"]),
        (adjustment(&unknown, 1, "received"), &["product_id"]),
        (adjustment(&p, 1.5, "received"), &[]),
    ];
    for reason in ["sale", "cancel", "return", "gift"] {
        invalid.push((adjustment(&p, 1, reason), &["reason"]));
    }
    for (body, fields) in invalid {
        let e = mgr
            .post(ADJUST, &body)
            .await
            .expect_error(422, "validation_failed");
        for f in fields {
            assert!(
                e["error"]["details"]["fields"][f].is_array(),
                "{body} {f}: {e}"
            );
        }
    }

    let ok = adjustment(&p, 1, "received");
    cashier
        .post(ADJUST, &ok)
        .await
        .expect_error(403, "forbidden");
    app.anon()
        .post(ADJUST, &ok)
        .await
        .expect_error(401, "unauthorized");
    assert_eq!(movement_count(&app, &p).await, 0);
}

#[tokio::test]
async fn movements_newest_first_paginated_and_filtered() {
    let app = TestApp::spawn().await;
    let mgr = app.as_manager().await;
    let a = mgr.create_product(ProductBuilder::new("A")).await;
    let b = mgr.create_product(ProductBuilder::new("B")).await;
    for d in [5, 4, 3] {
        adjust(&mgr, &a, d, "received").await;
    }
    adjust(&mgr, &b, 7, "received").await;

    let v = mgr.get(MOVEMENTS).await.expect_json(200);
    assert_eq!(column(&v, "delta"), [7, 3, 4, 5]);

    let path = format!(
        "{MOVEMENTS}?product_id={}&limit=2",
        a["id"].as_str().unwrap()
    );
    let v = mgr.get(&path).await.body;
    assert_eq!(column(&v, "balance_after"), [12, 9]);
    let c = v["next_cursor"].as_str().unwrap();
    let v = mgr.get(&format!("{path}&cursor={c}")).await.body;
    assert_eq!(column(&v, "balance_after"), [5]);
    assert_eq!(v["next_cursor"], Value::Null);

    mgr.get(&format!("{MOVEMENTS}?cursor=x"))
        .await
        .expect_error(422, "validation_failed");
    let cashier = app.as_cashier().await;
    cashier.get(MOVEMENTS).await.expect_error(403, "forbidden");
    app.anon()
        .get(MOVEMENTS)
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test]
async fn low_stock_lists_tracked_active_products_at_or_below_threshold() {
    let app = TestApp::spawn().await;
    let mgr = app.as_manager().await;
    let low = ProductBuilder::new("LOW").name("Low Oats").low_stock(5);
    let low = mgr.create_product(low).await;
    adjust(&mgr, &low, 5, "received").await;
    let ok = ProductBuilder::new("OK").name("Plenty Rice").low_stock(5);
    let ok = mgr.create_product(ok).await;
    adjust(&mgr, &ok, 6, "received").await;
    mgr.create_product(ProductBuilder::new("EMPTY").name("Empty Beans"))
        .await;
    mgr.create_product(
        ProductBuilder::new("UNTRACKED")
            .name("Espresso Shot")
            .untracked(),
    )
    .await;
    let gone = mgr
        .create_product(ProductBuilder::new("GONE").name("Gone Tea"))
        .await;
    mgr.delete(&product_path(&gone)).await;

    for role in ["cashier", "staff"] {
        let v = app
            .as_role(role)
            .await
            .get(LOW_STOCK)
            .await
            .expect_json(200);
        let names: Vec<&str> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Empty Beans", "Low Oats"], "{role}");
    }
    let v = mgr.get(&format!("{LOW_STOCK}?limit=1")).await.body;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let c = v["next_cursor"].as_str().unwrap();
    let v = mgr
        .get(&format!("{LOW_STOCK}?limit=1&cursor={c}"))
        .await
        .body;
    assert_eq!(v["items"][0]["name"], "Low Oats");

    // Receiving stock takes a product off the list.
    adjust(&mgr, &low, 1, "received").await;
    let v = mgr.get(LOW_STOCK).await.body;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);

    let customer = app.as_customer().await;
    customer.get(LOW_STOCK).await.expect_error(403, "forbidden");
    app.anon()
        .get(LOW_STOCK)
        .await
        .expect_error(401, "unauthorized");
}
