//! Registers and who is on which shift: admin-made registers with versions, one open shift per
//! register and per cashier (also when two instances open one register at once), joining,
//! the current shift, listing, and orders that carry their register and shift.

use serde_json::{json, Value};
use till_test_support::*;

const SHIFTS: &str = "/api/v1/shifts";

async fn register(admin: &Client, name: &str) -> String {
    let r = admin
        .post("/api/v1/registers", json!({"name": name}))
        .await
        .expect_json(201);
    id_of(&r)
}

async fn open(who: &Client, register: &str, float: i64) -> Value {
    who.post(
        SHIFTS,
        json!({"register_id": register, "opening_float_cents": float}),
    )
    .await
    .expect_json(201)
}

fn path(shift: &Value, tail: &str) -> String {
    format!("{SHIFTS}/{}{tail}", shift["id"].as_str().unwrap())
}

/// A cashier sale of one product at `price`, placed while the cashier is on a shift.
async fn sale(who: &Client, product: &str, qty: i64) -> Value {
    who.create_order(OrderBuilder::pos().line(product, qty))
        .await
}

#[tokio::test]
async fn registers_are_admin_made_listed_for_cashiers_and_versioned() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let cashier = app.as_cashier().await;
    let manager = app.as_manager().await;
    let r = admin
        .post("/api/v1/registers", json!({"name": "Front"}))
        .await
        .expect_status(201);
    assert_eq!(r.header("etag"), "\"1\"");
    let reg = r.body;
    assert_eq!(reg["name"], "Front");
    assert_eq!(reg["location_id"], Value::Null);
    assert_eq!(reg["active"], true);
    let id = id_of(&reg);
    expect_errors([
        (
            manager.post("/api/v1/registers", json!({"name": "Back"})),
            403,
            "forbidden",
        ),
        (
            admin.post("/api/v1/registers", json!({"name": "front"})),
            422,
            "validation_failed",
        ),
        (
            admin.post(
                "/api/v1/registers",
                json!({"name": "Side", "location_id": uuid::Uuid::now_v7()}),
            ),
            422,
            "validation_failed",
        ),
        (
            admin.post("/api/v1/registers", json!({"name": ""})),
            422,
            "validation_failed",
        ),
    ])
    .await;
    let list = cashier.get("/api/v1/registers").await.expect_json(200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    app.as_staff()
        .await
        .get("/api/v1/registers")
        .await
        .expect_error(403, "forbidden");

    let reg_path = format!("/api/v1/registers/{id}");
    admin
        .patch(&reg_path, json!({"name": "Till 1"}))
        .if_match(7)
        .await
        .expect_error(412, "precondition_failed");
    let v = admin
        .patch(&reg_path, json!({"name": "Till 1"}))
        .if_match(1)
        .await
        .expect_json(200);
    assert_eq!(
        (v["name"].as_str(), v["version"].as_i64()),
        (Some("Till 1"), Some(2))
    );

    // An open shift keeps its register active.
    let shift = open(&cashier, &id, 0).await;
    let v = admin
        .patch(&reg_path, json!({"active": false}))
        .await
        .expect_error(409, "conflict");
    assert_eq!(v["error"]["details"]["open_shift_id"], shift["id"]);
    assert_eq!(audit_count(&app, "register.create").await, 1);
    assert_eq!(audit_count(&app, "register.update").await, 1);
}

#[tokio::test]
async fn one_open_shift_per_register_and_per_cashier_and_joining() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let (c1, c2, c3) = (
        app.as_cashier().await,
        app.as_cashier().await,
        app.as_cashier().await,
    );
    let (front, back) = (
        register(&admin, "Front").await,
        register(&admin, "Back").await,
    );
    let s1 = open(&c1, &front, 0).await;
    let body = |r: &str| json!({"register_id": r, "opening_float_cents": 0});
    let v = c2
        .post(SHIFTS, body(&front))
        .await
        .expect_error(409, "conflict");
    assert_eq!(v["error"]["details"]["open_shift_id"], s1["id"]);
    let v = c1
        .post(SHIFTS, body(&back))
        .await
        .expect_error(409, "conflict");
    assert_eq!(v["error"]["details"]["open_shift_id"], s1["id"]);
    expect_errors([
        (
            c2.post(
                SHIFTS,
                json!({"register_id": uuid::Uuid::now_v7(), "opening_float_cents": 0}),
            ),
            422,
            "validation_failed",
        ),
        (
            c2.post(
                SHIFTS,
                json!({"register_id": back, "opening_float_cents": -1}),
            ),
            422,
            "validation_failed",
        ),
        (
            c2.post(
                SHIFTS,
                json!({"register_id": back, "opening_float_cents": 1.5}),
            ),
            422,
            "validation_failed",
        ),
        (
            app.as_staff().await.post(SHIFTS, body(&back)),
            403,
            "forbidden",
        ),
    ])
    .await;

    // c2 joins the front shift, and sells on it; then c2 cannot open or join another.
    let j = c2
        .request(reqwest::Method::POST, &path(&s1, "/join"))
        .await
        .expect_json(200);
    assert_eq!(j["user_ids"], json!([c1.id(), c2.id()]));
    let p = insert_product(&app, "P", 100, 0, 10).await;
    let o = sale(&c2, &p, 1).await;
    assert_eq!(o["shift_id"], s1["id"]);
    let s2 = open(&c3, &back, 0).await;
    let v = c2
        .request(reqwest::Method::POST, &path(&s2, "/join"))
        .await
        .expect_error(409, "conflict");
    assert_eq!(v["error"]["details"]["open_shift_id"], s1["id"]);
    // Current: by register, or the caller's own.
    let cur = c2.get(&format!("{SHIFTS}/current")).await.expect_json(200);
    assert_eq!(cur["id"], s1["id"]);
    let cur = c2
        .get(&format!("{SHIFTS}/current?register_id={back}"))
        .await
        .expect_json(200);
    assert_eq!(cur["id"], s2["id"]);
    app.as_cashier()
        .await
        .get(&format!("{SHIFTS}/current"))
        .await
        .expect_error(404, "not_found");
    // A cashier lists only the shifts they opened; a manager all.
    let mine = c3.get(SHIFTS).await.expect_json(200);
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let all = app.as_manager().await.get(SHIFTS).await.expect_json(200);
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let open_front = app
        .as_manager()
        .await
        .get(&format!("{SHIFTS}?register_id={front}&status=open&limit=1"))
        .await
        .expect_json(200);
    assert_eq!(open_front["items"][0]["id"], s1["id"]);
    assert_eq!(open_front["next_cursor"], Value::Null);
    app.as_manager()
        .await
        .get(&format!("{SHIFTS}?status=ajar"))
        .await
        .expect_invalid(&["status"]);
    // Someone else's shift is not found for a cashier.
    c3.get(&path(&s1, "")).await.expect_error(404, "not_found");
    assert_eq!(audit_count(&app, "shift.join").await, 1);
}

