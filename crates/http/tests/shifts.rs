//! Register shifts: registers, opening with a float, the expected-cash formula (change is not
//! cash, card is not cash, cash refunds leave the drawer), paid-in/paid-out, the blind close and
//! its manager limit, the next shift's opening difference, SHIFTS_REQUIRED, a closed shift that
//! never changes, the X and Z reports, events and audit entries.

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

fn movement(kind: &str, cents: i64) -> Value {
    json!({"type": kind, "amount_cents": cents, "reason": "float top-up"})
}

/// A cashier sale of one product at `price`, placed while the cashier is on a shift.
async fn sale(who: &Client, product: &str, qty: i64) -> Value {
    who.create_order(OrderBuilder::pos().line(product, qty))
        .await
}

#[tokio::test]
async fn expected_cash_counts_cash_amounts_not_tendered_nor_card_and_takes_cash_refunds_out() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let cashier = app.as_cashier().await;
    let manager = app.as_manager().await;
    let till = register(&admin, "Front").await;
    let p = insert_product(&app, "TEA", 1000, 825, 100).await;
    let shift = open(&cashier, &till, 10_000).await;
    assert_eq!(shift["status"], "open");
    assert_eq!(shift["number"], "1");
    assert_eq!(shift["opening_float_cents"], 10_000);
    assert_eq!(shift["expected_opening_cents"], Value::Null);
    assert_eq!(shift["user_ids"], json!([cashier.id()]));
    // Blind: the cashier never sees what the drawer should hold while the shift is open.
    assert_eq!(shift["expected_cash_cents"], Value::Null);

    // 1083 paid with a 2000 note: 917 change left the drawer, so 1083 is in it.
    let a = sale(&cashier, &p, 1).await;
    assert_eq!(a["register_id"], till.as_str());
    assert_eq!(a["shift_id"], shift["id"]);
    // Its event carries the order as placed (a webhook's `data`): register and shift included.
    let data: Value = sqlx::query_scalar(
        "SELECT payload -> 'data' FROM outbox
         WHERE topic = 'order.created' AND payload -> 'order' ->> 'id' = $1",
    )
    .bind(a["id"].as_str().unwrap())
    .fetch_one(&app.state.db.write)
    .await
    .unwrap();
    assert_eq!(data, a);
    let v = cashier
        .pay(
            a["id"].as_str().unwrap(),
            json!({"method": "cash", "amount_cents": 1083, "tendered_cents": 2000}),
        )
        .await
        .expect_json(201);
    assert_eq!(v["payment"]["change_cents"], 917);
    assert_eq!(v["payment"]["shift_id"], shift["id"]);
    // 2165 by card: not cash.
    let b = sale(&cashier, &p, 2).await;
    cashier
        .pay(
            b["id"].as_str().unwrap(),
            json!({"method": "card", "amount_cents": 2165}),
        )
        .await
        .expect_status(201);
    // 300 back in cash on the first sale (its first payment was cash: the default tender).
    let v = manager
        .refund(
            a["id"].as_str().unwrap(),
            json!({"amount_cents": 300, "reason": "damaged box"}),
        )
        .await
        .expect_json(201);
    assert_eq!(v["refund"]["method"], "cash");
    assert_eq!(v["refund"]["shift_id"], shift["id"]);
    // 100 back on the card sale, to the card.
    manager
        .refund(
            b["id"].as_str().unwrap(),
            json!({"amount_cents": 100, "reason": "price match", "method": "card"}),
        )
        .await
        .expect_status(201);
    cashier
        .post(&path(&shift, "/cash-movements"), movement("paid_in", 500))
        .await
        .expect_status(201);
    let v = cashier
        .post(
            &path(&shift, "/cash-movements"),
            json!({"type": "paid_out", "amount_cents": 200, "reason": "window cleaner"}),
        )
        .await
        .expect_json(201);
    assert_eq!(v["movement"]["type"], "paid_out");
    assert_eq!(v["movement"]["reason"], "window cleaner");
    assert_eq!(v["shift"]["paid_out_cents"], 200);

    let expected = 10_000 + 1083 - 300 + 500 - 200;
    let seen = manager.get(&path(&shift, "")).await.expect_json(200);
    assert_eq!(seen["expected_cash_cents"], expected);
    assert_eq!(seen["cash_sales_cents"], 1083);
    assert_eq!(seen["cash_refunds_cents"], 300);
    assert_eq!(seen["orders_count"], 2);
    assert_eq!(
        seen["tenders"],
        json!({
            "cash": {"count": 1, "amount_cents": 1083, "refunds_cents": 300},
            "card": {"count": 1, "amount_cents": 2165, "refunds_cents": 100},
            "other": {"count": 0, "amount_cents": 0, "refunds_cents": 0},
        })
    );
    let blind = cashier.get(&path(&shift, "")).await.expect_json(200);
    assert_eq!(blind["expected_cash_cents"], Value::Null);
    let x = cashier.get(&path(&shift, "/report")).await.expect_json(200);
    assert_eq!(x["kind"], "X");
    assert_eq!(x["cash"]["expected_cash_cents"], Value::Null);
    let x = manager.get(&path(&shift, "/report")).await.expect_json(200);
    assert_eq!(x["cash"]["expected_cash_cents"], expected);

    // The blind close: the answer shows what was expected.
    let closed = cashier
        .post(
            &path(&shift, "/close"),
            json!({"counted_cash_cents": expected - 50, "deposit_cents": 5000}),
        )
        .await
        .expect_json(200);
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["expected_cash_cents"], expected);
    assert_eq!(closed["counted_cash_cents"], expected - 50);
    assert_eq!(closed["difference_cents"], -50);
    assert_eq!(closed["deposit_cents"], 5000);
    assert_eq!(closed["closed_by"], cashier.id());

    let z = cashier.get(&path(&shift, "/report")).await.expect_json(200);
    assert_eq!(z["kind"], "Z");
    assert_eq!(z["shift"], closed);
    assert_eq!(
        z["sales"],
        json!({"orders": 2, "gross_cents": 3000, "discount_cents": 0, "tax_cents": 248,
               "refunds_cents": 400, "net_cents": 3000 + 248 - 400})
    );
    assert_eq!(
        z["tax_by_rate"],
        json!([{"tax_rate_bp": 825, "taxable_cents": 3000, "tax_cents": 248}])
    );
    assert_eq!(z["tenders"], seen["tenders"]);
    assert_eq!(
        z["cash"],
        json!({"opening_float_cents": 10_000, "cash_sales_cents": 1083, "cash_refunds_cents": 300,
               "paid_in_cents": 500, "paid_out_cents": 200, "expected_cash_cents": expected,
               "counted_cash_cents": expected - 50, "difference_cents": -50})
    );
    // The manager's refunds count against the manager; the sales against the cashier.
    let mut by_user = z["by_user"].as_array().unwrap().clone();
    by_user.sort_by_key(|u| u["orders"].as_i64());
    assert_eq!(
        json!(by_user),
        json!([
            {"user_id": manager.id(), "name": "Test manager", "orders": 0, "net_cents": -400},
            {"user_id": cashier.id(), "name": "Test cashier", "orders": 2, "net_cents": 3248},
        ])
    );
    for action in ["shift.open", "shift.cash_movement", "shift.close"] {
        assert!(audit_count(&app, action).await >= 1, "{action}");
    }
    assert_eq!(audit_count(&app, "shift.cash_movement").await, 2);
    let events: Vec<String> =
        sqlx::query_scalar("SELECT topic FROM outbox WHERE topic LIKE 'shift.%' ORDER BY seq")
            .fetch_all(&app.state.db.write)
            .await
            .unwrap();
    assert_eq!(events, ["shift.opened", "shift.closed"]);
    // Webhooks deliver the closed Shift itself.
    let data: Value =
        sqlx::query_scalar("SELECT payload -> 'data' FROM outbox WHERE topic = 'shift.closed'")
            .fetch_one(&app.state.db.write)
            .await
            .unwrap();
    assert_eq!(data, closed);
}

