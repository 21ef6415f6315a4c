//! One `If-Match` reading for every versioned resource: products (PATCH) and orders
//! (transitions) accept the same spellings, including a list where any entry may match.

use reqwest::{Method, StatusCode};
use serde_json::json;
use till_test_support::*;

/// Products: a strong tag, then a list whose second (weak) entry is current.
#[tokio::test]
async fn products_accept_a_tag_and_a_list() {
    let app = TestApp::spawn().await;
    let mgr = app.user("manager").await;
    let id = insert_product(&app, "IFM-1", 100, 0, 5).await;
    let path = format!("/api/v1/products/{id}");
    let patch = |tag: &'static str, price: i64| {
        app.req(Method::PATCH, &path)
            .bearer_auth(&mgr.token)
            .header("If-Match", tag)
            .json(&json!({"price_cents": price}))
            .send()
    };
    let r = patch("\"1\"", 200).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"2\"");
    let r = patch("\"1\", W/\"2\"", 300).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"3\"");
    expect_error(
        patch("\"1\", \"2\"", 400).await.unwrap(),
        412,
        "precondition_failed",
    )
    .await;
}

/// Orders: the same spellings on a transition.
#[tokio::test]
async fn order_transitions_accept_a_tag_and_a_list() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let p = insert_product(&app, "IFM-2", 100, 0, 10).await;
    let o = create_order(
        &app,
        &cashier.token,
        json!({"fulfilment": "pickup", "lines": [{"product_id": p, "quantity": 1}]}),
    )
    .await;
    let path = format!("/api/v1/orders/{}/transitions", o["id"].as_str().unwrap());
    let send = |tag: &'static str, to: &'static str| {
        app.req(Method::POST, &path)
            .bearer_auth(&cashier.token)
            .header("If-Match", tag)
            .json(&json!({"to": to}))
            .send()
    };
    let r = send("\"1\"", "confirmed").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"2\"");
    let r = send("\"1\", W/\"2\"", "preparing").await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "a list matches when any entry does"
    );
    assert_eq!(r.headers()["etag"], "\"3\"");
    expect_error(
        send("\"1\", \"2\"", "ready").await.unwrap(),
        412,
        "precondition_failed",
    )
    .await;
}
