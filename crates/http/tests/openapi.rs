//! The OpenAPI document is generated from the code and kept in step with the router: every
//! (method, path) the router serves is described, and nothing else. Plus `/api/docs`, the
//! human-readable reference, served from this origin only.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::json;
use serde_json::Value;
use till_test_support::*;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// (method, path) pairs a router serves, read from its `Debug` form: axum lists each route's
/// path (`RouteId(n): "/path"`) and its method router, whose `allow_header` holds the methods
/// (`Bytes(b"GET,HEAD,POST")`). HEAD comes with GET and is not listed separately. Only the
/// path router is read: the fallback router after it holds axum's own catch-all routes.
fn served(router: &axum::Router<till_http::AppState>) -> BTreeSet<(String, String)> {
    let full = format!("{router:?}");
    let debug = full
        .split("fallback_router:")
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut paths = std::collections::BTreeMap::new();
    let mut methods = std::collections::BTreeMap::new();
    for chunk in debug.split("RouteId(").skip(1) {
        let Some((id, rest)) = chunk.split_once("): ") else {
            continue;
        };
        if let Some(path) = rest.strip_prefix('"') {
            let path = path.split('"').next().unwrap_or_default();
            paths.insert(id.to_owned(), path.to_owned());
        } else if rest.starts_with("MethodRouter(") {
            let allow = rest
                .split_once("allow_header: Bytes(b\"")
                .map(|(_, a)| a.split('"').next().unwrap_or_default())
                .unwrap_or_default();
            methods.insert(id.to_owned(), allow.to_owned());
        } else {
            panic!("a route that is not a method router (a nested service?): {rest:.80}");
        }
    }
    assert!(
        !paths.is_empty(),
        "axum's Debug output changed: {debug:.300}"
    );
    let mut out = BTreeSet::new();
    for (id, path) in paths {
        let allow = methods
            .get(&id)
            .unwrap_or_else(|| panic!("no methods for {path}"));
        assert!(!allow.is_empty(), "{path} has no Allow list");
        for m in allow.split(',') {
            let m = m.to_ascii_lowercase();
            if m != "head" {
                out.insert((m, path.clone()));
            }
        }
    }
    out
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m).is_some() {
                out.insert((m.to_owned(), path.clone()));
            }
        }
    }
    out
}

fn assert_same(
    what: &str,
    served: &BTreeSet<(String, String)>,
    documented: &BTreeSet<(String, String)>,
) {
    let undocumented: Vec<_> = served.difference(documented).collect();
    let unserved: Vec<_> = documented.difference(served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "{what}: served but not documented: {undocumented:?}; documented but not served: {unserved:?} \
         (register routes with utoipa-axum's `routes!(handler)` and a `#[utoipa::path]` on the handler)"
    );
}

#[test]
fn every_api_route_is_documented_and_every_documented_route_is_served() {
    let (router, doc) = till_http::routes::api().split_for_parts();
    let doc = serde_json::to_value(doc).unwrap();
    let api = served(&router);
    assert!(
        api.contains(&("post".into(), "/orders/{id}/payments".into())),
        "{api:?}"
    );
    assert!(api.contains(&("get".into(), "/ws".into())));
    assert_same("/api/v1", &api, &documented(&doc));

    let (router, doc) = till_http::health::router().split_for_parts();
    let doc = serde_json::to_value(doc).unwrap();
    assert_same("health", &served(&router), &documented(&doc));
}

#[test]
fn a_route_added_without_its_description_is_caught() {
    // What the check above would see if someone added a plain axum route.
    let (router, doc) = till_http::routes::api().split_for_parts();
    let router = router.route("/sneaky", axum::routing::get(|| async { "hi" }));
    let doc = serde_json::to_value(doc).unwrap();
    let sneaky = served(&router);
    assert!(sneaky.contains(&("get".into(), "/sneaky".into())));
    assert!(!documented(&doc).contains(&("get".into(), "/sneaky".into())));
}

