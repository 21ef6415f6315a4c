//! The stock ledger over HTTP: adjustments, never below zero, movements, low stock, roles.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn new_product(app: &TestApp, token: &str, sku: &str, extra: Value) -> Value {
    let mut b =
        json!({"sku": sku, "name": format!("Product {sku}"), "price_cents": 100, "tax_rate_bp": 0});
    if let (Some(b), Some(e)) = (b.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (s, v) = body(app.post("/api/v1/products", Some(token), b).await).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

async fn adjust(
    app: &TestApp,
    token: &str,
    product: &Value,
    delta: i64,
    reason: &str,
) -> (StatusCode, Value) {
    body(
        app.post(
            "/api/v1/inventory/adjustments",
            Some(token),
            json!({"product_id": product["id"], "delta": delta, "reason": reason}),
        )
        .await,
    )
    .await
}

async fn movement_count(app: &TestApp, product: &Value) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM inventory_movements WHERE product_id = $1::uuid")
        .bind(product["id"].as_str().unwrap())
        .fetch_one(&app.state.db.write)
        .await
        .unwrap()
}

#[tokio::test]
async fn adjustments_move_stock_and_write_the_ledger() {
    let app = TestApp::spawn().await;
    let mgr = app.user("manager").await;
    let p = new_product(&app, &mgr.token, "BEANS", json!({})).await;
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
    // Cache the product so the adjustment must invalidate it.
    assert_eq!(body(app.get(&path, None).await).await.1["stock_on_hand"], 0);

    let (s, v) = body(
        app.post(
            "/api/v1/inventory/adjustments",
            Some(&mgr.token),
            json!({"product_id": p["id"], "delta": 12, "reason": "received", "note": "  delivery #88 "}),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let m = &v["movement"];
    assert_eq!(m["product_id"], p["id"]);
    assert_eq!(m["delta"], 12);
    assert_eq!(m["reason"], "received");
    assert_eq!(m["balance_after"], 12);
    assert_eq!(m["order_id"], Value::Null);
    assert_eq!(m["note"], "delivery #88");
    assert_eq!(m["user_id"].as_str(), Some(mgr.id()));
    assert!(m["id"].is_string() && m["created_at"].is_string());
    assert_eq!(v["product"]["stock_on_hand"], 12);
    assert_eq!(v["product"]["version"], 1, "stock is not an editable field");

    let (s, v) = adjust(&app, &mgr.token, &p, -2, "damage").await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v["movement"]["balance_after"], 10);
    assert_eq!(
        body(app.get(&path, None).await).await.1["stock_on_hand"],
        10
    );

    let (action, data): (String, Value) =
        sqlx::query_as("SELECT action, data FROM audit_log WHERE action = 'stock.adjust' ORDER BY at DESC, id DESC LIMIT 1")
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
    let mgr = app.user("manager").await;
    let p = new_product(&app, &mgr.token, "CUPS", json!({})).await;
    adjust(&app, &mgr.token, &p, 3, "received").await;
    let before = movement_count(&app, &p).await;

    let (s, v) = adjust(&app, &mgr.token, &p, -5, "count").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "insufficient_stock");
    assert_eq!(
        v["error"]["details"],
        json!({"product_id": p["id"], "requested": 5, "available": 3})
    );
    assert_eq!(
        movement_count(&app, &p).await,
        before,
        "no movement written"
    );
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
    assert_eq!(body(app.get(&path, None).await).await.1["stock_on_hand"], 3);

    // Exactly down to zero is fine.
    let (s, v) = adjust(&app, &mgr.token, &p, -3, "correction").await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v["product"]["stock_on_hand"], 0);
}