#[tokio::test]
async fn a_paid_out_above_the_drawer_is_refused_and_a_closed_shift_never_changes() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let cashier = app.as_cashier().await;
    let till = register(&admin, "Front").await;
    let shift = open(&cashier, &till, 1000).await;
    let moves = path(&shift, "/cash-movements");
    let v = cashier
        .post(&moves, movement("paid_out", 1001))
        .await
        .expect_error(409, "conflict");
    // Blind: the cashier is not told how much is there.
    assert_eq!(v["error"]["details"], Value::Null);
    cashier
        .post(&moves, movement("paid_out", 1000))
        .await
        .expect_status(201);
    cashier
        .post(&moves, movement("paid_out", 1))
        .await
        .expect_error(409, "conflict");
    expect_errors([
        (
            cashier.post(&moves, movement("paid_in", 0)),
            422,
            "validation_failed",
        ),
        (
            cashier.post(&moves, movement("paid_in", -5)),
            422,
            "validation_failed",
        ),
        (
            cashier.post(
                &moves,
                json!({"type": "paid_in", "amount_cents": 5, "reason": " "}),
            ),
            422,
            "validation_failed",
        ),
        (
            cashier.post(
                &moves,
                json!({"type": "tip", "amount_cents": 5, "reason": "x"}),
            ),
            422,
            "validation_failed",
        ),
        (
            app.as_cashier().await.post(&moves, movement("paid_in", 5)),
            404,
            "not_found",
        ),
    ])
    .await;

    let p = insert_product(&app, "P", 500, 0, 10).await;
    let o = sale(&cashier, &p, 2).await;
    let order = o["id"].as_str().unwrap();
    cashier
        .pay(order, json!({"method": "cash", "amount_cents": 400}))
        .await
        .expect_status(201);
    cashier
        .post(&path(&shift, "/close"), json!({"counted_cash_cents": 400}))
        .await
        .expect_status(200);
    let z = cashier.get(&path(&shift, "/report")).await.expect_json(200);

    expect_errors([
        (
            cashier.post(&moves, movement("paid_in", 5)),
            409,
            "invalid_transition",
        ),
        (
            cashier.post(&path(&shift, "/close"), json!({"counted_cash_cents": 0})),
            409,
            "invalid_transition",
        ),
        (
            cashier.post(&path(&shift, "/join"), json!({})),
            409,
            "invalid_transition",
        ),
    ])
    .await;
    // Money on the order after the close lands in no shift (its register has none open and the
    // cashier is on none): the closed shift is untouched.
    let v = cashier
        .pay(order, json!({"method": "cash", "amount_cents": 600}))
        .await
        .expect_json(201);
    assert_eq!(v["payment"]["shift_id"], Value::Null);
    app.as_manager()
        .await
        .refund(order, json!({"amount_cents": 100, "reason": "r"}))
        .await
        .expect_status(201);
    let after = cashier.get(&path(&shift, "/report")).await.expect_json(200);
    assert_eq!(after, z, "the Z report reads the same every time");
    assert_eq!(after["cash"]["cash_sales_cents"], 400);
    let again = cashier.get(&path(&shift, "/report")).await.expect_json(200);
    assert_eq!(again, z);
}

