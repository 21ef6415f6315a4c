//! Transfers between locations: the lifecycle, all-or-nothing dispatch under concurrency, and the
//! invariant that a transfer never creates or destroys stock (only damaged units leave).

use futures::future::join_all;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use till_test_support::*;

const LOCATIONS: &str = "/api/v1/locations";
const TRANSFERS: &str = "/api/v1/inventory/transfers";

async fn new_location(admin: &Client, code: &str) -> String {
    let l = admin
        .post(
            LOCATIONS,
            json!({"code": code, "name": format!("Shop {code}"), "kind": "store"}),
        )
        .await
        .expect_json(201);
    l["id"].as_str().unwrap().to_owned()
}

async fn default_location(app: &TestApp) -> String {
    let id: uuid::Uuid = sqlx::query_scalar("SELECT till_default_location_id()")
        .fetch_one(&app.state.db.write)
        .await
        .unwrap();
    id.to_string()
}

/// On hand of a product at a location, through the levels API.
async fn on_hand(who: &Client, product: &str, location: &str) -> i64 {
    let page = who
        .get(&format!(
            "/api/v1/inventory/levels?product_id={product}&location_id={location}"
        ))
        .await
        .expect_json(200);
    page["items"]
        .as_array()
        .unwrap()
        .first()
        .map_or(0, |l| l["on_hand"].as_i64().unwrap())
}

