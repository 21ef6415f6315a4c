//! Locations, stock per location, orders taking stock at their location, and stock counts with
//! as-of-count semantics.

use serde_json::{json, Value};
use till_test_support::*;

const LOCATIONS: &str = "/api/v1/locations";
const COUNTS: &str = "/api/v1/inventory/counts";

async fn default_location(app: &TestApp) -> String {
    let id: uuid::Uuid = sqlx::query_scalar("SELECT till_default_location_id()")
        .fetch_one(&app.state.db.write)
        .await
        .unwrap();
    id.to_string()
}

async fn new_location(admin: &Client, code: &str, pickup: bool) -> String {
    let l = admin
        .post(
            LOCATIONS,
            json!({"code": code, "name": format!("Shop {code}"), "kind": "store", "pickup_enabled": pickup}),
        )
        .await
        .expect_json(201);
    l["id"].as_str().unwrap().to_owned()
}

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

/// Moves `n` units of `product` from the default location to `to` (dispatched and received).
async fn stock_at(manager: &Client, from: &str, to: &str, product: &str, n: i64) {
    let t = manager
        .post(
            "/api/v1/inventory/transfers",
            json!({"from_location_id": from, "to_location_id": to, "dispatch": true,
                   "lines": [{"product_id": product, "quantity": n}]}),
        )
        .await
        .expect_json(201);
    manager
        .post(
            &format!(
                "/api/v1/inventory/transfers/{}/receipts",
                t["id"].as_str().unwrap()
            ),
            json!({"lines": [{"product_id": product, "received": n}]}),
        )
        .idem(&new_key())
        .await
        .expect_status(201);
}

#[tokio::test]
async fn a_default_location_holds_the_stock_and_admins_manage_locations() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let manager = app.as_manager().await;
    let main = default_location(&app).await;
    let a = insert_product(&app, "LA", 100, 0, 12).await;

    let all = manager.get(LOCATIONS).await.expect_json(200);
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    assert_eq!(all["items"][0]["is_default"], true);
    assert_eq!(all["items"][0]["id"], json!(main));
    assert_eq!(on_hand(&manager, &a, &main).await, 12);

    let wh = admin
        .post(
            LOCATIONS,
            json!({"code": "WH", "name": "Warehouse", "kind": "warehouse"}),
        )
        .await
        .expect_json(201);
    let wh_id = wh["id"].as_str().unwrap().to_owned();
    assert_eq!(wh["pickup_enabled"], false);
    manager
        .post(
            LOCATIONS,
            json!({"code": "X", "name": "X", "kind": "store"}),
        )
        .await
        .expect_error(403, "forbidden");
    admin
        .post(
            LOCATIONS,
            json!({"code": "WH", "name": "Again", "kind": "store"}),
        )
        .await
        .expect_error(409, "already_exists");
    admin
        .post(
            LOCATIONS,
            json!({"code": "bad code", "name": " ", "kind": "shed"}),
        )
        .await
        .expect_invalid(&["code", "name", "kind"]);
    // Anonymous callers and customers see active pickup locations only.
    let store = new_location(&admin, "S2", true).await;
    let public = app.anon().get(LOCATIONS).await.expect_json(200);
    let codes: Vec<&str> = public["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["MAIN", "S2"]);

    // Deactivation: refused while holding stock, and for the default; If-Match honoured.
    stock_at(&manager, &main, &store, &a, 2).await;
    let held = admin
        .patch(&format!("{LOCATIONS}/{store}"), json!({"active": false}))
        .await
        .expect_error(409, "conflict");
    assert_eq!(held["error"]["details"]["on_hand"], 2);
    admin
        .patch(&format!("{LOCATIONS}/{main}"), json!({"active": false}))
        .await
        .expect_error(409, "conflict");
    admin
        .patch(&format!("{LOCATIONS}/{wh_id}"), json!({"name": "Big shed"}))
        .if_match(7)
        .await
        .expect_error(412, "precondition_failed");
    let off = admin
        .patch(&format!("{LOCATIONS}/{wh_id}"), json!({"active": false}))
        .if_match(1)
        .await
        .expect_json(200);
    assert_eq!(
        (off["active"].clone(), off["version"].clone()),
        (json!(false), json!(2))
    );
    // The total stays the total over all locations; staff see it split.
    assert_eq!(stock_of(&app, &a).await, 12);
    let cashier = app.as_cashier().await;
    let p = cashier
        .get(&format!("/api/v1/products/{a}"))
        .await
        .expect_json(200);
    assert_eq!(
        p["stock_by_location"],
        json!([{"location_id": main, "on_hand": 10}, {"location_id": store, "on_hand": 2}])
    );
    let anon = app
        .anon()
        .get(&format!("/api/v1/products/{a}"))
        .await
        .expect_json(200);
    assert!(anon.get("stock_by_location").is_none());
    // The shop's store picker: per pickup location, for anyone (the warehouse is not one).
    let avail = app
        .anon()
        .get(&format!("/api/v1/inventory/availability?product_id={a}"))
        .await
        .expect_json(200);
    assert_eq!(
        avail["items"],
        json!([{"location_id": main, "on_hand": 10}, {"location_id": store, "on_hand": 2}])
    );
}

