//! The order lifecycle: every transition of API.md's table, every forbidden one, If-Match,
//! stock coming back on cancel, and what customers may do.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ALL: [&str; 8] = [
    "pending",
    "confirmed",
    "preparing",
    "ready",
    "out_for_delivery",
    "delivered",
    "completed",
    "cancelled",
];

/// API.md's table, written out independently of the domain crate.
fn allowed(from: &str, fulfilment: &str) -> Vec<&'static str> {
    match (from, fulfilment) {
        ("pending", _) => vec!["confirmed", "cancelled"],
        ("confirmed", _) => vec!["preparing", "cancelled"],
        ("preparing", _) => vec!["ready", "cancelled"],
        ("ready", "delivery") => vec!["out_for_delivery", "cancelled"],
        ("ready", _) => vec!["completed", "cancelled"],
        ("out_for_delivery", _) => vec!["delivered"],
        _ => vec![],
    }
}

/// The moves that reach `status` from `pending`.
fn path_to(status: &str) -> Vec<&'static str> {
    let full = ["confirmed", "preparing", "ready"];
    match status {
        "pending" => vec![],
        "confirmed" => full[..1].to_vec(),
        "preparing" => full[..2].to_vec(),
        "ready" => full.to_vec(),
        "out_for_delivery" => [&full[..], &["out_for_delivery"]].concat(),
        "delivered" => [&full[..], &["out_for_delivery", "delivered"]].concat(),
        "completed" => [&full[..], &["completed"]].concat(),
        "cancelled" => vec!["cancelled"],
        _ => unreachable!(),
    }
}

fn reachable(fulfilment: &str) -> Vec<&'static str> {
    ALL.iter()
        .copied()
        .filter(|s| fulfilment == "delivery" || !matches!(*s, "out_for_delivery" | "delivered"))
        .filter(|s| fulfilment != "delivery" || *s != "completed")
        .collect()
}

async fn transition(app: &TestApp, token: &str, id: &str, to: &str) -> reqwest::Response {
    app.post(
        &format!("/api/v1/orders/{id}/transitions"),
        Some(token),
        json!({"to": to}),
    )
    .await
}

async fn order_in(
    app: &TestApp,
    token: &str,
    product: &str,
    fulfilment: &str,
    status: &str,
) -> Value {
    let mut req =
        json!({"fulfilment": fulfilment, "lines": [{"product_id": product, "quantity": 1}]});
    if fulfilment == "delivery" {
        req["delivery_address"] = json!("1 Main St");
    }
    let mut o = create_order(app, token, req).await;
    for step in path_to(status) {
        let (s, v) = body(transition(app, token, o["id"].as_str().unwrap(), step).await).await;
        assert_eq!(s, StatusCode::OK, "{step}: {v}");
        o = v;
    }
    assert_eq!(o["status"], status);
    o
}