#[tokio::test]
async fn the_document_is_served_without_auth_and_describes_the_conventions() {
    let app = TestApp::spawn().await;
    let resp = app.anon().get("/api/v1/openapi.json").send().await;
    assert!(resp.header("content-type").starts_with("application/json"));
    let doc = resp.expect_json(200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );

    // The same document the router was built from, under its real prefix.
    // (The payment provider's callback and the development simulator are mounted beside it.)
    let (_, api) = till_http::routes::api()
        .merge(till_http::routes::payments::provider_router())
        .merge(till_http::routes::payments::dev_router())
        .split_for_parts();
    let expected: BTreeSet<_> = documented(&serde_json::to_value(api).unwrap())
        .into_iter()
        .map(|(m, p)| (m, format!("/api/v1{p}")))
        .collect();
    let served_doc = documented(&doc);
    let api_ops: BTreeSet<_> = served_doc
        .iter()
        .filter(|(_, p)| p.starts_with("/api/v1/"))
        .cloned()
        .collect();
    assert_eq!(api_ops, expected);
    for path in ["/health", "/health/readiness", "/metrics"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing");
    }

    for (method, path) in &api_ops {
        let op = &doc["paths"][path][method];
        for status in ["429", "503"] {
            assert!(
                op["responses"][status].is_object(),
                "{method} {path} lacks {status}"
            );
        }
        let rate = &op["responses"]["429"];
        assert_eq!(
            rate["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
        assert!(rate["headers"]["Retry-After"].is_object());
        if method == "post" {
            let key = op["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == "Idempotency-Key"))
                .unwrap_or_else(|| panic!("{method} {path} lacks Idempotency-Key"));
            let required = [
                "/api/v1/orders",
                "/api/v1/orders/{id}/payments",
                "/api/v1/orders/{id}/payment-intents",
                "/api/v1/orders/{id}/refunds",
                "/api/v1/inventory/transfers/{id}/receipts",
            ]
            .contains(&path.as_str());
            assert_eq!(key["required"], required, "{path}");
            assert_eq!(key["schema"]["maxLength"], 255);
            // A POST that honours the key can refuse it: 409 `idempotency_key_in_use`, 422
            // `idempotency_key_reused` (a bodiless POST gets no 422 from the body rules).
            let ignores_key = [
                "/api/v1/auth/login",
                "/api/v1/auth/logout",
                "/api/v1/payment-provider/events",
                "/api/v1/dev/payment-provider/simulate",
            ]
            .contains(&path.as_str());
            if !ignores_key {
                for status in ["409", "422"] {
                    assert!(
                        op["responses"][status].is_object(),
                        "{method} {path} lacks {status}"
                    );
                }
            }
        }
        if op.get("requestBody").is_some() {
            for status in ["400", "413", "415", "422"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} lacks {status}"
                );
            }
        }
    }

    // Signed-in routes: bearer or cookie, the cookie with X-CSRF-Token on unsafe methods; 401.
    let pay = &doc["paths"]["/api/v1/orders/{id}/payments"]["post"];
    assert_eq!(
        pay["security"],
        serde_json::json!([{"bearer": []}, {"cookie": [], "csrf": []}])
    );
    assert!(pay["responses"]["401"].is_object());
    let products = &doc["paths"]["/api/v1/products"]["get"];
    assert_eq!(
        products["security"],
        serde_json::json!([{}, {"bearer": []}, {"cookie": []}])
    );
    let patch = &doc["paths"]["/api/v1/products/{id}"]["patch"];
    assert!(patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "If-Match" && p["in"] == "header"));
    assert!(patch["responses"]["412"].is_object());
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["cookie"]["name"], "till_session");
    assert_eq!(schemes["csrf"]["name"], "X-CSRF-Token");

    // The error envelope as the server sends it.
    let err = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(err["required"], serde_json::json!(["error"]));
    let sent = app.anon().get("/api/v1/orders").send().await;
    let sent = sent.expect_error(401, "unauthorized");
    for k in ["code", "message", "request_id"] {
        assert!(sent["error"][k].is_string(), "{k}");
    }
}

#[tokio::test]
async fn api_docs_is_a_page_that_loads_only_from_this_origin() {
    let app = TestApp::spawn().await;
    // The bare path redirects to the page (reqwest follows it).
    let resp = app
        .req(reqwest::Method::GET, "/api/docs")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.url().path().ends_with("/api/docs/"), "{}", resp.url());
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = resp.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html:.300}");

    // Every script, stylesheet and image is a relative URL, and each of them loads.
    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let url = part.split('"').next().unwrap();
            assert!(
                !url.contains("//") && !url.starts_with("data:") && !url.starts_with("javascript:"),
                "a non-local asset: {url}"
            );
            assets.push(url.trim_start_matches("./").to_owned());
        }
    }
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{assets:?}");
    for asset in &assets {
        let resp = app
            .req(reqwest::Method::GET, &format!("/api/docs/{asset}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{asset}");
    }
    // The initializer points Swagger UI at the document on this origin, without a validator badge.
    let init = app
        .req(reqwest::Method::GET, "/api/docs/swagger-initializer.js")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/api/v1/openapi.json"), "{init}");
    assert!(!init.contains("https://"), "{init}");
}

