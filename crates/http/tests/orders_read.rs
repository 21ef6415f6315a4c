//! Reading orders (list, one, per customer), the board, the audit log and the sales report.

use serde_json::{json, Value};
use sqlx::AssertSqlSafe;
use till_test_support::*;

const ORDERS: &str = "/api/v1/orders";

/// A list's `items[].<key>` strings.
fn items<'a>(page: &'a Value, key: &str) -> Vec<&'a str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o[key].as_str().unwrap())
        .collect()
}

fn ids(page: &Value) -> Vec<&str> {
    items(page, "id")
}

async fn set_time(app: &TestApp, table: &str, id: &str, at: &str) {
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {table} SET created_at = $2::timestamptz WHERE id = $1::uuid"
    )))
    .bind(id)
    .bind(at)
    .execute(&app.state.db.write)
    .await
    .unwrap();
}

#[tokio::test]
async fn list_filters_pages_and_customer_isolation() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    let staff = app.as_staff().await;
    let c1 = app.as_customer().await;
    let c2 = app.as_customer().await;
    let p = insert_product(&app, "P", 100, 0, 1000).await;
    let mut created = Vec::new();
    for (who, f) in [
        (&cashier, "in_store"),
        (&c1, "pickup"),
        (&cashier, "pickup"),
        (&c2, "pickup"),
        (&c1, "pickup"),
        (&cashier, "in_store"),
    ] {
        created.push(
            who.create_order(OrderBuilder::fulfilment(f).line(&p, 1))
                .await,
        );
    }
    let id = |i: usize| id_of(&created[i]);
    cashier
        .transition(&id(2), "confirmed")
        .await
        .expect_status(200);
    let newest_first: Vec<String> = (0..6).rev().map(id).collect();

    // Everything, newest first, for any staff-side role.
    for who in [&cashier, &staff] {
        let all = who.get(ORDERS).await.expect_json(200);
        assert_eq!(ids(&all), newest_first);
        assert_eq!(all["next_cursor"], Value::Null);
        assert_eq!(all["items"][3]["status"], "confirmed");
    }

    // A page walk with limit 2 sees every order once, even with new orders arriving meanwhile.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("{ORDERS}?limit=2"),
            Some(c) => format!("{ORDERS}?limit=2&cursor={c}"),
        };
        let page = cashier.get(&path).await.expect_json(200);
        walked.extend(ids(&page).into_iter().map(str::to_owned));
        cashier.create_order(OrderBuilder::pos().line(&p, 1)).await;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(walked, newest_first);

    // Filters.
    let c1_id = c1.customer_id();
    let from = created[2]["created_at"].as_str().unwrap();
    let to = created[4]["created_at"].as_str().unwrap();
    for (query, want) in [
        ("status=confirmed".to_owned(), vec![id(2)]),
        ("channel=online".to_owned(), vec![id(4), id(3), id(1)]),
        (
            format!("customer_id={c1_id}&channel=online"),
            vec![id(4), id(1)],
        ),
        (
            format!("created_from={from}&created_to={to}"),
            vec![id(4), id(3), id(2)],
        ),
    ] {
        let page = cashier
            .get(&format!("{ORDERS}?{query}"))
            .await
            .expect_json(200);
        assert_eq!(ids(&page), want, "{query}");
    }
    let today = &from[..10];
    let by_day = cashier
        .get(&format!(
            "{ORDERS}?created_from={today}&created_to={today}&limit=100"
        ))
        .await
        .expect_json(200);
    assert_eq!(
        by_day["items"].as_array().unwrap().len(),
        6 + walked.len() / 2
    );

    // Bad filters are 422 naming the parameter.
    for (q, field) in [
        ("status=shipped", "status"),
        ("channel=web", "channel"),
        ("customer_id=nope", "customer_id"),
        ("created_from=yesterday", "created_from"),
        ("created_to=2026-13-01", "created_to"),
        (
            "created_from=2026-03-02&created_to=2026-03-01",
            "created_to",
        ),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=garbage", "cursor"),
    ] {
        cashier
            .get(&format!("{ORDERS}?{q}"))
            .await
            .expect_invalid(&[field]);
    }

    // Customers see their own orders only; another's is a 404.
    assert_eq!(ids(&c1.get(ORDERS).await.expect_json(200)), [id(4), id(1)]);
    let c2_id = c2.customer_id();
    let none = c1
        .get(&format!("{ORDERS}?customer_id={c2_id}"))
        .await
        .expect_json(200);
    assert_eq!(none["items"], json!([]));
    c1.get(&format!("{ORDERS}/{}", id(1)))
        .await
        .expect_status(200);
    // Another customer's order, a cashier's order, and no order at all: the same 404.
    let nobody = uuid::Uuid::now_v7();
    expect_errors([
        (c1.get(&format!("{ORDERS}/{}", id(3))), 404, "not_found"),
        (c1.get(&format!("{ORDERS}/{}", id(0))), 404, "not_found"),
        (cashier.get(&format!("{ORDERS}/{nobody}")), 404, "not_found"),
        (app.anon().get(ORDERS), 401, "unauthorized"),
    ])
    .await;

    // /customers/{id}/orders: staff for anyone, customers for themselves, paginated.
    let theirs = format!("/api/v1/customers/{c1_id}/orders");
    let page = staff
        .get(&format!("{theirs}?limit=1"))
        .await
        .expect_json(200);
    assert_eq!(ids(&page), [id(4)]);
    let next = page["next_cursor"].as_str().unwrap();
    let page = staff
        .get(&format!("{theirs}?limit=1&cursor={next}"))
        .await
        .expect_json(200);
    assert_eq!(ids(&page), [id(1)]);
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(ids(&c1.get(&theirs).await.expect_json(200)), [id(4), id(1)]);
    expect_errors([
        (
            c1.get(&format!("/api/v1/customers/{c2_id}/orders")),
            404,
            "not_found",
        ),
        (
            staff.get(&format!("/api/v1/customers/{nobody}/orders")),
            404,
            "not_found",
        ),
    ])
    .await;
}

