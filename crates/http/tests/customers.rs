//! Customers over HTTP: phone normalisation, exact look-up, duplicates, who may read what.

use reqwest::StatusCode;
use serde_json::{json, Value};
use till_test_support::*;

async fn create(app: &TestApp, token: &str, name: &str, phone: &str) -> (StatusCode, Value) {
    body(
        app.post(
            "/api/v1/customers",
            Some(token),
            json!({"name": name, "phone": phone}),
        )
        .await,
    )
    .await
}

async fn find(app: &TestApp, token: &str, phone: &str) -> (StatusCode, Value) {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v1/customers", app.url),
        &[("phone", phone)],
    )
    .unwrap();
    body(app.http.get(url).bearer_auth(token).send().await.unwrap()).await
}

#[tokio::test]
async fn phones_are_normalised_and_found_however_typed() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;

    let resp = app
        .post(
            "/api/v1/customers",
            Some(&cashier.token),
            json!({"name": " Ada Lovelace ", "phone": "+1 (415) 555-0100", "email": "Ada@Example.com"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let (_, ada) = body(resp).await;
    assert_eq!(ada["phone"], "+14155550100");
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(ada["email"], "ada@example.com");
    assert_eq!(
        location,
        format!("/api/v1/customers/{}", ada["id"].as_str().unwrap())
    );
    for k in ["id", "name", "phone", "email", "created_at"] {
        assert!(ada.get(k).is_some(), "{k}");
    }

    let (s, uk) = create(&app, &cashier.token, "Alan Turing", "0044 20 7946 0958").await;
    assert_eq!(s, StatusCode::CREATED, "{uk}");
    assert_eq!(uk["phone"], "+442079460958");
    assert_eq!(uk["email"], Value::Null);

    for typed in [
        "415.555.0100",
        "(415) 555-0100",
        "+14155550100",
        "001 415 555 0100",
    ] {
        let (s, v) = find(&app, &cashier.token, typed).await;
        assert_eq!(s, StatusCode::OK, "{typed}");
        assert_eq!(v["items"].as_array().unwrap().len(), 1, "{typed}: {v}");
        assert_eq!(v["items"][0]["id"], ada["id"]);
    }
    let (_, v) = find(&app, &cashier.token, "+44 20 7946 0958").await;
    assert_eq!(v["items"][0]["id"], uk["id"]);
    let (s, v) = find(&app, &cashier.token, "415 555 0199").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"], json!([]), "no partial matches");

    // Same number typed differently is a duplicate.
    let (s, v) = create(&app, &cashier.token, "Someone Else", "415.555.0100").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "already_exists");
    assert_eq!(v["error"]["details"]["field"], "phone");

    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'customer.create'")
            .fetch_one(&app.state.db.write)
            .await
            .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn invalid_input_is_422() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    for bad in [
        "12345",
        "call me",
        "+1 555 0100",
        "",
        "   ",
        "+1234567890123456",
        "415/555/0100",
    ] {
        let e = expect_error(
            app.post(
                "/api/v1/customers",
                Some(&cashier.token),
                json!({"name": "X", "phone": bad}),
            )
            .await,
            422,
            "validation_failed",
        )
        .await;
        assert!(
            e["error"]["details"]["fields"]["phone"].is_array(),
            "{bad}: {e}"
        );
    }
    let e = expect_error(
        app.post(
            "/api/v1/customers",
            Some(&cashier.token),
            json!({"name": "", "phone": "4155550100", "email": "nope"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(e["error"]["details"]["fields"]["name"].is_array());
    assert!(e["error"]["details"]["fields"]["email"].is_array());
    let e = expect_error(
        app.post(
            "/api/v1/customers",
            Some(&cashier.token),
            json!({"name": "X"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(e["error"]["details"]["fields"]["phone"][0], "is required");

    expect_error(
        app.get("/api/v1/customers", Some(&cashier.token)).await,
        422,
        "validation_failed",
    )
    .await;
    let (s, e) = find(&app, &cashier.token, "not a phone").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e["error"]["details"]["fields"]["phone"].is_array());
}

#[tokio::test]
async fn roles_and_own_record_only() {
    let app = TestApp::spawn().await;
    let cashier = app.user("cashier").await;
    let staff = app.user("staff").await;
    let mgr = app.user("manager").await;

    let (s, other) = create(&app, &mgr.token, "Grace Hopper", "+1 415 555 0111").await;
    assert_eq!(s, StatusCode::CREATED);
    expect_error(
        app.post(
            "/api/v1/customers",
            Some(&staff.token),
            json!({"name": "S", "phone": "4155550112"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    expect_error(
        app.post(
            "/api/v1/customers",
            None,
            json!({"name": "S", "phone": "4155550112"}),
        )
        .await,
        401,
        "unauthorized",
    )
    .await;

    // Staff may look up and read.
    let (s, v) = find(&app, &staff.token, "4155550111").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["items"][0]["id"], other["id"]);
    let other_path = format!("/api/v1/customers/{}", other["id"].as_str().unwrap());
    for t in [&staff.token, &cashier.token, &mgr.token] {
        let (s, v) = body(app.get(&other_path, Some(t)).await).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["id"], other["id"]);
    }

    // A registered customer reads their own record, and nobody else's.
    let (s, reg) = body(
        app.post(
            "/api/v1/auth/register",
            None,
            json!({"email": "shopper@test.local", "password": "password-123", "name": "Shopper", "phone": "415-555-0122"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{reg}");
    let me = app.login("shopper@test.local", "password-123").await;
    let own = format!(
        "/api/v1/customers/{}",
        me.user["customer_id"].as_str().unwrap()
    );
    let (s, v) = body(app.get(&own, Some(&me.token)).await).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["phone"], "+14155550122");
    expect_error(
        app.get(&other_path, Some(&me.token)).await,
        404,
        "not_found",
    )
    .await;
    let (s, _) = find(&app, &me.token, "4155550111").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    expect_error(app.get(&other_path, None).await, 401, "unauthorized").await;
    let missing = format!("/api/v1/customers/{}", uuid::Uuid::now_v7());
    expect_error(app.get(&missing, Some(&mgr.token)).await, 404, "not_found").await;
}