#[tokio::test]
async fn orders_take_stock_at_their_location_and_shortages_name_it() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let manager = app.as_manager().await;
    let cashier = app.as_cashier().await;
    let customer = app.as_customer().await;
    let main = default_location(&app).await;
    let pickup = new_location(&admin, "P1", true).await;
    let back = new_location(&admin, "BACKROOM", false).await;
    let a = insert_product(&app, "OA", 100, 0, 10).await;
    stock_at(&manager, &main, &pickup, &a, 3).await;

    // A customer's pickup order at the chosen store takes that store's stock.
    let o = customer
        .post_order(
            &OrderBuilder::pickup()
                .line(&a, 2)
                .set("location_id", json!(pickup)),
        )
        .await
        .expect_json(201);
    assert_eq!(o["location_id"], json!(pickup));
    assert_eq!(on_hand(&manager, &a, &pickup).await, 1);
    assert_eq!(on_hand(&manager, &a, &main).await, 7);
    let short = customer
        .post_order(
            &OrderBuilder::pickup()
                .line(&a, 2)
                .set("location_id", json!(pickup)),
        )
        .await
        .expect_error(409, "insufficient_stock");
    assert_eq!(short["error"]["details"]["location_id"], json!(pickup));
    assert_eq!(
        short["error"]["details"]["lines"],
        json!([{"product_id": a, "requested": 2, "available": 1}])
    );
    // Not a pickup store for customers; delivery orders cannot choose.
    customer
        .post_order(
            &OrderBuilder::pickup()
                .line(&a, 1)
                .set("location_id", json!(back)),
        )
        .await
        .expect_invalid(&["location_id"]);
    customer
        .post_order(
            &OrderBuilder::delivery("1 Main St")
                .line(&a, 1)
                .set("location_id", json!(pickup)),
        )
        .await
        .expect_invalid(&["location_id"]);
    // A till order without a location sells from the default one, as before.
    let pos = cashier
        .post_order(&OrderBuilder::pos().line(&a, 7))
        .await
        .expect_json(201);
    assert_eq!(pos["location_id"], json!(main));
    assert_eq!(on_hand(&manager, &a, &main).await, 0);
    // Cancelling puts the units back where they came from.
    let id = o["id"].as_str().unwrap();
    customer
        .post(
            &format!("/api/v1/orders/{id}/transitions"),
            json!({"to": "cancelled"}),
        )
        .await
        .expect_status(200);
    assert_eq!(on_hand(&manager, &a, &pickup).await, 3);
    assert_eq!(on_hand(&manager, &a, &main).await, 0);
    assert_eq!(stock_of(&app, &a).await, 3);
    // A till order on a register sells from the register's location.
    let register = admin
        .post(
            "/api/v1/registers",
            json!({"name": "Pickup till", "location_id": pickup}),
        )
        .await
        .expect_json(201);
    assert_eq!(register["location_id"], json!(pickup));
    let on_register = cashier
        .post_order(
            &OrderBuilder::pos()
                .line(&a, 1)
                .set("register_id", register["id"].clone()),
        )
        .await
        .expect_json(201);
    assert_eq!(on_register["location_id"], json!(pickup));
    assert_eq!(on_hand(&manager, &a, &pickup).await, 2);
    admin
        .post(
            "/api/v1/registers",
            json!({"name": "Nowhere", "location_id": uuid::Uuid::nil()}),
        )
        .await
        .expect_invalid(&["location_id"]);
    // An adjustment may name its location; a shortage there names it.
    let adj = manager
        .post(
            "/api/v1/inventory/adjustments",
            json!({"product_id": a, "delta": -3, "reason": "damage", "location_id": pickup}),
        )
        .await
        .expect_error(409, "insufficient_stock");
    assert_eq!(adj["error"]["details"]["location_id"], json!(pickup));
    assert_eq!(adj["error"]["details"]["available"], 2);
}