#[tokio::test]
async fn a_retried_join_with_its_key_gets_the_first_answer_even_after_the_shift_closed() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let (c1, c2, c3) = (
        app.as_cashier().await,
        app.as_cashier().await,
        app.as_cashier().await,
    );
    let s1 = open(&c1, &register(&admin, "Front").await, 0).await;
    let s2 = open(&c3, &register(&admin, "Back").await, 0).await;
    let join = |shift: &Value| c2.request(reqwest::Method::POST, &path(shift, "/join"));

    let first = join(&s1).idem("j").await.expect_status(200);
    assert_eq!(first.body["user_ids"], json!([c1.id(), c2.id()]));
    // The shift closes before the retry arrives: the retry still gets the join's answer.
    c1.post(&path(&s1, "/close"), json!({"counted_cash_cents": 0}))
        .await
        .expect_status(200);
    join(&s1).idem("j").await.expect_replay_of(&first);
    assert_eq!(audit_count(&app, "shift.join").await, 1);
    // The same key on another shift is another request.
    join(&s2)
        .idem("j")
        .await
        .expect_error(422, "idempotency_key_reused");
    let s2_now = c3.get(&path(&s2, "")).await.expect_json(200);
    assert_eq!(s2_now["user_ids"], json!([c3.id()]));
    // Without a key, as before.
    join(&s1).await.expect_error(409, "invalid_transition");
    let joined = join(&s2).await.expect_json(200);
    assert_eq!(joined["user_ids"], json!([c3.id(), c2.id()]));
    assert_eq!(audit_count(&app, "shift.join").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_opening_one_register_at_once_open_one_shift() {
    let (a, b) = TestApp::spawn_pair().await;
    let admin = a.as_admin().await;
    let till = register(&admin, "Front").await;
    let mut cashiers = Vec::new();
    for _ in 0..6 {
        cashiers.push(a.as_cashier().await);
    }
    let tries = cashiers.iter().enumerate().map(|(i, c)| {
        let c = c.on(if i % 2 == 0 { &a } else { &b });
        let till = till.clone();
        async move {
            c.post(
                SHIFTS,
                json!({"register_id": till, "opening_float_cents": 100}),
            )
            .await
        }
    });
    let answers = futures::future::join_all(tries).await;
    let opened: Vec<&Resp> = answers.iter().filter(|r| r.status() == 201).collect();
    assert_eq!(opened.len(), 1, "{answers:?}");
    for r in answers.iter().filter(|r| r.status() != 201) {
        assert_eq!(
            (r.status(), r.error_code()),
            (409, Some("conflict")),
            "{}",
            r.body
        );
        assert_eq!(
            r.body["error"]["details"]["open_shift_id"],
            opened[0].body["id"]
        );
    }
}

#[tokio::test]
async fn orders_name_their_register_and_land_in_its_open_shift() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let cashier = app.as_cashier().await;
    let manager = app.as_manager().await;
    let till = register(&admin, "Front").await;
    let p = insert_product(&app, "P", 100, 0, 10).await;
    let shift = open(&cashier, &till, 0).await;
    // The manager is on no shift but names the register: the order is the register's.
    let key = new_key();
    let body = OrderBuilder::pos()
        .line(&p, 1)
        .set("register_id", json!(till));
    let first = manager
        .post("/api/v1/orders", &body)
        .idem(&key)
        .await
        .expect_json(201);
    assert_eq!(first["register_id"], till.as_str());
    assert_eq!(first["shift_id"], shift["id"]);
    let again = manager
        .post("/api/v1/orders", &body)
        .idem(&key)
        .await
        .expect_status(201);
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.body, first);
    let read = manager
        .get(&format!("/api/v1/orders/{}", id_of(&first)))
        .await
        .expect_json(200);
    assert_eq!(read["shift_id"], shift["id"]);
    manager
        .post_order(
            OrderBuilder::pos()
                .line(&p, 1)
                .set("register_id", json!(uuid::Uuid::now_v7())),
        )
        .await
        .expect_invalid(&["register_id"]);
    // Without a register or a shift an order belongs to neither.
    let o = manager.create_order(OrderBuilder::pos().line(&p, 1)).await;
    assert_eq!(
        (o["register_id"].clone(), o["shift_id"].clone()),
        (Value::Null, Value::Null)
    );
}
