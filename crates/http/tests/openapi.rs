//! The OpenAPI document is generated from the code and kept in step with the router: every
//! (method, path) the router serves is described, and nothing else. Plus `/api/docs`, the
//! human-readable reference, served from this origin only.

use std::collections::BTreeSet;

use reqwest::StatusCode;
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
    let (_, api) = till_http::routes::api().split_for_parts();
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
                "/api/v1/orders/{id}/refunds",
            ]
            .contains(&path.as_str());
            assert_eq!(key["required"], required, "{path}");
            assert_eq!(key["schema"]["maxLength"], 255);
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