#[tokio::test]
async fn board_shows_open_columns_oldest_first_and_recent_done() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    let staff = app.as_staff().await;
    let customer = app.as_customer().await;
    let p = insert_product(&app, "P", 100, 0, 10_000).await;
    let mk = |f: &'static str| {
        let order = match f {
            "delivery" => OrderBuilder::delivery("1 Main St"),
            _ => OrderBuilder::fulfilment(f),
        }
        .line(&p, 1);
        let cashier = &cashier;
        async move { id_of(&cashier.create_order(order).await) }
    };
    let steps = |id: String, to: &'static [&'static str]| {
        let staff = &staff;
        async move {
            for to in to {
                staff.transition(&id, to).await.expect_status(200);
            }
        }
    };
    let mut pending = Vec::new();
    for _ in 0..102 {
        pending.push(mk("pickup").await);
    }
    let confirmed = mk("delivery").await;
    steps(confirmed.clone(), &["confirmed"]).await;
    let delivered = mk("delivery").await;
    let completed = mk("pickup").await;
    let out = mk("delivery").await;
    steps(
        delivered.clone(),
        &[
            "confirmed",
            "preparing",
            "ready",
            "out_for_delivery",
            "delivered",
        ],
    )
    .await;
    steps(
        completed.clone(),
        &["confirmed", "preparing", "ready", "completed"],
    )
    .await;
    steps(
        out.clone(),
        &["confirmed", "preparing", "ready", "out_for_delivery"],
    )
    .await;
    let cancelled = mk("pickup").await;
    steps(cancelled.clone(), &["cancelled"]).await;

    let b = staff.get(&format!("{ORDERS}/board")).await.expect_json(200);
    let cols = b["columns"].as_object().unwrap();
    let mut keys: Vec<&String> = cols.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "confirmed",
            "out_for_delivery",
            "pending",
            "preparing",
            "ready"
        ]
    );
    assert_eq!(cols["pending"]["count"], 102);
    let shown: Vec<&str> = cols["pending"]["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        shown,
        pending[..100]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert_eq!(cols["confirmed"]["count"], 1);
    assert_eq!(cols["confirmed"]["orders"][0]["id"], confirmed.as_str());
    assert_eq!(
        cols["confirmed"]["orders"][0]["lines"][0]["product_id"],
        p.as_str()
    );
    assert_eq!(cols["preparing"]["count"], 0);
    assert_eq!(cols["ready"]["count"], 0);
    assert_eq!(cols["preparing"]["orders"], json!([]));
    assert_eq!(cols["out_for_delivery"]["orders"][0]["id"], out.as_str());
    let done: Vec<&str> = b["recent_done"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(done, [completed.as_str(), delivered.as_str()]);
    assert!(!b.to_string().contains(&cancelled));

    cashier
        .get(&format!("{ORDERS}/board"))
        .await
        .expect_status(200);
    customer
        .get(&format!("{ORDERS}/board"))
        .await
        .expect_error(403, "forbidden");
}

#[tokio::test]
async fn audit_log_is_listed_newest_first_for_managers() {
    let app = TestApp::spawn().await;
    let cashier = app.as_cashier().await;
    let manager = app.as_manager().await;
    let p = insert_product(&app, "P", 1000, 0, 100).await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(cashier.create_order(OrderBuilder::pos().line(&p, 1)).await);
    }
    let o = orders[2]["id"].as_str().unwrap();
    cashier
        .pay(o, json!({"method": "cash", "amount_cents": 1000}))
        .await
        .expect_status(201);

    let all = manager
        .get(&format!("/api/v1/audit?actor_id={}", cashier.id()))
        .await
        .expect_json(200);
    assert_eq!(
        items(&all, "action"),
        [
            "order.payment",
            "order.create",
            "order.create",
            "order.create"
        ]
    );
    let e = &all["items"][0];
    assert_eq!(e["actor_id"], cashier.id());
    assert_eq!(e["entity_type"], "order");
    assert_eq!(e["entity_id"], o);
    assert_eq!(e["data"]["amount_cents"], 1000);
    assert!(e["request_id"].is_string() && e["at"].is_string() && e["id"].is_string());
    assert!(e.get("ip").is_some());

    let creates = "/api/v1/audit?action=order.create&limit=2";
    let first = manager.get(creates).await.expect_json(200);
    let next = first["next_cursor"].as_str().unwrap();
    let rest = manager
        .get(&format!("{creates}&cursor={next}"))
        .await
        .expect_json(200);
    let mut walked = items(&first, "entity_id");
    walked.extend(items(&rest, "entity_id"));
    let want: Vec<&str> = orders
        .iter()
        .rev()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(walked, want);
    assert_eq!(rest["next_cursor"], Value::Null);

    expect_errors([
        (cashier.get("/api/v1/audit"), 403, "forbidden"),
        (
            manager.get("/api/v1/audit?actor_id=bob"),
            422,
            "validation_failed",
        ),
        (
            manager.get("/api/v1/audit?cursor=zzz"),
            422,
            "validation_failed",
        ),
    ])
    .await;
}