fn transfer(from: &str, to: &str, lines: &[(&str, i64)], dispatch: bool) -> Value {
    json!({
        "from_location_id": from, "to_location_id": to, "dispatch": dispatch,
        "lines": lines.iter().map(|(p, q)| json!({"product_id": p, "quantity": q})).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn a_transfer_goes_draft_dispatched_partly_received_with_damage_then_received() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let manager = app.as_manager().await;
    let staff = app.as_staff().await;
    let main = default_location(&app).await;
    let back = new_location(&admin, "BACK").await;
    let a = insert_product(&app, "TA", 100, 0, 30).await;
    let b = insert_product(&app, "TB", 100, 0, 5).await;

    let t = manager
        .post(
            TRANSFERS,
            transfer(&main, &back, &[(&a, 10), (&b, 5)], false),
        )
        .await
        .expect_json(201);
    assert_eq!(t["status"], "draft");
    assert_eq!(t["lines"][0]["sku"], "TA");
    let id = t["id"].as_str().unwrap().to_owned();
    // A draft moves nothing.
    assert_eq!(on_hand(&manager, &a, &main).await, 30);

    let t = manager
        .post(&format!("{TRANSFERS}/{id}/dispatch"), json!({}))
        .await
        .expect_json(200);
    assert_eq!(t["status"], "in_transit");
    assert_eq!(on_hand(&manager, &a, &main).await, 20);
    assert_eq!(on_hand(&manager, &b, &main).await, 0);
    assert_eq!(stock_of(&app, &a).await, 20, "in transit is not on hand");
    let level = manager
        .get(&format!(
            "/api/v1/inventory/levels?product_id={a}&location_id={back}"
        ))
        .await
        .expect_json(200);
    assert_eq!(level["items"][0]["in_transit_in"], 10);
    manager
        .post(&format!("{TRANSFERS}/{id}/dispatch"), json!({}))
        .await
        .expect_error(409, "invalid_transition");

    // Over the outstanding: 422, nothing recorded.
    let receipts = format!("{TRANSFERS}/{id}/receipts");
    let over = staff
        .post(
            &receipts,
            json!({"lines": [{"product_id": a, "received": 9, "damaged": 2}]}),
        )
        .idem("r0")
        .await
        .expect_error(422, "over_receipt");
    assert_eq!(over["error"]["details"]["lines"][0]["outstanding"], 10);
    // A receipt needs its key.
    staff
        .post(
            &receipts,
            json!({"lines": [{"product_id": a, "received": 1}]}),
        )
        .await
        .expect_error(400, "idempotency_key_required");

    let r1 = json!({"lines": [{"product_id": a, "received": 6, "damaged": 1}]});
    let first = staff.post(&receipts, &r1).idem("r1").await.expect_json(201);
    assert_eq!(first["transfer"]["status"], "partially_received");
    assert_eq!(first["transfer"]["lines"][0]["received"], 6);
    assert_eq!(first["transfer"]["lines"][0]["damaged"], 1);
    // The same receipt again: the same answer, no second effect.
    let again = staff.post(&receipts, &r1).idem("r1").await;
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.expect_json(201), first);
    assert_eq!(on_hand(&manager, &a, &back).await, 6);
    assert_eq!(stock_of(&app, &a).await, 26);

    let done = staff
        .post(
            &receipts,
            json!({"lines": [{"product_id": a, "received": 3}, {"product_id": b, "received": 4, "damaged": 1}]}),
        )
        .idem("r2")
        .await
        .expect_json(201);
    assert_eq!(done["transfer"]["status"], "received");
    assert_eq!(on_hand(&manager, &a, &back).await, 9);
    assert_eq!(on_hand(&manager, &b, &back).await, 4);
    // 35 units at the start; 2 damaged.
    assert_eq!(stock_of(&app, &a).await + stock_of(&app, &b).await, 33);
    let statuses: Vec<&str> = done["transfer"]["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["draft", "in_transit", "partially_received", "received"]
    );
    manager
        .post(&format!("{TRANSFERS}/{id}/cancel"), json!({}))
        .await
        .expect_error(409, "invalid_transition");
    let reasons: Vec<(String, i64)> = sqlx::query_as(
        "SELECT reason, sum(delta)::bigint FROM inventory_movements WHERE transfer_id = $1::uuid
         GROUP BY reason ORDER BY reason",
    )
    .bind(&id)
    .fetch_all(&app.state.db.write)
    .await
    .unwrap();
    assert_eq!(
        reasons,
        [
            ("damage".to_owned(), -2),
            ("transfer_in".to_owned(), 15),
            ("transfer_out".to_owned(), -15)
        ]
    );
    assert_eq!(audit_count(&app, "transfer.receive").await, 2);
    let events = count(
        &app,
        "SELECT count(*) FROM outbox WHERE topic = 'transfer.updated' AND payload->>'audience' = 'staff'",
        "",
    )
    .await;
    assert_eq!(
        events, 4,
        "create, dispatch, two receipts; nothing for refused requests"
    );
}

#[tokio::test]
async fn cancel_returns_exactly_the_outstanding_units_and_drops_a_draft() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let manager = app.as_manager().await;
    let main = default_location(&app).await;
    let back = new_location(&admin, "BACK").await;
    let a = insert_product(&app, "CA", 100, 0, 20).await;

    let t = manager
        .post(TRANSFERS, transfer(&main, &back, &[(&a, 8)], true))
        .await
        .expect_json(201);
    assert_eq!(t["status"], "in_transit");
    let id = t["id"].as_str().unwrap();
    manager
        .post(
            &format!("{TRANSFERS}/{id}/receipts"),
            json!({"lines": [{"product_id": a, "received": 3, "damaged": 1}]}),
        )
        .idem("k")
        .await
        .expect_status(201);
    let t = manager
        .post(&format!("{TRANSFERS}/{id}/cancel"), json!({}))
        .await
        .expect_json(200);
    assert_eq!(t["status"], "cancelled");
    assert_eq!(
        on_hand(&manager, &a, &main).await,
        16,
        "12 + the 4 outstanding"
    );
    assert_eq!(on_hand(&manager, &a, &back).await, 3);
    assert_eq!(stock_of(&app, &a).await, 19);

    let draft = manager
        .post(TRANSFERS, transfer(&main, &back, &[(&a, 1)], false))
        .await
        .expect_json(201);
    let d = draft["id"].as_str().unwrap();
    manager
        .post(&format!("{TRANSFERS}/{d}/cancel"), json!({}))
        .await
        .expect_status(200);
    assert_eq!(stock_of(&app, &a).await, 19);
    manager
        .post(&format!("{TRANSFERS}/{d}/dispatch"), json!({}))
        .await
        .expect_error(409, "invalid_transition");
}