#[tokio::test]
async fn every_allowed_transition_and_every_forbidden_one() {
    let app = TestApp::spawn().await;
    let staff = app.user("staff").await;
    let cashier = app.user("cashier").await;
    let p = insert_product(&app, "P", 100, 0, 10_000).await;

    for fulfilment in ["in_store", "pickup", "delivery"] {
        for from in reachable(fulfilment) {
            let ok = allowed(from, fulfilment);
            // Every allowed move, each on its own order, by a staff (fulfilment) user.
            for to in &ok {
                let o = order_in(&app, &cashier.token, &p, fulfilment, from).await;
                let resp = transition(&app, &staff.token, o["id"].as_str().unwrap(), to).await;
                assert_eq!(resp.status(), StatusCode::OK, "{fulfilment}: {from} → {to}");
                let version = o["version"].as_i64().unwrap() + 1;
                assert_eq!(resp.headers()["etag"], format!("\"{version}\"").as_str());
                let (_, after) = body(resp).await;
                assert_eq!(after["status"], *to);
                assert_eq!(after["version"], version);
                let history = after["status_history"].as_array().unwrap();
                assert_eq!(history.len(), path_to(from).len() + 2);
                assert_eq!(history.last().unwrap()["status"], *to);
                assert_eq!(history.last().unwrap()["by"], staff.id());
            }
            // Every other target is refused with the allowed set, and nothing changes.
            let o = order_in(&app, &cashier.token, &p, fulfilment, from).await;
            let id = o["id"].as_str().unwrap();
            for to in ALL.iter().filter(|t| !ok.contains(t)) {
                let v = expect_error(
                    transition(&app, &staff.token, id, to).await,
                    409,
                    "invalid_transition",
                )
                .await;
                assert_eq!(
                    v["error"]["details"],
                    json!({"from": from, "to": to, "allowed": ok}),
                    "{fulfilment}: {from} → {to}"
                );
            }
            let (_, now) = body(
                app.get(&format!("/api/v1/orders/{id}"), Some(&staff.token))
                    .await,
            )
            .await;
            assert_eq!(now, o);
        }
    }

    // A full delivery walk records every step in order.
    let o = order_in(&app, &cashier.token, &p, "delivery", "delivered").await;
    let statuses: Vec<&str> = o["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "pending",
            "confirmed",
            "preparing",
            "ready",
            "out_for_delivery",
            "delivered"
        ]
    );
    assert_eq!(o["version"], 6);

    // Staff transitions are audited with from/to.
    let (s, audit) = body(
        app.get(
            &format!(
                "/api/v1/audit?action=order.transition&actor_id={}&limit=1",
                staff.id()
            ),
            Some(&app.admin().await.token),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(audit["items"][0]["entity_type"], "order");
    assert!(audit["items"][0]["data"]["from"].is_string());
}

#[tokio::test]
async fn if_match_guards_transitions() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let p = insert_product(&app, "P", 100, 0, 10).await;
    let o = create_order(
        &app,
        &cashier.token,
        json!({"fulfilment": "pickup", "lines": [{"product_id": p, "quantity": 1}]}),
    )
    .await;
    let id = o["id"].as_str().unwrap();
    let path = format!("/api/v1/orders/{id}/transitions");
    let send = |if_match: &'static str, to: &'static str| {
        app.req(Method::POST, &path)
            .bearer_auth(&cashier.token)
            .header("If-Match", if_match)
            .json(&json!({"to": to}))
            .send()
    };

    expect_error(
        send("\"2\"", "confirmed").await.unwrap(),
        412,
        "precondition_failed",
    )
    .await;
    expect_error(
        send("garbage", "confirmed").await.unwrap(),
        412,
        "precondition_failed",
    )
    .await;
    let r = send("\"1\"", "confirmed").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"2\"");
    // The old version no longer matches; a weak tag or `*` of the current one does.
    expect_error(
        send("\"1\"", "preparing").await.unwrap(),
        412,
        "precondition_failed",
    )
    .await;
    assert_eq!(
        send("W/\"2\"", "preparing").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(send("*", "ready").await.unwrap().status(), StatusCode::OK);

    // A stale If-Match wins over an invalid move: the client must reload first.
    expect_error(
        send("\"1\"", "pending").await.unwrap(),
        412,
        "precondition_failed",
    )
    .await;
    let v = expect_error(
        transition(&app, &cashier.token, id, "shipped").await,
        422,
        "validation_failed",
    )
    .await;
    assert!(v["error"]["details"]["fields"]["to"].is_array(), "{v}");
    let missing = uuid::Uuid::now_v7();
    expect_error(
        transition(&app, &cashier.token, &missing.to_string(), "confirmed").await,
        404,
        "not_found",
    )
    .await;
    let r = app.post(&path, None, json!({"to": "confirmed"})).await;
    expect_error(r, 401, "unauthorized").await;
}

