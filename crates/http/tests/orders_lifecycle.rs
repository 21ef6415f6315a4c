//! The order lifecycle: every transition of the contract's table, every forbidden one, If-Match,
//! stock coming back on cancel, and what customers may do.

use serde_json::{json, Value};
use till_test_support::*;

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

/// The contract's transition table, written out independently of the domain crate.
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

/// An order of one unit of `product`, walked to `status` by `who`.
async fn order_in(who: &Client, product: &str, fulfilment: &str, status: &str) -> Value {
    let order = match fulfilment {
        "delivery" => OrderBuilder::delivery("1 Main St"),
        f => OrderBuilder::fulfilment(f),
    };
    let mut o = who.create_order(order.line(product, 1)).await;
    for step in path_to(status) {
        o = who.transition(&id_of(&o), step).await.expect_json(200);
    }
    assert_eq!(o["status"], status);
    o
}

#[tokio::test]
async fn every_allowed_transition_and_every_forbidden_one() {
    let app = TestApp::spawn().await;
    let staff = app.as_staff().await;
    let cashier = app.as_cashier().await;
    let p = insert_product(&app, "P", 100, 0, 10_000).await;

    for fulfilment in ["in_store", "pickup", "delivery"] {
        for from in reachable(fulfilment) {
            let ok = allowed(from, fulfilment);
            // Every allowed move, each on its own order, by a staff (fulfilment) user.
            for to in &ok {
                let o = order_in(&cashier, &p, fulfilment, from).await;
                let r = staff.transition(&id_of(&o), to).await;
                assert_eq!(r.status(), 200, "{fulfilment}: {from} → {to}");
                let version = o["version"].as_i64().unwrap() + 1;
                assert_eq!(r.header("etag"), format!("\"{version}\""));
                let after = r.body;
                assert_eq!(after["status"], *to);
                assert_eq!(after["version"], version);
                let history = after["status_history"].as_array().unwrap();
                assert_eq!(history.len(), path_to(from).len() + 2);
                assert_eq!(history.last().unwrap()["status"], *to);
                assert_eq!(history.last().unwrap()["by"], staff.id());
            }
            // Every other target is refused with the allowed set, and nothing changes.
            let o = order_in(&cashier, &p, fulfilment, from).await;
            let id = o["id"].as_str().unwrap();
            for to in ALL.iter().filter(|t| !ok.contains(t)) {
                let v = staff
                    .transition(id, to)
                    .await
                    .expect_error(409, "invalid_transition");
                assert_eq!(
                    v["error"]["details"],
                    json!({"from": from, "to": to, "allowed": ok}),
                    "{fulfilment}: {from} → {to}"
                );
            }
            assert_eq!(staff.get(&format!("/api/v1/orders/{id}")).await.body, o);
        }
    }

    // A full delivery walk records every step in order.
    let o = order_in(&cashier, &p, "delivery", "delivered").await;
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
    let audit = app
        .as_admin()
        .await
        .get(&format!(
            "/api/v1/audit?action=order.transition&actor_id={}&limit=1",
            staff.id()
        ))
        .await
        .expect_json(200);
    assert_eq!(audit["items"][0]["entity_type"], "order");
    assert!(audit["items"][0]["data"]["from"].is_string());
}