#[tokio::test]
async fn bad_transfers_are_refused_before_anything_moves() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let manager = app.as_manager().await;
    let cashier = app.as_cashier().await;
    let main = default_location(&app).await;
    let back = new_location(&admin, "BACK").await;
    let a = insert_product(&app, "BA", 100, 0, 3).await;
    let untracked = ProductBuilder::new("BU").untracked().insert(&app).await;

    manager
        .post(TRANSFERS, transfer(&main, &main, &[(&a, 1)], false))
        .await
        .expect_invalid(&["to_location_id"]);
    manager
        .post(
            TRANSFERS,
            transfer(&main, &back, &[(&a, 1), (&a, 1)], false),
        )
        .await
        .expect_invalid(&["lines[1].product_id"]);
    manager
        .post(TRANSFERS, transfer(&main, &back, &[(&untracked, 1)], false))
        .await
        .expect_invalid(&["lines[0].product_id"]);
    manager
        .post(TRANSFERS, transfer(&main, &back, &[(&a, 0)], false))
        .await
        .expect_invalid(&["lines[0].quantity"]);
    cashier
        .post(TRANSFERS, transfer(&main, &back, &[(&a, 1)], false))
        .await
        .expect_error(403, "forbidden");
    // Short at the source: 409 naming the location, nothing written.
    let short = manager
        .post(TRANSFERS, transfer(&main, &back, &[(&a, 4)], true))
        .await
        .expect_error(409, "insufficient_stock");
    assert_eq!(short["error"]["details"]["location_id"], json!(main));
    assert_eq!(short["error"]["details"]["lines"][0]["available"], 3);
    assert_eq!(count(&app, "SELECT count(*) FROM transfers", "").await, 0);
    // An inactive location cannot take part.
    admin
        .patch(&format!("{LOCATIONS}/{back}"), json!({"active": false}))
        .await
        .expect_status(200);
    manager
        .post(TRANSFERS, transfer(&main, &back, &[(&a, 1)], false))
        .await
        .expect_invalid(&["to_location_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_dispatches_from_ten_units_exactly_ten_succeed() {
    let (app, other) = TestApp::spawn_pair().await;
    let admin = app.as_admin().await;
    let manager = app.as_manager().await;
    let main = default_location(&app).await;
    let back = new_location(&admin, "BACK").await;
    let a = insert_product(&app, "HOT", 100, 0, 10).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let t = manager
            .post(TRANSFERS, transfer(&main, &back, &[(&a, 1)], false))
            .await
            .expect_json(201);
        ids.push(t["id"].as_str().unwrap().to_owned());
    }
    let results = join_all(ids.iter().enumerate().map(|(i, id)| {
        let who = manager.on(if i % 2 == 0 { &app } else { &other });
        let path = format!("{TRANSFERS}/{id}/dispatch");
        async move { who.post(&path, json!({})).await }
    }))
    .await;
    let ok = results.iter().filter(|r| r.status() == 200).count();
    let short = results
        .iter()
        .filter(|r| r.status() == 409 && r.error_code() == Some("insufficient_stock"))
        .count();
    assert_eq!((ok, short), (10, 10), "{results:?}");
    assert_eq!(on_hand(&manager, &a, &main).await, 0);
    assert_eq!(stock_of(&app, &a).await, 0);
    let in_transit = count(
        &app,
        "SELECT count(*) FROM transfers WHERE status = 'in_transit'",
        "",
    )
    .await;
    assert_eq!(in_transit, 10);
}

/// Σ on hand over every location + Σ units in transit, and Σ damaged so far.
async fn totals(app: &TestApp) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT COALESCE(sum(stock_on_hand), 0)::bigint FROM products)
              + (SELECT COALESCE(sum(l.quantity - l.received - l.damaged), 0)::bigint
                 FROM transfer_lines l JOIN transfers t ON t.id = l.transfer_id
                 WHERE t.status IN ('in_transit', 'partially_received')),
                (SELECT COALESCE(sum(damaged), 0)::bigint FROM transfer_lines)",
    )
    .fetch_one(&app.state.db.write)
    .await
    .unwrap()
}