#[tokio::test]
async fn a_cashier_closes_blind_within_the_limit_and_a_manager_beyond_it() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let cashier = app.as_cashier().await;
    let manager = app.as_manager().await;
    let till = register(&admin, "Front").await;
    let shift = open(&cashier, &till, 10_000).await;
    let close = path(&shift, "/close");
    let v = cashier
        .post(&close, json!({"counted_cash_cents": 9_499}))
        .await
        .expect_error(403, "forbidden");
    assert_eq!(v["error"]["details"]["difference_cents"], -501);
    expect_errors([
        (
            cashier.post(
                &close,
                json!({"counted_cash_cents": 100, "deposit_cents": 101}),
            ),
            422,
            "validation_failed",
        ),
        (
            cashier.post(&close, json!({"counted_cash_cents": -1})),
            422,
            "validation_failed",
        ),
        (
            app.as_cashier()
                .await
                .post(&close, json!({"counted_cash_cents": 10_000})),
            404,
            "not_found",
        ),
    ])
    .await;
    let still = manager.get(&path(&shift, "")).await.expect_json(200);
    assert_eq!(still["status"], "open");
    let closed = manager
        .post(
            &close,
            json!({"counted_cash_cents": 9_499, "note": "short, checked"}),
        )
        .await
        .expect_json(200);
    assert_eq!(closed["difference_cents"], -501);
    assert_eq!(closed["closed_by"], manager.id());
    assert_eq!(closed["close_note"], "short, checked");

    // Exactly at the limit a cashier may close.
    let next = open(&cashier, &till, 9_499).await;
    let v = cashier
        .post(&path(&next, "/close"), json!({"counted_cash_cents": 9_999}))
        .await
        .expect_json(200);
    assert_eq!(v["difference_cents"], 500);
}

