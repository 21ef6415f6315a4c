//! Cash racing a shift's close across two instances: every successful cash payment lands in
//! exactly one shift, and each shift's Z report counts exactly the payments that landed in it.

use std::collections::HashMap;
use std::time::Duration;

use futures::future::join_all;
use rand::Rng;
use serde_json::{json, Value};
use till_test_support::*;

const SHIFTS: &str = "/api/v1/shifts";
const PAYMENTS: usize = 20;

async fn sum_landed(app: &TestApp, shift: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(sum(amount_cents), 0)::bigint FROM payments WHERE shift_id = $1::uuid",
    )
    .bind(shift)
    .fetch_one(&app.state.db.write)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_cash_payments_racing_the_close_on_two_instances_land_in_exactly_one_shift() {
    let opts = Opts::new().await.set("SHIFTS_REQUIRED", "true");
    let a = TestApp::spawn_with(&opts).await;
    let b = TestApp::spawn_with(&opts).await;
    let admin = a.as_admin().await;
    let cashier = a.as_cashier().await;
    let manager = b.as_manager().await;
    let till = id_of(
        &admin
            .post("/api/v1/registers", json!({"name": "Front"}))
            .await
            .expect_json(201),
    );
    let first = cashier
        .post(
            SHIFTS,
            json!({"register_id": till, "opening_float_cents": 1000}),
        )
        .await
        .expect_json(201);
    let first_id = id_of(&first);
    let product = ProductBuilder::new("P")
        .price(100 + 7)
        .untracked()
        .insert(&a)
        .await;
    let mut orders = Vec::new();
    for _ in 0..PAYMENTS {
        let o = cashier
            .create_order(OrderBuilder::pos().line(&product, 1))
            .await;
        assert_eq!(o["shift_id"], first["id"]);
        orders.push(id_of(&o));
    }

    // The payments, spread over both instances with a little jitter, while the manager closes
    // the first shift and opens the next one on the same register.
    let pays = orders.iter().enumerate().map(|(i, order)| {
        let who = cashier.on(if i % 2 == 0 { &a } else { &b });
        // Spread over ~300 ms around the close (at ~120 ms): some before it, some racing it,
        // some after it.
        let delay = i as u64 * 15 + rand::thread_rng().gen_range(0..10);
        let order = order.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            who.pay(
                &order,
                json!({"method": "cash", "amount_cents": 107, "tendered_cents": 200}),
            )
            .await
        }
    });
    let switch = async {
        tokio::time::sleep(Duration::from_millis(120)).await;
        let closed = manager
            .post(
                &format!("{SHIFTS}/{first_id}/close"),
                json!({"counted_cash_cents": 0}),
            )
            .await
            .expect_json(200);
        let next = manager
            .post(
                SHIFTS,
                json!({"register_id": till, "opening_float_cents": 0}),
            )
            .await
            .expect_json(201);
        (closed, next)
    };
    let (answers, (closed, next)) = tokio::join!(join_all(pays), switch);
    let next_id = id_of(&next);

    let mut landed: HashMap<String, i64> = HashMap::new();
    let mut paid = 0;
    for r in &answers {
        match r.status() {
            201 => {
                let shift = r.body["payment"]["shift_id"].as_str().expect("a shift");
                assert!(shift == first_id || shift == next_id, "{}", r.body);
                *landed.entry(shift.to_owned()).or_default() += 107;
                paid += 107;
            }
            // Between the close and the next open there is no shift to take cash.
            409 => assert_eq!(r.error_code(), Some("no_open_shift"), "{}", r.body),
            _ => panic!("unexpected answer: {} {}", r.status(), r.body),
        }
    }
    manager
        .post(
            &format!("{SHIFTS}/{next_id}/close"),
            json!({"counted_cash_cents": 0}),
        )
        .await
        .expect_status(200);

    let z1 = manager
        .on(&a)
        .get(&format!("{SHIFTS}/{first_id}/report"))
        .await
        .expect_json(200);
    let z2 = manager
        .get(&format!("{SHIFTS}/{next_id}/report"))
        .await
        .expect_json(200);
    let in_z = |z: &Value| z["cash"]["cash_sales_cents"].as_i64().unwrap();
    // Σ over the shifts = Σ of the payments that succeeded, and each shift has exactly its own.
    assert_eq!(in_z(&z1) + in_z(&z2), paid);
    assert_eq!(in_z(&z1), landed.get(&first_id).copied().unwrap_or(0));
    assert_eq!(in_z(&z2), landed.get(&next_id).copied().unwrap_or(0));
    // Nothing landed in the first shift after its close wrote its figures.
    assert_eq!(sum_landed(&a, &first_id).await, in_z(&z1));
    assert_eq!(sum_landed(&a, &next_id).await, in_z(&z2));
    assert_eq!(closed["cash_sales_cents"], z1["cash"]["cash_sales_cents"]);
    assert_eq!(
        closed["expected_cash_cents"].as_i64().unwrap(),
        1000 + in_z(&z1)
    );
    let tenders = z1["tenders"]["cash"]["count"].as_i64().unwrap()
        + z2["tenders"]["cash"]["count"].as_i64().unwrap();
    assert_eq!(tenders * 107, paid);
    // Read again, on the other instance: the same report.
    let z1_again = manager
        .get(&format!("{SHIFTS}/{first_id}/report"))
        .await
        .expect_json(200);
    assert_eq!(z1_again, z1);
}