#[tokio::test]
async fn random_transfers_receipts_cancels_and_sales_only_lose_damaged_units() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let manager = app.as_manager().await;
    let cashier = app.as_cashier().await;
    let mut locations = vec![default_location(&app).await];
    for code in ["L2", "L3"] {
        locations.push(new_location(&admin, code).await);
    }
    let products = [
        insert_product(&app, "R1", 100, 0, 40).await,
        insert_product(&app, "R2", 100, 0, 40).await,
    ];
    let seed: u64 = std::env::var("TILL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261201);
    let mut rng = StdRng::seed_from_u64(seed);
    let (start, _) = totals(&app).await;
    let mut sold = 0i64;
    let mut open: Vec<String> = Vec::new();
    for step in 0..60 {
        let (before, damaged_before) = totals(&app).await;
        let mut sold_now = 0;
        match rng.gen_range(0..4) {
            0 => {
                let from = rng.gen_range(0..locations.len());
                let to = (from + rng.gen_range(1..locations.len())) % locations.len();
                let p = &products[rng.gen_range(0..products.len())];
                let r = manager
                    .post(
                        TRANSFERS,
                        transfer(
                            &locations[from],
                            &locations[to],
                            &[(p, rng.gen_range(1..8))],
                            true,
                        ),
                    )
                    .await;
                match r.status() {
                    201 => open.push(r.json()["id"].as_str().unwrap().to_owned()),
                    409 => assert_eq!(r.error_code(), Some("insufficient_stock")),
                    s => panic!("step {step}: transfer answered {s}: {:?}", r.json()),
                }
            }
            1 if !open.is_empty() => {
                let id = open[rng.gen_range(0..open.len())].clone();
                let t = manager
                    .get(&format!("{TRANSFERS}/{id}"))
                    .await
                    .expect_json(200);
                let line = &t["lines"][0];
                let left = line["quantity"].as_i64().unwrap()
                    - line["received"].as_i64().unwrap()
                    - line["damaged"].as_i64().unwrap();
                let received = rng.gen_range(0..=left);
                let damaged = rng.gen_range(0..=(left - received));
                let r = manager
                    .post(
                        &format!("{TRANSFERS}/{id}/receipts"),
                        json!({"lines": [{"product_id": line["product_id"], "received": received, "damaged": damaged}]}),
                    )
                    .idem(&format!("step-{step}"))
                    .await;
                match (received + damaged, r.status()) {
                    (0, 422) => {}
                    (_, 201) => {
                        if r.json()["transfer"]["status"] == "received" {
                            open.retain(|o| *o != id);
                        }
                    }
                    (_, s) => panic!("step {step}: receipt answered {s}: {:?}", r.json()),
                }
            }
            2 if !open.is_empty() => {
                let id = open.swap_remove(rng.gen_range(0..open.len()));
                manager
                    .post(&format!("{TRANSFERS}/{id}/cancel"), json!({}))
                    .await
                    .expect_status(200);
            }
            _ => {
                let p = &products[rng.gen_range(0..products.len())];
                let q = rng.gen_range(1..4);
                let order = OrderBuilder::pos().line(p, q);
                let r = cashier.post_order(&order).await;
                match r.status() {
                    201 => sold_now = q,
                    409 => assert_eq!(r.error_code(), Some("insufficient_stock")),
                    s => panic!("step {step}: order answered {s}"),
                }
            }
        }
        sold += sold_now;
        let (after, damaged_after) = totals(&app).await;
        assert_eq!(
            after,
            before - (damaged_after - damaged_before) - sold_now,
            "seed {seed}, step {step}: stock appeared or vanished"
        );
        // Every location's stock is what its own ledger says, and never below zero.
        let bad: i64 = count(
            &app,
            "SELECT count(*) FROM (
                 SELECT m.product_id, m.location_id,
                        sum(m.delta) + CASE WHEN m.location_id = till_default_location_id()
                                            THEN 40 ELSE 0 END AS s
                 FROM inventory_movements m GROUP BY 1, 2) x
             WHERE x.s < 0 OR x.s <> till_on_hand(x.product_id, x.location_id)",
            "",
        )
        .await;
        assert_eq!(
            bad, 0,
            "seed {seed}, step {step}: a location disagrees with its ledger"
        );
    }
    let (end, damaged) = totals(&app).await;
    assert_eq!(end, start - damaged - sold, "seed {seed}");
}