#[tokio::test]
async fn if_match_guards_transitions() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    let p = insert_product(&app, "P", 100, 0, 10).await;
    let o = cashier
        .create_order(OrderBuilder::pickup().line(&p, 1))
        .await;
    let id = o["id"].as_str().unwrap();
    let send = |if_match: &str, to: &str| cashier.transition(id, to).header("If-Match", if_match);

    for tag in ["\"2\"", "garbage"] {
        send(tag, "confirmed")
            .await
            .expect_error(412, "precondition_failed");
    }
    let r = send("\"1\"", "confirmed").await.expect_status(200);
    assert_eq!(r.header("etag"), "\"2\"");
    // The old version no longer matches; a weak tag or `*` of the current one does.
    send("\"1\"", "preparing")
        .await
        .expect_error(412, "precondition_failed");
    send("W/\"2\"", "preparing").await.expect_status(200);
    send("*", "ready").await.expect_status(200);

    // A stale If-Match wins over an invalid move: the client must reload first.
    send("\"1\"", "pending")
        .await
        .expect_error(412, "precondition_failed");
    let v = cashier
        .transition(id, "shipped")
        .await
        .expect_error(422, "validation_failed");
    assert!(v["error"]["details"]["fields"]["to"].is_array(), "{v}");
    cashier
        .transition(&uuid::Uuid::now_v7().to_string(), "confirmed")
        .await
        .expect_error(404, "not_found");
    app.anon()
        .transition(id, "confirmed")
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test]
async fn cancelling_returns_what_was_taken_and_not_yet_returned() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    let manager = app.as_manager().await;
    let a = insert_product(&app, "A", 1000, 0, 10).await;
    let b = ProductBuilder::new("B")
        .price(500)
        .untracked()
        .insert(&app)
        .await;
    let o = cashier
        .create_order(OrderBuilder::pickup().line(&a, 3).line(&b, 1))
        .await;
    let id = o["id"].as_str().unwrap();
    assert_eq!(stock_of(&app, &a).await, 7);

    // Paid, one unit refunded and restocked, the rest refunded, then cancelled: only the other
    // two come back.
    cashier
        .pay(id, json!({"method": "card", "amount_cents": 3500}))
        .await
        .expect_status(201);
    manager
        .refund(
            id,
            json!({"amount_cents": 1000, "reason": "damaged", "restock": [{"product_id": a, "quantity": 1}]}),
        )
        .await
        .expect_status(201);
    assert_eq!(stock_of(&app, &a).await, 8);
    // Money is still on it (3500 paid, 1000 back): it cannot be cancelled until refunded.
    let v = cashier
        .transition(id, "cancelled")
        .await
        .expect_error(409, "conflict");
    assert_eq!(v["error"]["details"], json!({"refundable_cents": 2500}));
    manager
        .refund(
            id,
            json!({"amount_cents": 2500, "reason": "order cancelled"}),
        )
        .await
        .expect_status(201);
    let cancelled = cashier.transition(id, "cancelled").await.expect_json(200);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(stock_of(&app, &a).await, 10);
    assert_eq!(stock_of(&app, &b).await, 0);
    let moves: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT reason, delta, balance_after FROM inventory_movements WHERE order_id = $1::uuid
         ORDER BY created_at, id",
    )
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
    cashier
        .pay(id, json!({"method": "cash", "amount_cents": 1}))
        .await
        .expect_error(409, "conflict");
    cashier
        .transition(id, "pending")
        .await
        .expect_error(409, "invalid_transition");
}

#[tokio::test]
async fn customers_may_only_cancel_their_own_pending_orders() {
    let app = TestApp::spawn().await;
    let customer = app.as_customer().await;
    let other = app.as_customer().await;
    let staff = app.as_staff().await;
    let p = insert_product(&app, "P", 100, 0, 10).await;
    let mine = customer
        .create_order(OrderBuilder::pickup().line(&p, 2))
        .await;
    let mine_id = mine["id"].as_str().unwrap();
    let theirs = other.create_order(OrderBuilder::pickup().line(&p, 1)).await;
    let theirs_id = theirs["id"].as_str().unwrap();

    // Someone else's order does not exist for this customer, whatever the move; their own: only
    // cancelling.
    for (order, to, status, code) in [
        (theirs_id, "cancelled", 404, "not_found"),
        (theirs_id, "confirmed", 404, "not_found"),
        (mine_id, "confirmed", 403, "forbidden"),
    ] {
        customer
            .transition(order, to)
            .await
            .expect_error(status, code);
    }
    let v = customer
        .transition(mine_id, "cancelled")
        .await
        .expect_json(200);
    assert_eq!(
        v["status_history"][1],
        json!({"status": "cancelled", "at": v["status_history"][1]["at"], "by": customer.id()})
    );
    assert_eq!(stock_of(&app, &p).await, 9);
    // Once the shop has confirmed it, the customer can no longer cancel.
    staff
        .transition(theirs_id, "confirmed")
        .await
        .expect_status(200);
    other
        .transition(theirs_id, "cancelled")
        .await
        .expect_error(403, "forbidden");
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
