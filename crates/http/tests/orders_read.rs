//! Reading orders (list, one, per customer), the board, the audit log and the sales report.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn get_ok(app: &TestApp, path: &str, token: &str) -> Value {
    let (s, v) = body(app.get(path, Some(token)).await).await;
    assert_eq!(s, StatusCode::OK, "{path}: {v}");
    v
}

async fn set_time(app: &TestApp, table: &str, id: &str, at: &str) {
    sqlx::query(&format!(
        "UPDATE {table} SET created_at = $2::timestamptz WHERE id = $1::uuid"
    ))
    .bind(id)
    .bind(at)
    .execute(&app.state.db.write)
    .await
    .unwrap();
}

#[tokio::test]
async fn list_filters_pages_and_customer_isolation() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let staff = app.user("staff").await;
    let c1 = app.user("customer").await;
    let c2 = app.user("customer").await;
    let p = insert_product(&app, "P", 100, 0, 1000).await;
    let line = json!([{"product_id": p, "quantity": 1}]);
    let mut created = Vec::new();
    for (who, f) in [
        (&cashier, "in_store"),
        (&c1, "pickup"),
        (&cashier, "pickup"),
        (&c2, "pickup"),
        (&c1, "pickup"),
        (&cashier, "in_store"),
    ] {
        created.push(create_order(&app, &who.token, json!({"fulfilment": f, "lines": line})).await);
    }
    let id = |i: usize| created[i]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/orders/{}/transitions", id(2));
    assert_eq!(
        app.post(&path, Some(&cashier.token), json!({"to": "confirmed"}))
            .await
            .status(),
        StatusCode::OK
    );
    let newest_first: Vec<String> = (0..6).rev().map(id).collect();

    // Everything, newest first, for any staff-side role.
    for token in [&cashier.token, &staff.token] {
        let all = get_ok(&app, "/api/v1/orders", token).await;
        assert_eq!(ids(&all), newest_first);
        assert_eq!(all["next_cursor"], Value::Null);
        assert_eq!(all["items"][3]["status"], "confirmed");
    }

    // A page walk with limit 2 sees every order once, even with new orders arriving meanwhile.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/api/v1/orders?limit=2".to_owned(),
            Some(c) => format!("/api/v1/orders?limit=2&cursor={c}"),
        };
        let page = get_ok(&app, &path, &cashier.token).await;
        walked.extend(ids(&page));
        create_order(
            &app,
            &cashier.token,
            json!({"fulfilment": "in_store", "lines": line}),
        )
        .await;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(walked, newest_first);

    // Filters.
    let one = get_ok(&app, "/api/v1/orders?status=confirmed", &cashier.token).await;
    assert_eq!(ids(&one), [id(2)]);
    let online = get_ok(&app, "/api/v1/orders?channel=online", &cashier.token).await;
    assert_eq!(ids(&online), [id(4), id(3), id(1)]);
    let c1_id = c1.user["customer_id"].as_str().unwrap();
    let theirs = get_ok(
        &app,
        &format!("/api/v1/orders?customer_id={c1_id}&channel=online"),
        &cashier.token,
    )
    .await;
    assert_eq!(ids(&theirs), [id(4), id(1)]);
    let from = created[2]["created_at"].as_str().unwrap();
    let to = created[4]["created_at"].as_str().unwrap();
    let window = get_ok(
        &app,
        &format!("/api/v1/orders?created_from={from}&created_to={to}"),
        &cashier.token,
    )
    .await;
    assert_eq!(ids(&window), [id(4), id(3), id(2)]);
    let today = &from[..10];
    let by_day = get_ok(
        &app,
        &format!("/api/v1/orders?created_from={today}&created_to={today}&limit=100"),
        &cashier.token,
    )
    .await;
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
        let v = expect_error(
            app.get(&format!("/api/v1/orders?{q}"), Some(&cashier.token))
                .await,
            422,
            "validation_failed",
        )
        .await;
        assert!(
            v["error"]["details"]["fields"][field].is_array(),
            "{q}: {v}"
        );
    }

    // Customers see their own orders only; another's is a 404.
    let mine = get_ok(&app, "/api/v1/orders", &c1.token).await;
    assert_eq!(ids(&mine), [id(4), id(1)]);
    let c2_id = c2.user["customer_id"].as_str().unwrap();
    let none = get_ok(
        &app,
        &format!("/api/v1/orders?customer_id={c2_id}"),
        &c1.token,
    )
    .await;
    assert_eq!(none["items"], json!([]));
    get_ok(&app, &format!("/api/v1/orders/{}", id(1)), &c1.token).await;
    // Another customer's order, a cashier's order, and no order at all: the same 404.
    for (path, token) in [
        (format!("/api/v1/orders/{}", id(3)), &c1.token),
        (format!("/api/v1/orders/{}", id(0)), &c1.token),
        (
            format!("/api/v1/orders/{}", uuid::Uuid::now_v7()),
            &cashier.token,
        ),
    ] {
        expect_error(app.get(&path, Some(token)).await, 404, "not_found").await;
    }
    expect_error(app.get("/api/v1/orders", None).await, 401, "unauthorized").await;

    // /customers/{id}/orders: staff for anyone, customers for themselves, paginated.
    let page = get_ok(
        &app,
        &format!("/api/v1/customers/{c1_id}/orders?limit=1"),
        &staff.token,
    )
    .await;
    assert_eq!(ids(&page), [id(4)]);
    let next = page["next_cursor"].as_str().unwrap();
    let page = get_ok(
        &app,
        &format!("/api/v1/customers/{c1_id}/orders?limit=1&cursor={next}"),
        &staff.token,
    )
    .await;
    assert_eq!(ids(&page), [id(1)]);
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(
        ids(&get_ok(
            &app,
            &format!("/api/v1/customers/{c1_id}/orders"),
            &c1.token
        )
        .await),
        [id(4), id(1)]
    );
    for (path, token) in [
        (format!("/api/v1/customers/{c2_id}/orders"), &c1.token),
        (
            format!("/api/v1/customers/{}/orders", uuid::Uuid::now_v7()),
            &staff.token,
        ),
    ] {
        expect_error(app.get(&path, Some(token)).await, 404, "not_found").await;
    }
}