#[tokio::test]
async fn cancelling_returns_what_was_taken_and_not_yet_returned() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let manager = app.user("manager").await;
    let a = insert_product(&app, "A", 1000, 0, 10).await;
    let b = insert_product(&app, "B", 500, 0, 0).await;
    exec_sql(
        &app,
        "UPDATE products SET track_stock = false WHERE id = $1::uuid",
        &b,
    )
    .await;
    let o = create_order(&app, &cashier.token, json!({"fulfilment": "pickup", "lines": [{"product_id": a, "quantity": 3}, {"product_id": b, "quantity": 1}]})).await;
    let id = o["id"].as_str().unwrap();
    assert_eq!(stock_of(&app, &a).await, 7);

    // Paid, one unit refunded and restocked, then cancelled: only the other two come back.
    let r = post_idem(
        &app,
        &format!("/api/v1/orders/{id}/payments"),
        &cashier.token,
        &new_key(),
        json!({"method": "card", "amount_cents": 3500}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = post_idem(
        &app,
        &format!("/api/v1/orders/{id}/refunds"),
        &manager.token,
        &new_key(),
        json!({"amount_cents": 1000, "reason": "damaged", "restock": [{"product_id": a, "quantity": 1}]}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(stock_of(&app, &a).await, 8);
    let (s, cancelled) = body(transition(&app, &cashier.token, id, "cancelled").await).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(stock_of(&app, &a).await, 10);
    assert_eq!(stock_of(&app, &b).await, 0);
    let moves: Vec<(String, i64, i64)> = sqlx::query_as("SELECT reason, delta, balance_after FROM inventory_movements WHERE order_id = $1::uuid ORDER BY created_at, id")
        .bind(id)
        .fetch_all(&app.state.db.write)
        .await
        .unwrap();
    assert_eq!(
        moves,
        [
            ("sale".into(), -3, 7),
            ("return".into(), 1, 8),
            ("cancel".into(), 2, 10)
        ]
    );

    // A cancelled order takes no payments and moves nowhere.
    let r = post_idem(
        &app,
        &format!("/api/v1/orders/{id}/payments"),
        &cashier.token,
        &new_key(),
        json!({"method": "cash", "amount_cents": 1}),
    )
    .await;
    expect_error(r, 409, "conflict").await;
    expect_error(
        transition(&app, &cashier.token, id, "pending").await,
        409,
        "invalid_transition",
    )
    .await;
}

#[tokio::test]
async fn customers_may_only_cancel_their_own_pending_orders() {
    let app = TestApp::spawn().await;
    let customer = app.user("customer").await;
    let other = app.user("customer").await;
    let staff = app.user("staff").await;
    let p = insert_product(&app, "P", 100, 0, 10).await;
    let mine = create_order(
        &app,
        &customer.token,
        json!({"fulfilment": "pickup", "lines": [{"product_id": p, "quantity": 2}]}),
    )
    .await;
    let mine_id = mine["id"].as_str().unwrap();
    let theirs = create_order(
        &app,
        &other.token,
        json!({"fulfilment": "pickup", "lines": [{"product_id": p, "quantity": 1}]}),
    )
    .await;
    let theirs_id = theirs["id"].as_str().unwrap();

    // Someone else's order does not exist for this customer, whatever the move.
    expect_error(
        transition(&app, &customer.token, theirs_id, "cancelled").await,
        404,
        "not_found",
    )
    .await;
    expect_error(
        transition(&app, &customer.token, theirs_id, "confirmed").await,
        404,
        "not_found",
    )
    .await;
    // Their own: only cancelling.
    expect_error(
        transition(&app, &customer.token, mine_id, "confirmed").await,
        403,
        "forbidden",
    )
    .await;
    let r = transition(&app, &customer.token, mine_id, "cancelled").await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, v) = body(r).await;
    assert_eq!(
        v["status_history"][1],
        json!({"status": "cancelled", "at": v["status_history"][1]["at"], "by": customer.id()})
    );
    assert_eq!(stock_of(&app, &p).await, 9);
    // Once the shop has confirmed it, the customer can no longer cancel.
    assert_eq!(
        transition(&app, &staff.token, theirs_id, "confirmed")
            .await
            .status(),
        StatusCode::OK
    );
    expect_error(
        transition(&app, &other.token, theirs_id, "cancelled").await,
        403,
        "forbidden",
    )
    .await;
    // Customer actions are not staff writes: no audit entries by customers.
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE actor_id IN ($1::uuid, $2::uuid)")
            .bind(customer.id())
            .bind(other.id())
            .fetch_one(&app.state.db.write)
            .await
            .unwrap();
    assert_eq!(n, 0);
}