#[tokio::test]
async fn concurrent_takes_never_oversell() {
    let app = TestApp::spawn().await;
    let mgr = app.user("manager").await;
    let p = new_product(&app, &mgr.token, "RACE", json!({})).await;
    adjust(&app, &mgr.token, &p, 10, "received").await;
    let mut tasks = Vec::new();
    for _ in 0..25 {
        let http = app.http.clone();
        let url = format!("{}/api/v1/inventory/adjustments", app.url);
        let token = mgr.token.clone();
        let id = p["id"].clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({"product_id": id, "delta": -1, "reason": "damage"}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => ok += 1,
            StatusCode::CONFLICT => {}
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
    let mgr = app.user("manager").await;
    let cashier = app.user("cashier").await;
    let p = new_product(&app, &mgr.token, "VAL", json!({})).await;
    let url = "/api/v1/inventory/adjustments";

    let e = expect_error(
        app.post(
            url,
            Some(&mgr.token),
            json!({"product_id": p["id"], "delta": 0, "reason": "received"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(e["error"]["details"]["fields"]["delta"].is_array());
    for reason in ["sale", "cancel", "return", "gift"] {
        let e = expect_error(
            app.post(
                url,
                Some(&mgr.token),
                json!({"product_id": p["id"], "delta": 1, "reason": reason}),
            )
            .await,
            422,
            "validation_failed",
        )
        .await;
        assert!(
            e["error"]["details"]["fields"]["reason"].is_array(),
            "{reason}"
        );
    }
    let e = expect_error(
        app.post(url, Some(&mgr.token), json!({})).await,
        422,
        "validation_failed",
    )
    .await;
    for f in ["product_id", "delta", "reason"] {
        assert!(e["error"]["details"]["fields"][f].is_array(), "{f}: {e}");
    }
    let e = expect_error(
        app.post(
            url,
            Some(&mgr.token),
            json!({"product_id": uuid::Uuid::now_v7(), "delta": 1, "reason": "received"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(e["error"]["details"]["fields"]["product_id"].is_array());
    expect_error(
        app.post(
            url,
            Some(&mgr.token),
            json!({"product_id": p["id"], "delta": 1.5, "reason": "received"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;

    expect_error(
        app.post(
            url,
            Some(&cashier.token),
            json!({"product_id": p["id"], "delta": 1, "reason": "received"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    expect_error(
        app.post(
            url,
            None,
            json!({"product_id": p["id"], "delta": 1, "reason": "received"}),
        )
        .await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(movement_count(&app, &p).await, 0);
}

#[tokio::test]
async fn movements_newest_first_paginated_and_filtered() {
    let app = TestApp::spawn().await;
    let mgr = app.user("manager").await;
    let a = new_product(&app, &mgr.token, "A", json!({})).await;
    let b = new_product(&app, &mgr.token, "B", json!({})).await;
    for d in [5, 4, 3] {
        adjust(&app, &mgr.token, &a, d, "received").await;
    }
    adjust(&app, &mgr.token, &b, 7, "received").await;

    let (s, v) = body(
        app.get("/api/v1/inventory/movements", Some(&mgr.token))
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let deltas: Vec<i64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["delta"].as_i64().unwrap())
        .collect();
    assert_eq!(deltas, vec![7, 3, 4, 5]);

    let path = format!(
        "/api/v1/inventory/movements?product_id={}&limit=2",
        a["id"].as_str().unwrap()
    );
    let (_, v) = body(app.get(&path, Some(&mgr.token)).await).await;
    let first: Vec<i64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["balance_after"].as_i64().unwrap())
        .collect();
    assert_eq!(first, vec![12, 9]);
    let c = v["next_cursor"].as_str().unwrap();
    let (_, v) = body(
        app.get(&format!("{path}&cursor={c}"), Some(&mgr.token))
            .await,
    )
    .await;
    let rest: Vec<i64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["balance_after"].as_i64().unwrap())
        .collect();
    assert_eq!(rest, vec![5]);
    assert_eq!(v["next_cursor"], Value::Null);

    expect_error(
        app.get("/api/v1/inventory/movements?cursor=x", Some(&mgr.token))
            .await,
        422,
        "validation_failed",
    )
    .await;
    let cashier = app.user("cashier").await;
    expect_error(
        app.get("/api/v1/inventory/movements", Some(&cashier.token))
            .await,
        403,
        "forbidden",
    )
    .await;
    expect_error(
        app.get("/api/v1/inventory/movements", None).await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn low_stock_lists_tracked_active_products_at_or_below_threshold() {
    let app = TestApp::spawn().await;
    let mgr = app.user("manager").await;
    let low = new_product(
        &app,
        &mgr.token,
        "LOW",
        json!({"name": "Low Oats", "low_stock_threshold": 5}),
    )
    .await;
    adjust(&app, &mgr.token, &low, 5, "received").await;
    let ok = new_product(
        &app,
        &mgr.token,
        "OK",
        json!({"name": "Plenty Rice", "low_stock_threshold": 5}),
    )
    .await;
    adjust(&app, &mgr.token, &ok, 6, "received").await;
    new_product(&app, &mgr.token, "EMPTY", json!({"name": "Empty Beans"})).await;
    new_product(
        &app,
        &mgr.token,
        "UNTRACKED",
        json!({"name": "Espresso Shot", "track_stock": false}),
    )
    .await;
    let gone = new_product(&app, &mgr.token, "GONE", json!({"name": "Gone Tea"})).await;
    app.req(
        reqwest::Method::DELETE,
        &format!("/api/v1/products/{}", gone["id"].as_str().unwrap()),
    )
    .bearer_auth(&mgr.token)
    .send()
    .await
    .unwrap();

    for role in ["cashier", "staff"] {
        let u = app.user(role).await;
        let (s, v) = body(app.get("/api/v1/inventory/low-stock", Some(&u.token)).await).await;
        assert_eq!(s, StatusCode::OK, "{role}");
        let names: Vec<&str> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["Empty Beans", "Low Oats"], "{role}");
    }
    let (_, v) = body(
        app.get("/api/v1/inventory/low-stock?limit=1", Some(&mgr.token))
            .await,
    )
    .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let c = v["next_cursor"].as_str().unwrap();
    let (_, v) = body(
        app.get(
            &format!("/api/v1/inventory/low-stock?limit=1&cursor={c}"),
            Some(&mgr.token),
        )
        .await,
    )
    .await;
    assert_eq!(v["items"][0]["name"], "Low Oats");

    // Receiving stock takes a product off the list.
    adjust(&app, &mgr.token, &low, 1, "received").await;
    let (_, v) = body(
        app.get("/api/v1/inventory/low-stock", Some(&mgr.token))
            .await,
    )
    .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);

    let customer = app.user("customer").await;
    expect_error(
        app.get("/api/v1/inventory/low-stock", Some(&customer.token))
            .await,
        403,
        "forbidden",
    )
    .await;
    expect_error(
        app.get("/api/v1/inventory/low-stock", None).await,
        401,
        "unauthorized",
    )
    .await;
}