/// Σ of a transfer's movements with `reason` (0 when there are none).
async fn moved(app: &TestApp, transfer: &str, reason: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(delta), 0)::bigint FROM inventory_movements
         WHERE transfer_id = $1::uuid AND reason = $2",
    )
    .bind(transfer)
    .bind(reason)
    .fetch_one(&app.state.db.write)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_retried_dispatch_or_cancel_with_its_key_gets_the_first_answer_and_moves_nothing_more() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let manager = app.as_manager().await;
    let main = default_location(&app).await;
    let back = new_location(&admin, "BACK").await;
    let a = insert_product(&app, "IA", 100, 0, 20).await;
    let draft = |n| transfer(&main, &back, &[(&a, n)], false);
    let t1 = id_of(&manager.post(TRANSFERS, draft(8)).await.expect_json(201));
    let t2 = id_of(&manager.post(TRANSFERS, draft(2)).await.expect_json(201));
    let t3 = id_of(&manager.post(TRANSFERS, draft(15)).await.expect_json(201));
    let step = |t: &str, action: &str| format!("{TRANSFERS}/{t}/{action}");

    // Dispatch: the retry (what nginx sends when the first instance died after committing) is
    // answered as the first was, not 409 invalid_transition, and takes nothing more.
    let first = manager
        .post(&step(&t1, "dispatch"), json!({}))
        .idem("d1")
        .await
        .expect_status(200);
    assert_eq!(first.body["status"], "in_transit");
    assert_eq!(on_hand(&manager, &a, &main).await, 12);
    manager
        .post(&step(&t1, "dispatch"), json!({}))
        .idem("d1")
        .await
        .expect_replay_of(&first);
    assert_eq!(on_hand(&manager, &a, &main).await, 12);
    assert_eq!(stock_of(&app, &a).await, 12);
    assert_eq!(moved(&app, &t1, "transfer_out").await, -8);
    assert_eq!(audit_count(&app, "transfer.dispatch").await, 1);
    // The same key on another transfer is another request: refused, and t2 stays a draft.
    manager
        .post(&step(&t2, "dispatch"), json!({}))
        .idem("d1")
        .await
        .expect_error(422, "idempotency_key_reused");
    let t2_now = manager
        .get(&format!("{TRANSFERS}/{t2}"))
        .await
        .expect_json(200);
    assert_eq!(t2_now["status"], "draft");
    assert_eq!(on_hand(&manager, &a, &main).await, 12);
    // A refused dispatch (short of stock) stores nothing: its key works once stock is back.
    manager
        .post(&step(&t3, "dispatch"), json!({}))
        .idem("d3")
        .await
        .expect_error(409, "insufficient_stock");

    // Cancel, the same way: the 8 units go back once.
    let first = manager
        .post(&step(&t1, "cancel"), json!({}))
        .idem("c1")
        .await
        .expect_status(200);
    assert_eq!(first.body["status"], "cancelled");
    assert_eq!(on_hand(&manager, &a, &main).await, 20);
    manager
        .post(&step(&t1, "cancel"), json!({}))
        .idem("c1")
        .await
        .expect_replay_of(&first);
    assert_eq!(on_hand(&manager, &a, &main).await, 20);
    assert_eq!(stock_of(&app, &a).await, 20);
    assert_eq!(moved(&app, &t1, "transfer_return").await, 8);
    assert_eq!(audit_count(&app, "transfer.cancel").await, 1);
    manager
        .post(&step(&t2, "cancel"), json!({}))
        .idem("c1")
        .await
        .expect_error(422, "idempotency_key_reused");
    // A key is one request: "d1" was a dispatch of t1, so cancelling t1 with it is refused too.
    manager
        .post(&step(&t1, "cancel"), json!({}))
        .idem("d1")
        .await
        .expect_error(422, "idempotency_key_reused");
    let t2_now = manager
        .get(&format!("{TRANSFERS}/{t2}"))
        .await
        .expect_json(200);
    assert_eq!(t2_now["status"], "draft");

    let t3_sent = manager
        .post(&step(&t3, "dispatch"), json!({}))
        .idem("d3")
        .await
        .expect_json(200);
    assert_eq!(t3_sent["status"], "in_transit");
    assert_eq!(on_hand(&manager, &a, &main).await, 5);

    // Without a key nothing is stored: a repeat is the status check's 409, as before.
    manager
        .post(&step(&t2, "dispatch"), json!({}))
        .await
        .expect_status(200);
    assert_eq!(on_hand(&manager, &a, &main).await, 3);
    manager
        .post(&step(&t2, "dispatch"), json!({}))
        .await
        .expect_error(409, "invalid_transition");
    manager
        .post(&step(&t2, "cancel"), json!({}))
        .await
        .expect_status(200);
    manager
        .post(&step(&t2, "cancel"), json!({}))
        .await
        .expect_error(409, "invalid_transition");
    assert_eq!(on_hand(&manager, &a, &main).await, 5);
    assert_eq!(audit_count(&app, "transfer.dispatch").await, 3);
    assert_eq!(audit_count(&app, "transfer.cancel").await, 2);
}
