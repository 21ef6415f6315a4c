//! Receipts: the store's details, exact money, lines that never exceed the paper (32 or 48
//! characters), COPY on every receipt after the first, and customers reading only their own.

use serde_json::json;
use till_test_support::*;

async fn spawn() -> TestApp {
    let opts = Opts::new()
        .await
        .set("STORE_NAME", "Corner Grocer")
        .set("STORE_ADDRESS", "12 Long Street|Springfield 4021")
        .set("STORE_TAX_ID", "VAT GB123456789")
        .set("STORE_TIMEZONE", "Pacific/Auckland");
    TestApp::spawn_with(&opts).await
}

fn receipt_path(order: &serde_json::Value) -> String {
    format!("/api/v1/orders/{}/receipt", order["id"].as_str().unwrap())
}

async fn receipt(c: &Client, order: &serde_json::Value, query: &[(&str, &str)]) -> Resp {
    c.get(&receipt_path(order)).query(query).await
}

fn text_of(r: Resp) -> String {
    assert_eq!(r.status(), 200, "{:?}", r.body);
    r.body.as_str().expect("a text body").to_owned()
}

#[tokio::test]
async fn receipt_text_fits_the_paper_has_exact_money_and_the_second_one_says_copy() {
    let app = spawn().await;
    let cashier = app.as_cashier().await;
    let long = insert_product(&app, "LONG", 123_456, 825, 10).await;
    exec_sql(
        &app,
        "UPDATE products SET name = 'Extra virgin cold-pressed olive oil from the hills of Andalusia, 5 litre tin' WHERE id = $1::uuid",
        &long,
    )
    .await;
    let tea = insert_product(&app, "TEA", 350, 1000, 10).await;
    // 2 × 1,234.56 + 3 × 3.50 = 2,479.62; 10 % off = 247.96 → 2,231.66; tax by line.
    let order = cashier
        .create_order(
            OrderBuilder::pos()
                .line(&long, 2)
                .line(&tea, 3)
                .percent_off(1000),
        )
        .await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(order["receipt_count"], 0);
    let total = order["total_cents"].as_i64().unwrap();
    cashier
        .pay(
            id,
            json!({"method": "cash", "amount_cents": total, "tendered_cents": total + 2_000}),
        )
        .await
        .expect_status(201);

    let first = text_of(receipt(&cashier, &order, &[("format", "text"), ("width", "58")]).await);
    for line in first.lines() {
        assert!(line.chars().count() <= 32, "{line:?} is wider than 32");
    }
    assert!(
        first.lines().any(|l| l.chars().count() == 32),
        "amount lines use the full width"
    );
    for want in [
        "Corner Grocer",
        "12 Long Street",
        "Springfield 4021",
        "Tax ID: VAT GB123456789",
        &format!("Order #{}", order["number"].as_str().unwrap()),
        "2,469.12", // 2 × 1,234.56
        "10.50",    // 3 × 3.50
        "@ 1,234.56",
        "-247.96", // the discount
        "Tax 8.25%",
        "Tax 10%",
        "TOTAL USD",
        "Tendered",
        "20.00", // change
    ] {
        assert!(first.contains(want), "{want:?} missing from\n{first}");
    }
    let total_line = first.lines().find(|l| l.starts_with("TOTAL USD")).unwrap();
    let cents = |c: i64| format!("{},{:03}.{:02}", c / 100_000, (c / 100) % 1000, c % 100);
    assert!(
        total_line.ends_with(&cents(total)),
        "{total_line:?} vs {total}"
    );
    assert!(!first.contains("COPY"));
    // Times are in STORE_TIMEZONE.
    let at = chrono::DateTime::parse_from_rfc3339(order["created_at"].as_str().unwrap()).unwrap();
    let local = at
        .with_timezone(&chrono_tz::Pacific::Auckland)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    assert!(first.contains(&local), "{local} missing from\n{first}");

    let second = text_of(receipt(&cashier, &order, &[("format", "text"), ("width", "80")]).await);
    for line in second.lines() {
        assert!(line.chars().count() <= 48, "{line:?} is wider than 48");
    }
    assert!(second.lines().any(|l| l.chars().count() == 48));
    assert!(second.contains("*** COPY ***"), "{second}");

    // The till prints the HTML one: same content, escaped, also a copy now.
    let html = receipt(&cashier, &order, &[]).await;
    assert_eq!(html.status(), 200);
    assert_eq!(html.header("content-type"), "text/html; charset=utf-8");
    let page = html.body.as_str().unwrap();
    assert!(
        page.contains("*** COPY ***")
            && page.contains("Corner Grocer")
            && page.contains("width:48ch")
    );
    let o = cashier
        .get(&format!("/api/v1/orders/{id}"))
        .await
        .expect_json(200);
    assert_eq!(o["receipt_count"], 3);
    assert_eq!(
        o["version"],
        order["version"].as_i64().unwrap() + 1,
        "only the payment changed the order"
    );

    receipt(&cashier, &order, &[("width", "57")])
        .await
        .expect_invalid(&["width"]);
    receipt(&cashier, &order, &[("format", "pdf")])
        .await
        .expect_invalid(&["format"]);
    assert_eq!(audit_count(&app, "order.receipt").await, 3);
}

#[tokio::test]
async fn a_customer_reads_their_own_receipt_and_never_another_customers() {
    let app = spawn().await;
    let p = insert_product(&app, "BREAD", 450, 0, 10).await;
    let alice = app.register_customer("alice@example.com").await;
    let bob = app.register_customer("bob@example.com").await;
    let order = alice.create_order(OrderBuilder::pickup().line(&p, 1)).await;

    receipt(&bob, &order, &[("format", "text")])
        .await
        .expect_error(404, "not_found");
    receipt(&app.anon(), &order, &[])
        .await
        .expect_error(401, "unauthorized");
    let staff = app.as_staff().await;
    receipt(&staff, &order, &[])
        .await
        .expect_error(403, "forbidden");
    let ghost = json!({"id": uuid::Uuid::now_v7()});
    receipt(&alice, &ghost, &[])
        .await
        .expect_error(404, "not_found");

    let mine = text_of(receipt(&alice, &order, &[("format", "text")]).await);
    assert!(mine.contains("Balance due") && mine.contains("4.50") && !mine.contains("COPY"));
    let o = alice
        .get(&format!("/api/v1/orders/{}", order["id"].as_str().unwrap()))
        .await
        .expect_json(200);
    assert_eq!(o["receipt_count"], 1, "the refused reads issued nothing");
    let copy = text_of(receipt(&app.as_cashier().await, &order, &[("format", "text")]).await);
    assert!(copy.contains("COPY"));
}