#[tokio::test]
async fn sales_report_counts_days_in_the_store_time_zone() {
    let app =
        TestApp::spawn_with(&Opts::new().await.set("STORE_TIMEZONE", "America/New_York")).await;
    let manager = app.as_manager().await;
    let cashier = app.as_cashier().await;
    let a = insert_product(&app, "A", 1000, 1000, 100).await;
    let b = insert_product(&app, "B", 500, 0, 100).await;
    let order = || OrderBuilder::pickup();
    // O1: 2000 + 200 tax, on Feb 28 in New York (04:30 UTC on Mar 1).
    let o1 = manager.create_order(order().line(&a, 2)).await;
    // O2: 2000 − 200 discount (100 per line) + 90 tax, 00:30 Mar 1 in New York.
    let o2 = manager
        .create_order(order().line(&a, 1).line(&b, 2).amount_off(200))
        .await;
    // O3: cancelled, so it counts nowhere.
    let o3 = manager.create_order(order().line(&b, 1)).await;
    // O4: 2000, Mar 3, unpaid.
    let o4 = manager.create_order(order().line(&b, 4)).await;
    assert_eq!(
        (&o1["total_cents"], &o2["total_cents"]),
        (&json!(2200), &json!(1890))
    );
    for (o, method, cents) in [(&o1, "cash", 2200), (&o2, "card", 1890), (&o3, "card", 500)] {
        cashier
            .pay(&id_of(o), json!({"method": method, "amount_cents": cents}))
            .await
            .expect_status(201);
    }
    manager
        .refund(&id_of(&o2), json!({"amount_cents": 300, "reason": "late"}))
        .await
        .expect_status(201);
    // O3's money goes back before it can be cancelled.
    manager
        .refund(
            &id_of(&o3),
            json!({"amount_cents": 500, "reason": "cancelled"}),
        )
        .await
        .expect_status(201);
    manager
        .transition(&id_of(&o3), "cancelled")
        .await
        .expect_status(200);
    set_time(&app, "orders", &id_of(&o1), "2026-03-01T04:30:00Z").await;
    set_time(&app, "orders", &id_of(&o2), "2026-03-01T05:30:00Z").await;
    set_time(&app, "orders", &id_of(&o3), "2026-03-01T15:00:00Z").await;
    set_time(&app, "orders", &id_of(&o4), "2026-03-03T12:00:00Z").await;
    for (sql, order) in [
        (
            "UPDATE payments SET created_at = '2026-03-01T04:40:00Z' WHERE order_id = $1::uuid",
            &o1,
        ),
        (
            "UPDATE payments SET created_at = '2026-03-01T06:00:00Z' WHERE order_id <> $1::uuid",
            &o1,
        ),
        (
            "UPDATE refunds SET created_at = '2026-03-02T16:00:00Z' WHERE order_id = $1::uuid",
            &o2,
        ),
    ] {
        exec_sql(&app, sql, &id_of(order)).await;
    }

    let report = "/api/v1/reports/sales";
    let r = manager
        .get(&format!("{report}?from=2026-02-28&to=2026-03-03"))
        .await
        .expect_json(200);
    // Both earn 2900 (A: 2000 + 900, B: 900 + 2000); more units ranks first.
    assert_eq!(r["top_products"][0]["product_id"], b.as_str());
    assert_eq!(r["top_products"][1]["product_id"], a.as_str());
    // Days (Mar 2 has only the refund: net −300), totals, tenders and top products.
    assert_json_snap!("sales_report", r);

    // One local day: O1 (Mar 1 in UTC, Feb 28 in New York) is not in it.
    let r = manager
        .get(&format!("{report}?from=2026-03-01&to=2026-03-01"))
        .await
        .expect_json(200);
    assert_eq!(
        r["days"],
        json!([{"date": "2026-03-01", "orders": 1, "gross_cents": 2000, "discount_cents": 200,
                "tax_cents": 90, "refunds_cents": 0, "net_cents": 1890}])
    );
    assert_eq!(r["by_payment_method"]["cash"], 0);

    for q in [
        "",
        "from=2026-03-01",
        "from=2026-03-01&to=tomorrow",
        "from=2026-03-02&to=2026-03-01",
        "from=2025-01-01&to=2026-01-02",
    ] {
        manager
            .get(&format!("{report}?{q}"))
            .await
            .expect_invalid(&[]);
    }
    let year = manager.get(&format!("{report}?from=2025-01-01&to=2026-01-01"));
    year.await.expect_status(200);
    let day = cashier.get(&format!("{report}?from=2026-03-01&to=2026-03-01"));
    day.await.expect_error(403, "forbidden");
}
