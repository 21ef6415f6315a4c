//! Database fixtures and reads for what the API does not show (stock, counts, audit entries),
//! plus the raw order helpers older tests use.

use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use sqlx::AssertSqlSafe;

use crate::app::TestApp;
use crate::builders::ProductBuilder;
use crate::client::{body, new_key};

/// Inserts an active, stock-tracked product and returns its id.
pub async fn insert_product(
    app: &TestApp,
    sku: &str,
    price_cents: i64,
    tax_rate_bp: i32,
    stock: i64,
) -> String {
    ProductBuilder::new(sku)
        .price(price_cents)
        .tax_bp(tax_rate_bp)
        .stock(stock)
        .insert(app)
        .await
}

/// Runs fixture SQL with one text parameter bound as `$1` (e.g. a product id).
pub async fn exec_sql(app: &TestApp, sql: &str, arg: &str) {
    sqlx::query(AssertSqlSafe(sql))
        .bind(arg)
        .execute(&app.state.db.write)
        .await
        .expect("fixture sql");
}

/// A product's stock on hand.
pub async fn stock_of(app: &TestApp, product_id: &str) -> i64 {
    sqlx::query_scalar("SELECT stock_on_hand FROM products WHERE id = $1::uuid")
        .bind(product_id)
        .fetch_one(&app.state.db.write)
        .await
        .expect("stock_of")
}

/// One `count(*)`-style number, with one text parameter bound as `$1` (`""` when unused).
pub async fn count(app: &TestApp, sql: &str, arg: &str) -> i64 {
    let q = sqlx::query_scalar(AssertSqlSafe(sql));
    let q = if sql.contains("$1") { q.bind(arg) } else { q };
    q.fetch_one(&app.state.db.write).await.expect("count")
}

/// How many audit entries have `action`.
pub async fn audit_count(app: &TestApp, action: &str) -> i64 {
    count(
        app,
        "SELECT count(*) FROM audit_log WHERE action = $1",
        action,
    )
    .await
}

/// POST with a bearer token and an Idempotency-Key.
pub async fn post_idem(app: &TestApp, path: &str, token: &str, key: &str, body: Value) -> Response {
    app.req(Method::POST, path)
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Creates an order (fresh key) and returns the 201 body; panics on anything else.
pub async fn create_order(app: &TestApp, token: &str, body: Value) -> Value {
    let (s, v) = self::body(post_idem(app, "/api/v1/orders", token, &new_key(), body).await).await;
    assert_eq!(s, StatusCode::CREATED, "create order: {v}");
    v
}
