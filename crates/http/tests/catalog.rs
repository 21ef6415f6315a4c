//! Categories and products over HTTP: validation, roles, pagination, search, optimistic
//! concurrency, soft delete, and the cache (cross-instance invalidation, single-flight).

mod common;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn product(sku: &str, name: &str, price: i64) -> Value {
    json!({"sku": sku, "name": name, "price_cents": price, "tax_rate_bp": 825})
}

async fn create_product(app: &TestApp, token: &str, payload: Value) -> Value {
    let (s, v) = body(app.post("/api/v1/products", Some(token), payload).await).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

async fn get_json(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    body(app.get(path, token).await).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.req(Method::DELETE, path)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn categories_list_create_duplicate_and_roles() {
    let app = TestApp::spawn().await;
    let mgr = app.user("manager").await;
    let cashier = app.user("cashier").await;

    let (s, v) = get_json(&app, "/api/v1/categories", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"items": []}));

    let (s, c) = body(
        app.post(
            "/api/v1/categories",
            Some(&mgr.token),
            json!({"name": "  Hot Drinks & Tea "}),
        )
        .await,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(c["name"], "Hot Drinks & Tea");
    assert_eq!(c["slug"], "hot-drinks-tea");
    assert!(c["id"].is_string());

    // Same slug from a differently written name.
    let e = expect_error(
        app.post(
            "/api/v1/categories",
            Some(&mgr.token),
            json!({"name": "hot drinks tea"}),
        )
        .await,
        409,
        "already_exists",
    )
    .await;
    assert_eq!(e["error"]["details"]["slug"], "hot-drinks-tea");
    let e = expect_error(
        app.post(
            "/api/v1/categories",
            Some(&mgr.token),
            json!({"name": "☕"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(e["error"]["details"]["fields"]["name"].is_array());
    expect_error(
        app.post(
            "/api/v1/categories",
            Some(&mgr.token),
            json!({"name": "  "}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    expect_error(
        app.post(
            "/api/v1/categories",
            Some(&cashier.token),
            json!({"name": "Bakery"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    expect_error(
        app.post("/api/v1/categories", None, json!({"name": "Bakery"}))
            .await,
        401,
        "unauthorized",
    )
    .await;

    let (_, c2) = body(
        app.post(
            "/api/v1/categories",
            Some(&mgr.token),
            json!({"name": "Bakery"}),
        )
        .await,
    )
    .await;
    let (_, v) = get_json(&app, "/api/v1/categories", None).await;
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{v}");
    assert_eq!(items[0]["id"], c2["id"], "ordered by name");
    assert_eq!(
        items[0],
        json!({"id": c2["id"], "name": "Bakery", "slug": "bakery"})
    );

    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'category.create'")
            .fetch_one(&app.state.db.write)
            .await
            .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn create_product_defaults_location_etag_and_audit() {
    let app = TestApp::spawn().await;
    let mgr = app.user("manager").await;
    let (_, cat) = body(
        app.post(
            "/api/v1/categories",
            Some(&mgr.token),
            json!({"name": "Coffee"}),
        )
        .await,
    )
    .await;
    let resp = app
        .post(
            "/api/v1/products",
            Some(&mgr.token),
            json!({"sku": "COF-1", "barcode": "4006381333931", "name": "  House Blend 250 g ", "price_cents": 1299,
                   "tax_rate_bp": 0, "category_id": cat["id"], "description": "Chocolate, nutty."}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let (_, p) = body(resp).await;
    assert_eq!(etag, "\"1\"");
    let location = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
    assert_eq!(p["name"], "House Blend 250 g");
    assert_eq!(p["version"], 1);
    assert_eq!(p["stock_on_hand"], 0);
    assert_eq!(p["track_stock"], true);
    assert_eq!(p["low_stock_threshold"], 0);
    assert_eq!(p["active"], true);
    assert_eq!(p["category_id"], cat["id"]);
    for k in [
        "id",
        "sku",
        "barcode",
        "name",
        "description",
        "category_id",
        "price_cents",
        "tax_rate_bp",
        "active",
        "track_stock",
        "stock_on_hand",
        "low_stock_threshold",
        "version",
        "created_at",
        "updated_at",
    ] {
        assert!(p.get(k).is_some(), "missing {k}: {p}");
    }

    let resp = app.get(&location, None).await;
    assert_eq!(resp.headers()["etag"], "\"1\"");
    let (s, got) = body(resp).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, p);

    // Minimal body: optional fields default.
    let p2 = create_product(&app, &mgr.token, product("TEA-1", "Green Tea", 450)).await;
    assert_eq!(p2["barcode"], Value::Null);
    assert_eq!(p2["description"], "");
    assert_eq!(p2["category_id"], Value::Null);

    let (action, data): (String, Value) =
        sqlx::query_as("SELECT action, data FROM audit_log WHERE entity_id = $1")
            .bind(p["id"].as_str().unwrap())
            .fetch_one(&app.state.db.write)
            .await
            .unwrap();
    assert_eq!(action, "product.create");
    assert_eq!(data["sku"], "COF-1");
}

#[tokio::test]
async fn create_product_validation_conflicts_and_roles() {
    let app = TestApp::spawn().await;
    let mgr = app.user("manager").await;
    let cashier = app.user("cashier").await;

    let e = expect_error(
        app.post(
            "/api/v1/products",
            Some(&mgr.token),
            json!({"sku": "bad sku!", "barcode": "has space", "name": "", "price_cents": -1, "tax_rate_bp": 10001,
                   "low_stock_threshold": -2, "stock_on_hand": 5}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    let fields = &e["error"]["details"]["fields"];
    for f in [
        "sku",
        "barcode",
        "name",
        "price_cents",
        "tax_rate_bp",
        "low_stock_threshold",
        "stock_on_hand",
    ] {
        assert!(fields[f].is_array(), "{f} not reported: {e}");
    }
    let e = expect_error(
        app.post("/api/v1/products", Some(&mgr.token), json!({}))
            .await,
        422,
        "validation_failed",
    )
    .await;
    let fields = &e["error"]["details"]["fields"];
    for f in ["sku", "name", "price_cents", "tax_rate_bp"] {
        assert_eq!(fields[f][0], "is required", "{e}");
    }
    // Floats for money are rejected; unknown fields too.
    let e = expect_error(
        app.post(
            "/api/v1/products",
            Some(&mgr.token),
            json!({"sku": "A", "name": "A", "price_cents": 1.5, "tax_rate_bp": 0}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(
        e["error"]["details"]["fields"]["price_cents"].is_array(),
        "{e}"
    );
    expect_error(
        app.post(
            "/api/v1/products",
            Some(&mgr.token),
            json!({"sku": "A", "name": "A", "price_cents": 1, "tax_rate_bp": 0, "colour": "red"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    let e = expect_error(
        app.post(
            "/api/v1/products",
            Some(&mgr.token),
            json!({"sku": "A", "name": "A", "price_cents": 1, "tax_rate_bp": 0, "category_id": uuid::Uuid::now_v7()}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(e["error"]["details"]["fields"]["category_id"].is_array());

    create_product(&app, &mgr.token, json!({"sku": "DUP-1", "barcode": "111", "name": "One", "price_cents": 1, "tax_rate_bp": 0})).await;
    let e = expect_error(
        app.post(
            "/api/v1/products",
            Some(&mgr.token),
            product("DUP-1", "Two", 1),
        )
        .await,
        409,
        "already_exists",
    )
    .await;
    assert_eq!(e["error"]["details"]["field"], "sku");
    let e = expect_error(
        app.post("/api/v1/products", Some(&mgr.token), json!({"sku": "DUP-2", "barcode": "111", "name": "Two", "price_cents": 1, "tax_rate_bp": 0}))
            .await,
        409,
        "already_exists",
    )
    .await;
    assert_eq!(e["error"]["details"]["field"], "barcode");

    expect_error(
        app.post(
            "/api/v1/products",
            Some(&cashier.token),
            product("C-1", "C", 1),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    expect_error(
        app.post("/api/v1/products", None, product("C-1", "C", 1))
            .await,
        401,
        "unauthorized",
    )
    .await;
    let r = app
        .req(Method::POST, "/api/v1/products")
        .bearer_auth(&mgr.token)
        .body("sku=1")
        .send()
        .await
        .unwrap();
    expect_error(r, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn pagination_walk_survives_concurrent_inserts() {
    let app = TestApp::spawn().await;
    let mgr = app.user("manager").await;
    let mut before = HashSet::new();
    for i in 0..30 {
        let p = create_product(
            &app,
            &mgr.token,
            product(&format!("P-{i:02}"), &format!("Item {i:02}"), 100),
        )
        .await;
        before.insert(p["id"].as_str().unwrap().to_owned());
    }
    // Same names sort by id.
    for i in 0..3 {
        let p = create_product(
            &app,
            &mgr.token,
            product(&format!("SAME-{i}"), "Item 10", 100),
        )
        .await;
        before.insert(p["id"].as_str().unwrap().to_owned());
    }
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut page_no = 0;
    loop {
        let path = match &cursor {
            None => "/api/v1/products?limit=7".to_owned(),
            Some(c) => format!("/api/v1/products?limit=7&cursor={c}"),
        };
        let (s, page) = get_json(&app, &path, None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 7);
        let ns = names(&page);
        let mut sorted = ns.clone();
        sorted.sort();
        assert_eq!(ns, sorted, "page is ordered by name");
        seen.extend(items.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        // Insert rows before, inside and after the walk's position while it runs.
        for (j, n) in ["AAA first", "Item 05b", "Item 10", "Item 21x", "ZZZ last"]
            .iter()
            .enumerate()
        {
            create_product(
                &app,
                &mgr.token,
                product(&format!("NEW-{page_no}-{j}"), n, 1),
            )
            .await;
        }
        page_no += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(page_no < 100, "walk does not end");
    }
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a row was repeated");
    assert!(
        before.is_subset(&unique),
        "a row that existed before the walk was skipped"
    );

    expect_error(
        app.get("/api/v1/products?limit=0", None).await,
        422,
        "validation_failed",
    )
    .await;
    expect_error(
        app.get("/api/v1/products?limit=101", None).await,
        422,
        "validation_failed",
    )
    .await;
    expect_error(
        app.get("/api/v1/products?cursor=garbage", None).await,
        422,
        "validation_failed",
    )
    .await;
    expect_error(
        app.get("/api/v1/products?category_id=nope", None).await,
        422,
        "validation_failed",
    )
    .await;
    let (_, page) = get_json(&app, "/api/v1/products", None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 20, "default limit");
}

#[tokio::test]
async fn search_by_name_sku_barcode_and_category_filter() {
    let app = TestApp::spawn().await;
    let mgr = app.user("manager").await;
    let (_, coffee) = body(
        app.post(
            "/api/v1/categories",
            Some(&mgr.token),
            json!({"name": "Coffee"}),
        )
        .await,
    )
    .await;
    let coffee_id = coffee["id"].clone();
    for (sku, barcode, name, in_coffee) in [
        ("COF-001", "2000000000015", "Colombia Coffee Beans", true),
        ("COF-002", "2000000000022", "Decaf COFFEE Ground", true),
        ("BAK-001", "2000000000039", "Coffee Cake", false),
        ("MLK-001", "2000000000046", "Oat Milk", false),
        ("PCT-001", "2000000000053", "50% Dark Chocolate", false),
        ("PCT-002", "2000000000060", "500 g Flour", false),
        ("UND-001", "2000000000077", "Snake_case Snack", false),
        ("UND-002", "2000000000084", "Snakescase Snack", false),
        ("CAF-001", "2000000000091", "Café Crème", false),
    ] {
        let category = if in_coffee {
            coffee_id.clone()
        } else {
            Value::Null
        };
        create_product(
            &app,
            &mgr.token,
            json!({"sku": sku, "barcode": barcode, "name": name, "price_cents": 500,
                   "tax_rate_bp": 0, "category_id": category}),
        )
        .await;
    }

    let search = |q: &str| {
        let q = q.to_owned();
        let app = &app;
        async move {
            let url = reqwest::Url::parse_with_params(
                &format!("{}/api/v1/products", app.url),
                &[("q", q.as_str())],
            )
            .unwrap();
            let (s, v) = body(app.http.get(url).send().await.unwrap()).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            names(&v)
        }
    };
    assert_eq!(
        search("coffee").await,
        vec![
            "Coffee Cake",
            "Colombia Coffee Beans",
            "Decaf COFFEE Ground"
        ]
    );
    assert_eq!(
        search("  cOfFeE ").await,
        vec![
            "Coffee Cake",
            "Colombia Coffee Beans",
            "Decaf COFFEE Ground"
        ]
    );
    assert_eq!(search("MLK-001").await, vec!["Oat Milk"]);
    assert_eq!(
        search("mlk-001").await,
        Vec::<String>::new(),
        "SKU match is exact"
    );
    assert_eq!(search("2000000000039").await, vec!["Coffee Cake"]);
    // Wildcards are literal.
    assert_eq!(search("50%").await, vec!["50% Dark Chocolate"]);
    assert_eq!(search("e_c").await, vec!["Snake_case Snack"]);
    // Short queries (no trigram) still match anywhere in the name.
    assert_eq!(
        search("ak").await,
        vec!["Coffee Cake", "Snake_case Snack", "Snakescase Snack"]
    );
    assert_eq!(search("%").await, vec!["50% Dark Chocolate"]);
    assert_eq!(search("zz").await, Vec::<String>::new());
    assert_eq!(search("É").await, vec!["Café Crème"]);
    assert_eq!(search("x").await, Vec::<String>::new());
    assert_eq!(search("CAFÉ").await, vec!["Café Crème"]);

    let (_, v) = get_json(
        &app,
        &format!(
            "/api/v1/products?category_id={}",
            coffee["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(
        names(&v),
        vec!["Colombia Coffee Beans", "Decaf COFFEE Ground"]
    );
    let (_, v) = get_json(
        &app,
        &format!(
            "/api/v1/products?category_id={}&q=decaf",
            coffee["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(names(&v), vec!["Decaf COFFEE Ground"]);

    // Search pages too.
    let (_, v) = get_json(&app, "/api/v1/products?q=coffee&limit=2", None).await;
    assert_eq!(names(&v), vec!["Coffee Cake", "Colombia Coffee Beans"]);
    let c = v["next_cursor"].as_str().unwrap();
    let (_, v) = get_json(
        &app,
        &format!("/api/v1/products?q=coffee&limit=2&cursor={c}"),
        None,
    )
    .await;
    assert_eq!(names(&v), vec!["Decaf COFFEE Ground"]);
    assert_eq!(v["next_cursor"], Value::Null);
}

#[tokio::test]
async fn lookup_by_barcode_or_sku() {
    let app = TestApp::spawn().await;
    let mgr = app.user("manager").await;
    let cashier = app.user("cashier").await;
    let p = create_product(
        &app,
        &mgr.token,
        json!({"sku": "MILK-1L", "barcode": "5012345678900", "name": "Milk 1 L", "price_cents": 129, "tax_rate_bp": 0}),
    )
    .await;
    let r = app
        .get(
            "/api/v1/products/lookup?code=5012345678900",
            Some(&cashier.token),
        )
        .await;
    assert_eq!(r.headers()["etag"], "\"1\"");
    let (s, v) = body(r).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["id"], p["id"]);
    let (_, v) = get_json(&app, "/api/v1/products/lookup?code=MILK-1L", None).await;
    assert_eq!(v["id"], p["id"]);
    expect_error(
        app.get("/api/v1/products/lookup?code=milk-1l", None).await,
        404,
        "not_found",
    )
    .await;
    expect_error(
        app.get("/api/v1/products/lookup?code=0000000000000", None)
            .await,
        404,
        "not_found",
    )
    .await;
    expect_error(
        app.get("/api/v1/products/lookup?code=has%20space", None)
            .await,
        404,
        "not_found",
    )
    .await;
    expect_error(
        app.get("/api/v1/products/lookup", None).await,
        422,
        "validation_failed",
    )
    .await;
    expect_error(
        app.get("/api/v1/products/lookup?code=", None).await,
        422,
        "validation_failed",
    )
    .await;

    // Inactive: managers still find it, the till does not.
    let r = delete(
        &app,
        &format!("/api/v1/products/{}", p["id"].as_str().unwrap()),
        &mgr.token,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.get(
            "/api/v1/products/lookup?code=5012345678900",
            Some(&cashier.token),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let (s, v) = get_json(
        &app,
        "/api/v1/products/lookup?code=5012345678900",
        Some(&mgr.token),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["active"], false);
}

#[tokio::test]
async fn patch_is_partial_versioned_and_honours_if_match() {
    let app = TestApp::spawn().await;
    let mgr = app.user("manager").await;
    let p = create_product(
        &app,
        &mgr.token,
        json!({"sku": "LAT-1", "barcode": "123", "name": "Latte", "price_cents": 450, "tax_rate_bp": 825}),
    )
    .await;
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());

    let r = app
        .patch(&path, Some(&mgr.token), json!({"price_cents": 475}))
        .await;
    assert_eq!(r.headers()["etag"], "\"2\"");
    let (s, v) = body(r).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["price_cents"], 475);
    assert_eq!(v["version"], 2);
    assert_eq!(v["name"], "Latte", "untouched");
    assert_eq!(v["barcode"], "123", "untouched");

    // Stale If-Match → 412 and nothing changes; current → 200.
    let r = app
        .req(Method::PATCH, &path)
        .bearer_auth(&mgr.token)
        .header("if-match", "\"1\"")
        .json(&json!({"price_cents": 1}))
        .send()
        .await
        .unwrap();
    let e = expect_error(r, 412, "precondition_failed").await;
    assert_eq!(e["error"]["details"]["current_version"], 2);
    let (_, v) = get_json(&app, &path, None).await;
    assert_eq!(v["price_cents"], 475);
    let r = app
        .req(Method::PATCH, &path)
        .bearer_auth(&mgr.token)
        .header("if-match", "\"2\"")
        .json(&json!({"name": "Caffè Latte", "barcode": null, "low_stock_threshold": 3}))
        .send()
        .await
        .unwrap();
    let (s, v) = body(r).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["version"], 3);
    assert_eq!(v["name"], "Caffè Latte");
    assert_eq!(v["barcode"], Value::Null);
    assert_eq!(v["low_stock_threshold"], 3);
    // `version` in the body is a precondition too.
    expect_error(
        app.patch(
            &path,
            Some(&mgr.token),
            json!({"version": 2, "price_cents": 1}),
        )
        .await,
        412,
        "precondition_failed",
    )
    .await;

    let e = expect_error(
        app.patch(&path, Some(&mgr.token), json!({"stock_on_hand": 99}))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(e["error"]["details"]["fields"]["stock_on_hand"].is_array());
    let e = expect_error(
        app.patch(
            &path,
            Some(&mgr.token),
            json!({"tax_rate_bp": -1, "sku": ""}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert!(e["error"]["details"]["fields"]["tax_rate_bp"].is_array());
    assert!(e["error"]["details"]["fields"]["sku"].is_array());
    expect_error(
        app.patch(
            &path,
            Some(&mgr.token),
            json!({"category_id": uuid::Uuid::now_v7()}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    create_product(&app, &mgr.token, product("OTHER", "Other", 1)).await;
    expect_error(
        app.patch(&path, Some(&mgr.token), json!({"sku": "OTHER"}))
            .await,
        409,
        "already_exists",
    )
    .await;
    let (_, v) = get_json(&app, &path, None).await;
    assert_eq!(v["version"], 3, "failed writes change nothing");

    let cashier = app.user("cashier").await;
    expect_error(
        app.patch(&path, Some(&cashier.token), json!({"price_cents": 1}))
            .await,
        403,
        "forbidden",
    )
    .await;
    let missing = format!("/api/v1/products/{}", uuid::Uuid::now_v7());
    expect_error(
        app.patch(&missing, Some(&mgr.token), json!({"price_cents": 1}))
            .await,
        404,
        "not_found",
    )
    .await;

    let (data,): (Value,) = sqlx::query_as(
        "SELECT data FROM audit_log WHERE action = 'product.update' ORDER BY at LIMIT 1",
    )
    .fetch_one(&app.state.db.write)
    .await
    .unwrap();
    assert_eq!(data["changes"]["price_cents"], json!([450, 475]), "{data}");
}

#[tokio::test]
async fn delete_deactivates_and_hides_from_the_public() {
    let app = TestApp::spawn().await;
    let mgr = app.user("manager").await;
    let customer = app.user("customer").await;
    let cashier = app.user("cashier").await;
    let p = create_product(&app, &mgr.token, product("OLD-1", "Discontinued Mug", 900)).await;
    create_product(&app, &mgr.token, product("NEW-1", "New Mug", 900)).await;
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
    // Warm the caches, so the delete must invalidate them.
    let (s, _) = get_json(&app, &path, None).await;
    assert_eq!(s, StatusCode::OK);
    let (_, v) = get_json(&app, "/api/v1/products", None).await;
    assert_eq!(names(&v).len(), 2);

    expect_error(delete(&app, &path, &cashier.token).await, 403, "forbidden").await;
    let r = app
        .req(Method::DELETE, &path)
        .bearer_auth(&mgr.token)
        .header("if-match", "\"7\"")
        .send()
        .await
        .unwrap();
    expect_error(r, 412, "precondition_failed").await;
    let r = delete(&app, &path, &mgr.token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        delete(&app, &path, &mgr.token).await.status(),
        StatusCode::NO_CONTENT,
        "idempotent"
    );

    expect_error(app.get(&path, None).await, 404, "not_found").await;
    expect_error(
        app.get(&path, Some(&customer.token)).await,
        404,
        "not_found",
    )
    .await;
    expect_error(app.get(&path, Some(&cashier.token)).await, 404, "not_found").await;
    let (s, v) = get_json(&app, &path, Some(&mgr.token)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["active"], false);
    assert_eq!(v["version"], 2);

    let (_, v) = get_json(&app, "/api/v1/products", None).await;
    assert_eq!(names(&v), vec!["New Mug"]);
    let (_, v) = get_json(&app, "/api/v1/products", Some(&mgr.token)).await;
    assert_eq!(names(&v), vec!["New Mug"], "inactive only on request");
    let (_, v) = get_json(
        &app,
        "/api/v1/products?include_inactive=true",
        Some(&mgr.token),
    )
    .await;
    assert_eq!(names(&v), vec!["Discontinued Mug", "New Mug"]);
    expect_error(
        app.get(
            "/api/v1/products?include_inactive=true",
            Some(&customer.token),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    expect_error(
        app.get(
            "/api/v1/products?include_inactive=true",
            Some(&cashier.token),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    expect_error(
        app.get("/api/v1/products?include_inactive=true", None)
            .await,
        401,
        "unauthorized",
    )
    .await;
    expect_error(
        app.get("/api/v1/products?include_inactive=maybe", Some(&mgr.token))
            .await,
        422,
        "validation_failed",
    )
    .await;

    // Reactivating brings it back.
    let (s, v) = body(
        app.patch(&path, Some(&mgr.token), json!({"active": true}))
            .await,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = get_json(&app, &path, None).await;
    assert_eq!(s, StatusCode::OK);
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'product.delete'")
            .fetch_one(&app.state.db.write)
            .await
            .unwrap();
    assert_eq!(n, 1);
    expect_error(
        app.get("/api/v1/products/not-a-uuid", None).await,
        400,
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn a_change_through_one_instance_is_seen_through_the_other_within_a_second() {
    let (a, b) = TestApp::spawn_pair().await;
    let mgr = a.user("manager").await;
    let p = create_product(&a, &mgr.token, product("PAIR-1", "Flat White", 400)).await;
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
    let lookup = "/api/v1/products/lookup?code=PAIR-1";
    // Listeners subscribe in the background; give them a moment after start-up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (round, price) in [(0, 425), (1, 450)] {
        let (writer, reader) = if round == 0 { (&a, &b) } else { (&b, &a) };
        // Warm every cache on the reader (twice: the second read is served from memory).
        let hits = reader.state.metrics.cache_hits.load(Ordering::Relaxed);
        for _ in 0..2 {
            assert_ne!(get_json(reader, &path, None).await.1["price_cents"], price);
            assert_ne!(get_json(reader, lookup, None).await.1["price_cents"], price);
            assert_ne!(
                get_json(reader, "/api/v1/products", None).await.1["items"][0]["price_cents"],
                price
            );
        }
        assert!(reader.state.metrics.cache_hits.load(Ordering::Relaxed) - hits >= 3);

        let (s, _) = body(
            writer
                .patch(&path, Some(&mgr.token), json!({"price_cents": price}))
                .await,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let start = Instant::now();
        loop {
            let one = get_json(reader, &path, None).await.1["price_cents"].clone();
            let scan = get_json(reader, lookup, None).await.1["price_cents"].clone();
            let list = get_json(reader, "/api/v1/products", None).await.1["items"][0]
                ["price_cents"]
                .clone();
            if one == price && scan == price && list == price {
                break;
            }
            // The contract is 1 s; the local TTL alone would also meet it, so demand well under
            // that to prove the pub/sub invalidation works.
            assert!(
                start.elapsed() < Duration::from_millis(500),
                "stale after 500 ms: {one} {scan} {list}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn a_cold_burst_queries_the_database_once() {
    let app = TestApp::spawn().await;
    let mgr = app.user("manager").await;
    for i in 0..5 {
        create_product(
            &app,
            &mgr.token,
            product(&format!("B-{i}"), &format!("Burst {i}"), 100),
        )
        .await;
    }
    let misses = app.state.metrics.cache_misses.load(Ordering::Relaxed);
    let hits = app.state.metrics.cache_hits.load(Ordering::Relaxed);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let http = app.http.clone();
        let url = format!("{}/api/v1/products?limit=20", app.url);
        tasks.push(tokio::spawn(async move {
            http.get(url).send().await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(
        app.state.metrics.cache_misses.load(Ordering::Relaxed) - misses,
        1
    );
    assert_eq!(
        app.state.metrics.cache_hits.load(Ordering::Relaxed) - hits,
        99
    );
}

#[tokio::test]
async fn single_instance_mode_caches_without_redis() {
    let app = TestApp::spawn_with(&Opts::new().await.without_redis()).await;
    let mgr = app.user("manager").await;
    let p = create_product(&app, &mgr.token, product("SOLO-1", "Solo", 100)).await;
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
    assert_eq!(get_json(&app, &path, None).await.1["price_cents"], 100);
    assert_eq!(get_json(&app, &path, None).await.1["price_cents"], 100);
    app.patch(&path, Some(&mgr.token), json!({"price_cents": 150}))
        .await;
    assert_eq!(
        get_json(&app, &path, None).await.1["price_cents"],
        150,
        "own writes are visible at once"
    );
    let (_, v) = get_json(&app, "/api/v1/products?q=solo", None).await;
    assert_eq!(names(&v), vec!["Solo"]);
}