#[tokio::test]
async fn the_next_shift_expects_the_counted_cash_less_the_deposit() {
    let app = TestApp::spawn().await;
    let admin = app.as_admin().await;
    let cashier = app.as_cashier().await;
    let till = register(&admin, "Front").await;
    let first = open(&cashier, &till, 15_000).await;
    cashier
        .post(
            &path(&first, "/close"),
            json!({"counted_cash_cents": 15_000, "deposit_cents": 10_000}),
        )
        .await
        .expect_status(200);
    // 48.00 found where 50.00 should be: a 2.00 opening difference, not counted again in the
    // drawer's expected cash (the float is what was counted).
    let next = open(&cashier, &till, 4_800).await;
    assert_eq!(next["expected_opening_cents"], 5_000);
    assert_eq!(next["opening_difference_cents"], -200);
    assert_eq!(next["number"], "2");
    let closed = cashier
        .post(&path(&next, "/close"), json!({"counted_cash_cents": 4_800}))
        .await
        .expect_json(200);
    assert_eq!(closed["expected_cash_cents"], 4_800);
    assert_eq!(closed["difference_cents"], 0);
    // Another register starts from nothing.
    let other = register(&admin, "Back").await;
    let s = open(&cashier, &other, 1_000).await;
    assert_eq!(s["expected_opening_cents"], Value::Null);
    assert_eq!(s["opening_difference_cents"], Value::Null);
}

#[tokio::test]
async fn shifts_required_refuses_cash_without_an_open_shift() {
    let app = TestApp::spawn_with(&Opts::new().await.set("SHIFTS_REQUIRED", "true")).await;
    let admin = app.as_admin().await;
    let cashier = app.as_cashier().await;
    let manager = app.as_manager().await;
    let p = insert_product(&app, "P", 1000, 0, 10).await;
    let o = sale(&cashier, &p, 2).await;
    assert_eq!(o["shift_id"], Value::Null);
    let id = o["id"].as_str().unwrap();
    cashier
        .pay(id, json!({"method": "cash", "amount_cents": 500}))
        .await
        .expect_error(409, "no_open_shift");
    let v = cashier
        .pay(id, json!({"method": "card", "amount_cents": 500}))
        .await
        .expect_json(201);
    assert_eq!(v["payment"]["shift_id"], Value::Null);
    manager
        .refund(
            id,
            json!({"amount_cents": 100, "reason": "r", "method": "cash"}),
        )
        .await
        .expect_error(409, "no_open_shift");
    let till = register(&admin, "Front").await;
    let shift = open(&cashier, &till, 0).await;
    // Now the cashier's open shift takes it (the order had no register).
    let v = cashier
        .pay(id, json!({"method": "cash", "amount_cents": 500}))
        .await
        .expect_json(201);
    assert_eq!(v["payment"]["shift_id"], shift["id"]);
    // A payment naming the register lands in that register's shift, whoever takes it.
    let v = manager
        .pay(
            id,
            json!({"method": "cash", "amount_cents": 100, "register_id": till}),
        )
        .await
        .expect_json(201);
    assert_eq!(v["payment"]["shift_id"], shift["id"]);
    manager
        .pay(
            id,
            json!({"method": "cash", "amount_cents": 100, "register_id": uuid::Uuid::now_v7()}),
        )
        .await
        .expect_invalid(&["register_id"]);
}