#[tokio::test]
async fn board_shows_open_columns_oldest_first_and_recent_done() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let staff = app.user("staff").await;
    let customer = app.user("customer").await;
    let p = insert_product(&app, "P", 100, 0, 10_000).await;
    let mk = |f: &'static str| {
        let (app, token, p) = (&app, cashier.token.clone(), p.clone());
        async move {
            let mut req = json!({"fulfilment": f, "lines": [{"product_id": p, "quantity": 1}]});
            if f == "delivery" {
                req["delivery_address"] = json!("1 Main St");
            }
            create_order(app, &token, req).await["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let step = |id: String, to: &'static str| {
        let (app, token) = (&app, staff.token.clone());
        async move {
            let r = app
                .post(
                    &format!("/api/v1/orders/{id}/transitions"),
                    Some(&token),
                    json!({"to": to}),
                )
                .await;
            assert_eq!(r.status(), StatusCode::OK, "{to}");
        }
    };
    let mut pending = Vec::new();
    for _ in 0..102 {
        pending.push(mk("pickup").await);
    }
    let confirmed = mk("delivery").await;
    step(confirmed.clone(), "confirmed").await;
    let delivered = mk("delivery").await;
    let completed = mk("pickup").await;
    let out = mk("delivery").await;
    for to in [
        "confirmed",
        "preparing",
        "ready",
        "out_for_delivery",
        "delivered",
    ] {
        step(delivered.clone(), to).await;
    }
    for to in ["confirmed", "preparing", "ready", "completed"] {
        step(completed.clone(), to).await;
    }
    for to in ["confirmed", "preparing", "ready", "out_for_delivery"] {
        step(out.clone(), to).await;
    }
    let cancelled = mk("pickup").await;
    step(cancelled.clone(), "cancelled").await;

    let b = get_ok(&app, "/api/v1/orders/board", &staff.token).await;
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
    assert_eq!(
        (
            cols["preparing"]["count"].as_i64(),
            cols["ready"]["count"].as_i64()
        ),
        (Some(0), Some(0))
    );
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

    get_ok(&app, "/api/v1/orders/board", &cashier.token).await;
    expect_error(
        app.get("/api/v1/orders/board", Some(&customer.token)).await,
        403,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn audit_log_is_listed_newest_first_for_managers() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let manager = app.user("manager").await;
    let p = insert_product(&app, "P", 1000, 0, 100).await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(
            create_order(
                &app,
                &cashier.token,
                json!({"fulfilment": "in_store", "lines": [{"product_id": p, "quantity": 1}]}),
            )
            .await,
        );
    }
    let o = orders[2]["id"].as_str().unwrap();
    let r = post_idem(
        &app,
        &format!("/api/v1/orders/{o}/payments"),
        &cashier.token,
        &new_key(),
        json!({"method": "cash", "amount_cents": 1000}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let all = get_ok(
        &app,
        &format!("/api/v1/audit?actor_id={}", cashier.id()),
        &manager.token,
    )
    .await;
    let actions: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
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

    let first = get_ok(
        &app,
        "/api/v1/audit?action=order.create&limit=2",
        &manager.token,
    )
    .await;
    let next = first["next_cursor"].as_str().unwrap();
    let rest = get_ok(
        &app,
        &format!("/api/v1/audit?action=order.create&limit=2&cursor={next}"),
        &manager.token,
    )
    .await;
    let walked: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .map(|e| e["entity_id"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = orders
        .iter()
        .rev()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(walked, want);
    assert_eq!(rest["next_cursor"], Value::Null);

    expect_error(
        app.get("/api/v1/audit", Some(&cashier.token)).await,
        403,
        "forbidden",
    )
    .await;
    expect_error(
        app.get("/api/v1/audit?actor_id=bob", Some(&manager.token))
            .await,
        422,
        "validation_failed",
    )
    .await;
    expect_error(
        app.get("/api/v1/audit?cursor=zzz", Some(&manager.token))
            .await,
        422,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn sales_report_counts_days_in_the_store_time_zone() {
    let app =
        TestApp::spawn_with(&Opts::new().await.set("STORE_TIMEZONE", "America/New_York")).await;
    let manager = app.user("manager").await;
    let cashier = app.user("cashier").await;
    let a = insert_product(&app, "A", 1000, 1000, 100).await;
    let b = insert_product(&app, "B", 500, 0, 100).await;
    let order = |lines: Value, discount: Option<Value>| {
        let (app, token) = (&app, manager.token.clone());
        async move {
            let mut req = json!({"fulfilment": "pickup", "lines": lines});
            if let Some(d) = discount {
                req["discount"] = d;
            }
            create_order(app, &token, req).await
        }
    };
    let l = |p: &str, q: i64| json!({"product_id": p, "quantity": q});
    // O1: 2000 + 200 tax, on Feb 28 in New York (04:30 UTC on Mar 1).
    let o1 = order(json!([l(&a, 2)]), None).await;
    // O2: 2000 − 200 discount (100 per line) + 90 tax, 00:30 Mar 1 in New York.
    let o2 = order(
        json!([l(&a, 1), l(&b, 2)]),
        Some(json!({"type": "amount", "amount_cents": 200})),
    )
    .await;
    // O3: cancelled, so it counts nowhere.
    let o3 = order(json!([l(&b, 1)]), None).await;
    // O4: 2000, Mar 3, unpaid.
    let o4 = order(json!([l(&b, 4)]), None).await;
    let id = |o: &Value| o["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (o1["total_cents"].as_i64(), o2["total_cents"].as_i64()),
        (Some(2200), Some(1890))
    );
    for (o, method, cents) in [(&o1, "cash", 2200), (&o2, "card", 1890), (&o3, "card", 500)] {
        let r = post_idem(
            &app,
            &format!("/api/v1/orders/{}/payments", id(o)),
            &cashier.token,
            &new_key(),
            json!({"method": method, "amount_cents": cents}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let r = post_idem(
        &app,
        &format!("/api/v1/orders/{}/refunds", id(&o2)),
        &manager.token,
        &new_key(),
        json!({"amount_cents": 300, "reason": "late"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .post(
            &format!("/api/v1/orders/{}/transitions", id(&o3)),
            Some(&manager.token),
            json!({"to": "cancelled"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    set_time(&app, "orders", &id(&o1), "2026-03-01T04:30:00Z").await;
    set_time(&app, "orders", &id(&o2), "2026-03-01T05:30:00Z").await;
    set_time(&app, "orders", &id(&o3), "2026-03-01T15:00:00Z").await;
    set_time(&app, "orders", &id(&o4), "2026-03-03T12:00:00Z").await;
    exec_sql(
        &app,
        "UPDATE payments SET created_at = '2026-03-01T04:40:00Z' WHERE order_id = $1::uuid",
        &id(&o1),
    )
    .await;
    exec_sql(
        &app,
        "UPDATE payments SET created_at = '2026-03-01T06:00:00Z' WHERE order_id <> $1::uuid",
        &id(&o1),
    )
    .await;
    exec_sql(
        &app,
        "UPDATE refunds SET created_at = '2026-03-02T16:00:00Z' WHERE order_id = $1::uuid",
        &id(&o2),
    )
    .await;

    let r = get_ok(
        &app,
        "/api/v1/reports/sales?from=2026-02-28&to=2026-03-03",
        &manager.token,
    )
    .await;
    let day = |date: &str, orders: i64, gross: i64, disc: i64, tax: i64, refunds: i64, net: i64| json!({"date": date, "orders": orders, "gross_cents": gross, "discount_cents": disc, "tax_cents": tax, "refunds_cents": refunds, "net_cents": net});
    assert_eq!(
        r["days"],
        json!([
            day("2026-02-28", 1, 2000, 0, 200, 0, 2200),
            day("2026-03-01", 1, 2000, 200, 90, 0, 1890),
            day("2026-03-02", 0, 0, 0, 0, 300, -300),
            day("2026-03-03", 1, 2000, 0, 0, 0, 2000),
        ])
    );
    let t = &r["totals"];
    assert_eq!(
        (
            t["orders"].as_i64(),
            t["gross_cents"].as_i64(),
            t["discount_cents"].as_i64(),
            t["tax_cents"].as_i64(),
            t["refunds_cents"].as_i64(),
            t["net_cents"].as_i64()
        ),
        (
            Some(3),
            Some(6000),
            Some(200),
            Some(290),
            Some(300),
            Some(5790)
        )
    );
    assert_eq!(
        r["by_payment_method"],
        json!({"cash": 2200, "card": 1890, "other": 0})
    );
    // Both earn 2900 (A: 2000 + 900, B: 900 + 2000); more units ranks first.
    assert_eq!(
        r["top_products"],
        json!([
            {"product_id": b, "name": "Product B", "quantity": 6, "revenue_cents": 2900},
            {"product_id": a, "name": "Product A", "quantity": 3, "revenue_cents": 2900},
        ])
    );

    // One local day: O1 (Mar 1 in UTC, Feb 28 in New York) is not in it.
    let r = get_ok(
        &app,
        "/api/v1/reports/sales?from=2026-03-01&to=2026-03-01",
        &manager.token,
    )
    .await;
    assert_eq!(
        r["days"],
        json!([day("2026-03-01", 1, 2000, 200, 90, 0, 1890)])
    );
    assert_eq!(r["by_payment_method"]["cash"], 0);

    for q in [
        "",
        "from=2026-03-01",
        "from=2026-03-01&to=tomorrow",
        "from=2026-03-02&to=2026-03-01",
        "from=2025-01-01&to=2026-01-02",
    ] {
        expect_error(
            app.get(&format!("/api/v1/reports/sales?{q}"), Some(&manager.token))
                .await,
            422,
            "validation_failed",
        )
        .await;
    }
    get_ok(
        &app,
        "/api/v1/reports/sales?from=2025-01-01&to=2026-01-01",
        &manager.token,
    )
    .await;
    expect_error(
        app.get(
            "/api/v1/reports/sales?from=2026-03-01&to=2026-03-01",
            Some(&cashier.token),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
}