fn count_lines(lines: &[(&str, i64)]) -> Value {
    json!({"lines": lines.iter().map(|(p, c)| json!({"product_id": p, "counted": c})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn a_count_keeps_the_sales_made_after_a_line_was_counted() {
    let app = TestApp::spawn().await;
    let manager = app.as_manager().await;
    let staff = app.as_staff().await;
    let cashier = app.as_cashier().await;
    let main = default_location(&app).await;
    let a = insert_product(&app, "CA", 100, 0, 20).await;
    let b = insert_product(&app, "CB", 100, 0, 5).await;

    let c = staff
        .post(COUNTS, json!({"location_id": main}))
        .await
        .expect_json(201);
    assert_eq!(c["status"], "open");
    let id = c["id"].as_str().unwrap().to_owned();
    // Sold before the shelf was counted: the count already sees it.
    cashier
        .post_order(&OrderBuilder::pos().line(&a, 2))
        .await
        .expect_status(201);
    let c = staff
        .put(
            &format!("{COUNTS}/{id}/lines"),
            count_lines(&[(&a, 15), (&b, 5)]),
        )
        .await
        .expect_json(200);
    let line_a = c["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["product_id"] == json!(a))
        .unwrap()
        .clone();
    assert_eq!(line_a["expected_at_count"], 18);
    assert_eq!(line_a["delta"], -3);
    assert!(line_a["counted_at"].is_string());
    // Sold after the line was counted, while the count is open: it must stay sold.
    cashier
        .post_order(&OrderBuilder::pos().line(&a, 4))
        .await
        .expect_status(201);
    staff
        .post(&format!("{COUNTS}/{id}/apply"), json!({}))
        .await
        .expect_error(403, "forbidden");
    let applied = manager
        .post(&format!("{COUNTS}/{id}/apply"), json!({}))
        .await
        .expect_json(200);
    assert_eq!(applied["status"], "applied");
    // counted 15 + the −4 sold after the stamp.
    assert_eq!(on_hand(&manager, &a, &main).await, 11);
    assert_eq!(
        stock_of(&app, &b).await,
        5,
        "a line with no difference moves nothing"
    );
    let counted: Vec<(String, i64)> =
        sqlx::query_as("SELECT reason, delta FROM inventory_movements WHERE count_id = $1::uuid")
            .bind(&id)
            .fetch_all(&app.state.db.write)
            .await
            .unwrap();
    assert_eq!(counted, [("count".to_owned(), -3)]);
    manager
        .post(&format!("{COUNTS}/{id}/apply"), json!({}))
        .await
        .expect_error(409, "invalid_transition");
    staff
        .put(&format!("{COUNTS}/{id}/lines"), count_lines(&[(&a, 1)]))
        .await
        .expect_error(409, "invalid_transition");
    assert_eq!(audit_count(&app, "count.apply").await, 1);
}

#[tokio::test]
async fn a_count_whose_result_would_go_below_zero_applies_nothing() {
    let app = TestApp::spawn().await;
    let manager = app.as_manager().await;
    let cashier = app.as_cashier().await;
    let main = default_location(&app).await;
    let a = insert_product(&app, "NA", 100, 0, 10).await;
    let b = insert_product(&app, "NB", 100, 0, 10).await;
    let c = manager
        .post(COUNTS, json!({"location_id": main}))
        .await
        .expect_json(201);
    let id = c["id"].as_str().unwrap().to_owned();
    manager
        .put(
            &format!("{COUNTS}/{id}/lines"),
            count_lines(&[(&a, 12), (&b, 1)]),
        )
        .await
        .expect_status(200);
    // The counter found 1 of B (10 expected: delta −9); then 5 more are sold: 5 − 9 < 0.
    cashier
        .post_order(&OrderBuilder::pos().line(&b, 5))
        .await
        .expect_status(201);
    let refused = manager
        .post(&format!("{COUNTS}/{id}/apply"), json!({}))
        .await
        .expect_error(409, "insufficient_stock");
    assert_eq!(refused["error"]["details"]["location_id"], json!(main));
    assert_eq!(
        refused["error"]["details"]["lines"][0]["product_id"],
        json!(b)
    );
    assert_eq!(
        (stock_of(&app, &a).await, stock_of(&app, &b).await),
        (10, 5)
    );
    manager
        .put(&format!("{COUNTS}/{id}/lines"), count_lines(&[(&a, -1)]))
        .await
        .expect_invalid(&["lines[0].counted"]);
    let cancelled = manager
        .post(&format!("{COUNTS}/{id}/cancel"), json!({}))
        .await
        .expect_json(200);
    assert_eq!(cancelled["status"], "cancelled");
}

#[tokio::test]
async fn a_retried_apply_or_cancel_with_its_key_gets_the_first_answer_and_moves_nothing_more() {
    let app = TestApp::spawn().await;
    let manager = app.as_manager().await;
    let main = default_location(&app).await;
    let a = insert_product(&app, "KA", 100, 0, 10).await;
    let open_count = || {
        let body = json!({"location_id": main});
        let manager = &manager;
        async move { id_of(&manager.post(COUNTS, body).await.expect_json(201)) }
    };
    let counted = |id: String, n: i64| {
        let manager = &manager;
        let a = &a;
        async move {
            manager
                .put(&format!("{COUNTS}/{id}/lines"), count_lines(&[(a, n)]))
                .await
                .expect_status(200);
        }
    };
    let step = |id: &str, action: &str| format!("{COUNTS}/{id}/{action}");
    let count_moves = |id: String| {
        let app = &app;
        async move {
            count(
                app,
                "SELECT COALESCE(sum(delta), 0)::bigint FROM inventory_movements WHERE count_id = $1::uuid",
                &id,
            )
            .await
        }
    };
    let (c1, c2, c3) = (open_count().await, open_count().await, open_count().await);
    counted(c1.clone(), 7).await;
    counted(c2.clone(), 4).await;

    // Apply: the retry gets the first answer (not 409 invalid_transition) and the −3 is written
    // once.
    let first = manager
        .post(&step(&c1, "apply"), json!({}))
        .idem("ap")
        .await
        .expect_status(200);
    assert_eq!(first.body["status"], "applied");
    assert_eq!(on_hand(&manager, &a, &main).await, 7);
    manager
        .post(&step(&c1, "apply"), json!({}))
        .idem("ap")
        .await
        .expect_replay_of(&first);
    assert_eq!(on_hand(&manager, &a, &main).await, 7);
    assert_eq!(stock_of(&app, &a).await, 7);
    assert_eq!(count_moves(c1.clone()).await, -3);
    assert_eq!(audit_count(&app, "count.apply").await, 1);
    // The same key on another count: refused, and that count stays open with nothing applied.
    manager
        .post(&step(&c2, "apply"), json!({}))
        .idem("ap")
        .await
        .expect_error(422, "idempotency_key_reused");
    let c2_now = manager
        .get(&format!("{COUNTS}/{c2}"))
        .await
        .expect_json(200);
    assert_eq!(c2_now["status"], "open");
    assert_eq!(count_moves(c2.clone()).await, 0);
    assert_eq!(stock_of(&app, &a).await, 7);

    // Cancel, the same way.
    let first = manager
        .post(&step(&c3, "cancel"), json!({}))
        .idem("cx")
        .await
        .expect_status(200);
    assert_eq!(first.body["status"], "cancelled");
    manager
        .post(&step(&c3, "cancel"), json!({}))
        .idem("cx")
        .await
        .expect_replay_of(&first);
    assert_eq!(audit_count(&app, "count.cancel").await, 1);
    manager
        .post(&step(&c2, "cancel"), json!({}))
        .idem("cx")
        .await
        .expect_error(422, "idempotency_key_reused");
    let c2_now = manager
        .get(&format!("{COUNTS}/{c2}"))
        .await
        .expect_json(200);
    assert_eq!(c2_now["status"], "open");

    // Without a key, as before: applied once, then 409.
    let applied = manager
        .post(&step(&c2, "apply"), json!({}))
        .await
        .expect_json(200);
    assert_eq!(applied["status"], "applied");
    // Counted 4 where 10 were expected at the count: −6 on the 7 there now.
    assert_eq!(on_hand(&manager, &a, &main).await, 1);
    manager
        .post(&step(&c2, "apply"), json!({}))
        .await
        .expect_error(409, "invalid_transition");
    manager
        .post(&step(&c2, "cancel"), json!({}))
        .await
        .expect_error(409, "invalid_transition");
    assert_eq!(count_moves(c2).await, -6);
    assert_eq!(stock_of(&app, &a).await, 1);
    assert_eq!(audit_count(&app, "count.apply").await, 2);
}