// ------------------------------------------------------------------------------------------------
// Every answer of the main flows matches the document (the fuzzer rarely gets past 404/422 on
// the writes, whose ids it cannot guess; this walks them with real ids).

/// Why `value` does not match `schema` (the subset of JSON Schema the document uses).
fn mismatches(doc: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        assert!(target.is_object(), "unresolved {r}");
        return mismatches(doc, target, value, at, out);
    }
    let fits = |s: &Value| {
        let mut errs = Vec::new();
        mismatches(doc, s, value, at, &mut errs);
        errs.is_empty()
    };
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            mismatches(doc, s, value, at, out);
        }
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let n = one.iter().filter(|s| fits(s)).count();
        if n != 1 {
            out.push(format!("{at}: matches {n} of oneOf: {value}"));
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        if !any.iter().any(fits) {
            out.push(format!("{at}: matches nothing of anyOf: {value}"));
        }
    }
    if let Some(ty) = schema.get("type") {
        let types: Vec<&str> = match ty {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        });
        if !ok {
            out.push(format!("{at}: {value} is not {types:?}"));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            out.push(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    if let Some(obj) = value.as_object() {
        for key in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !obj.contains_key(key) {
                out.push(format!("{at}: missing required {key}"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => mismatches(doc, s, v, &format!("{at}.{k}"), out),
                None => {
                    if let Some(extra) = schema.get("additionalProperties") {
                        if extra == &Value::Bool(false) {
                            out.push(format!("{at}: unexpected {k}"));
                        } else if extra.is_object() {
                            mismatches(doc, extra, v, &format!("{at}.{k}"), out);
                        }
                    }
                }
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            mismatches(doc, items, v, &format!("{at}[{i}]"), out);
        }
    }
}

/// Asserts that `resp` is an answer the document gives for `method path` (status, body).
#[track_caller]
fn conforms(doc: &Value, method: &str, path: &str, resp: &Resp) {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not documented");
    let status = resp.status().to_string();
    let documented = &op["responses"][&status];
    assert!(
        documented.is_object(),
        "{method} {path} answered an undocumented {status}: {}",
        resp.body
    );
    match documented["content"]["application/json"]["schema"].as_object() {
        Some(_) => {
            let schema = &documented["content"]["application/json"]["schema"];
            let mut errs = Vec::new();
            mismatches(doc, schema, &resp.body, "body", &mut errs);
            assert!(errs.is_empty(), "{method} {path} {status}: {errs:#?}");
        }
        None => assert!(
            documented["content"].is_null() || documented["content"]["text/plain"].is_object(),
            "{method} {path} {status}: {}",
            documented["content"]
        ),
    }
}

#[tokio::test]
async fn the_answers_of_the_main_flows_match_the_document() {
    let app = TestApp::spawn().await;
    let doc = app
        .anon()
        .get("/api/v1/openapi.json")
        .await
        .expect_json(200);
    let admin = app.as_admin().await;
    let manager = app.as_manager().await;
    let cashier = app.as_cashier().await;
    let staff = app.as_staff().await;

    // Catalog and stock.
    let r = manager
        .post("/api/v1/categories", json!({"name": "Bakery"}))
        .await;
    conforms(&doc, "post", "/api/v1/categories", &r);
    let category = r.body.clone();
    conforms(
        &doc,
        "get",
        "/api/v1/categories",
        &app.anon().get("/api/v1/categories").await,
    );
    let body = ProductBuilder::new("BREAD-1")
        .barcode("4006381333931")
        .category(&category["id"])
        .price(250)
        .low_stock(5)
        .body();
    let r = manager.post("/api/v1/products", body).await;
    conforms(&doc, "post", "/api/v1/products", &r);
    let product = r.body["id"].as_str().unwrap().to_owned();
    let p = format!("/api/v1/products/{product}");
    conforms(
        &doc,
        "get",
        "/api/v1/products/{id}",
        &app.anon().get(&p).await,
    );
    let r = manager
        .patch(&p, json!({"description": "Sourdough", "barcode": null}))
        .if_match(1)
        .await;
    conforms(&doc, "patch", "/api/v1/products/{id}", &r);
    let r = manager.patch(&p, json!({"name": "Loaf"})).if_match(1).await;
    assert_eq!(r.status(), 412);
    conforms(&doc, "patch", "/api/v1/products/{id}", &r);
    conforms(
        &doc,
        "get",
        "/api/v1/products",
        &manager
            .get("/api/v1/products?limit=1&include_inactive=true")
            .await,
    );
    conforms(
        &doc,
        "get",
        "/api/v1/products/lookup",
        &cashier.get("/api/v1/products/lookup?code=BREAD-1").await,
    );
    let r = manager
        .post(
            "/api/v1/inventory/adjustments",
            json!({"product_id": product, "delta": 3, "reason": "received"}),
        )
        .await;
    conforms(&doc, "post", "/api/v1/inventory/adjustments", &r);
    let r = manager
        .post(
            "/api/v1/inventory/adjustments",
            json!({"product_id": product, "delta": -30, "reason": "damage"}),
        )
        .await;
    assert_eq!(r.status(), 409);
    conforms(&doc, "post", "/api/v1/inventory/adjustments", &r);
    conforms(
        &doc,
        "get",
        "/api/v1/inventory/movements",
        &manager.get("/api/v1/inventory/movements?limit=2").await,
    );
    conforms(
        &doc,
        "get",
        "/api/v1/inventory/low-stock",
        &staff.get("/api/v1/inventory/low-stock").await,
    );

    // Customers and accounts.
    let r = cashier
        .post(
            "/api/v1/customers",
            json!({"name": "Ada", "phone": "+14155550199", "email": "ada@example.com"}),
        )
        .await;
    conforms(&doc, "post", "/api/v1/customers", &r);
    let customer = r.body["id"].as_str().unwrap().to_owned();
    conforms(
        &doc,
        "get",
        "/api/v1/customers",
        &cashier.get("/api/v1/customers?phone=4155550199").await,
    );
    conforms(
        &doc,
        "get",
        "/api/v1/customers/{id}",
        &cashier.get(&format!("/api/v1/customers/{customer}")).await,
    );
    let r = app
        .anon()
        .post(
            "/api/v1/auth/register",
            json!({"email": "bo@example.com", "password": "long-enough-1", "name": "Bo"}),
        )
        .await;
    conforms(&doc, "post", "/api/v1/auth/register", &r);
    let r = app
        .anon()
        .post(
            "/api/v1/auth/login",
            json!({"email": "bo@example.com", "password": "long-enough-1"}),
        )
        .await;
    conforms(&doc, "post", "/api/v1/auth/login", &r);
    let r = app
        .anon()
        .post(
            "/api/v1/auth/login",
            json!({"email": "bo@example.com", "password": "wrong-password"}),
        )
        .await;
    conforms(&doc, "post", "/api/v1/auth/login", &r);
    conforms(
        &doc,
        "get",
        "/api/v1/auth/me",
        &admin.get("/api/v1/auth/me").await,
    );
    conforms(
        &doc,
        "get",
        "/api/v1/auth/me",
        &admin.cookie_session().get("/api/v1/auth/me").await,
    );
    let r = admin
        .post("/api/v1/users", json!({"email": "cy@example.com", "password": "long-enough-1", "name": "Cy", "role": "staff"}))
        .await;
    conforms(&doc, "post", "/api/v1/users", &r);
    let user = r.body["id"].as_str().unwrap().to_owned();
    conforms(
        &doc,
        "get",
        "/api/v1/users",
        &admin.get("/api/v1/users").await,
    );
    conforms(
        &doc,
        "get",
        "/api/v1/users/{id}",
        &admin.get(&format!("/api/v1/users/{user}")).await,
    );
    let r = admin
        .patch(&format!("/api/v1/users/{user}"), json!({"name": "Cyril"}))
        .await;
    conforms(&doc, "patch", "/api/v1/users/{id}", &r);

    // An order, its lifecycle and money.
    let order = OrderBuilder::pos()
        .line(&product, 2)
        .customer(&customer)
        .percent_off(500)
        .note("gift");
    let r = cashier.post_order(order.body()).await;
    conforms(&doc, "post", "/api/v1/orders", &r);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let o = format!("/api/v1/orders/{id}");
    conforms(&doc, "get", "/api/v1/orders/{id}", &cashier.get(&o).await);
    conforms(
        &doc,
        "get",
        "/api/v1/orders",
        &cashier.get("/api/v1/orders?status=pending").await,
    );
    conforms(
        &doc,
        "get",
        "/api/v1/orders/board",
        &staff.get("/api/v1/orders/board").await,
    );
    let r = staff.transition(&id, "confirmed").await;
    conforms(&doc, "post", "/api/v1/orders/{id}/transitions", &r);
    let r = staff.transition(&id, "delivered").await;
    assert_eq!(r.status(), 409);
    conforms(&doc, "post", "/api/v1/orders/{id}/transitions", &r);
    let r = cashier
        .pay(
            &id,
            json!({"method": "cash", "amount_cents": 100, "tendered_cents": 200}),
        )
        .await;
    conforms(&doc, "post", "/api/v1/orders/{id}/payments", &r);
    let r = manager
        .refund(&id, json!({"amount_cents": 50, "reason": "stale", "restock": [{"product_id": product, "quantity": 1}]}))
        .await;
    conforms(&doc, "post", "/api/v1/orders/{id}/refunds", &r);
    conforms(
        &doc,
        "get",
        "/api/v1/customers/{id}/orders",
        &cashier
            .get(&format!("/api/v1/customers/{customer}/orders"))
            .await,
    );

    // Reports, audit, jobs, errors, deletion, health.
    let today = chrono::Utc::now().date_naive();
    conforms(
        &doc,
        "get",
        "/api/v1/reports/sales",
        &manager
            .get(&format!("/api/v1/reports/sales?from={today}&to={today}"))
            .await,
    );
    conforms(
        &doc,
        "get",
        "/api/v1/audit",
        &manager.get("/api/v1/audit?limit=3").await,
    );
    conforms(
        &doc,
        "get",
        "/api/v1/admin/jobs",
        &admin.get("/api/v1/admin/jobs").await,
    );
    conforms(
        &doc,
        "get",
        "/api/v1/admin/jobs",
        &manager.get("/api/v1/admin/jobs").await,
    );
    conforms(
        &doc,
        "get",
        "/api/v1/orders",
        &app.anon().get("/api/v1/orders").await,
    );
    conforms(
        &doc,
        "get",
        "/api/v1/orders",
        &cashier.get("/api/v1/orders?limit=0").await,
    );
    conforms(
        &doc,
        "get",
        "/api/v1/users/{id}",
        &admin.get("/api/v1/users/not-a-uuid").await,
    );
    let r = manager.delete(&p).if_match(2).await;
    conforms(&doc, "delete", "/api/v1/products/{id}", &r);
    for path in [
        "/health",
        "/health/liveness",
        "/health/readiness",
        "/health/metrics",
    ] {
        conforms(&doc, "get", path, &app.anon().get(path).await);
    }
    conforms(
        &doc,
        "get",
        "/health/detailed",
        &admin.get("/health/detailed").await,
    );
}

#[test]
fn the_schema_check_above_catches_a_wrong_answer() {
    // (The payment provider's callback and the development simulator are mounted beside it.)
    let (_, api) = till_http::routes::api()
        .merge(till_http::routes::payments::provider_router())
        .merge(till_http::routes::payments::dev_router())
        .split_for_parts();
    let mut doc = serde_json::to_value(api).unwrap();
    till_http::openapi::conventions(&mut doc);
    let err = json!({"$ref": "#/components/schemas/ErrorBody"});
    let mut errs = Vec::new();
    mismatches(
        &doc,
        &err,
        &json!({"error": {"code": "x", "message": "m"}}),
        "b",
        &mut errs,
    );
    assert!(errs.is_empty(), "{errs:?}");
    mismatches(&doc, &err, &json!({"error": {"code": 7}}), "b", &mut errs);
    assert_eq!(errs.len(), 2, "{errs:?}"); // code's type, message missing
    let product = json!({"$ref": "#/components/schemas/Product"});
    let mut errs = Vec::new();
    mismatches(
        &doc,
        &product,
        &json!({"id": "x", "price_cents": 1.5}),
        "b",
        &mut errs,
    );
    assert!(errs.iter().any(|e| e.contains("price_cents")), "{errs:?}");
    assert!(
        errs.iter().any(|e| e.contains("missing required sku")),
        "{errs:?}"
    );
}
