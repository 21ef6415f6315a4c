//! The OpenAPI 3.1 description of the API, generated from the code: every handler carries a
//! `#[utoipa::path]` attribute and is registered with utoipa-axum's `routes!`, which adds the
//! route to the router and its description to the document in one step (see `routes::api`).
//! Request and response bodies are the real types (`ToSchema` derives where they live), or the
//! DTOs in [`schemas`] where a handler builds its JSON by hand.
//!
//! What every route answers because of the layers and extractors in front of it is added here,
//! by rule, rather than repeated on each handler ([`conventions`]):
//! * under `/api/v1`: 429 (rate limit, with `Retry-After` and the `RateLimit-*` headers) and
//!   503 (schema upgrade, timeout, a dependency down);
//! * a JSON body: 400 (not JSON), 413 (too large), 415 (not `application/json`), 422 (wrong shape);
//! * a path parameter: 400 (not a UUID); a query parameter: 422 (wrong type or value);
//! * `security(("bearer" = []))` on a handler means "signed in": it becomes bearer token *or*
//!   session cookie (plus `X-CSRF-Token` on unsafe methods), and adds 401 (and 403 for the CSRF
//!   check on unsafe methods). `security((), ("bearer" = []))` means "signed in or anonymous";
//! * every POST takes an optional `Idempotency-Key` (required where the handler declares it);
//! * every response carries `X-Request-Id`.
//!
//! Served at `GET /api/v1/openapi.json` (no auth) and rendered by Swagger UI at `/api/docs`
//! from files embedded in the binary (no CDN).

pub mod schemas;

use std::sync::OnceLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::state::AppState;

/// Where the document is served (also what `/api/docs` loads).
pub const DOCUMENT_PATH: &str = "/api/v1/openapi.json";
/// Where the human-readable reference lives.
pub const DOCS_PATH: &str = "/api/docs";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Till API",
        description = "Point-of-sale backend: catalog, stock, customers, orders, payments and \
            refunds, live order events. Money is in integer minor units (`*_cents`); errors share \
            one envelope (`ErrorBody`). Generated from the server's code.",
        license(name = "MIT")
    ),
    components(schemas(schemas::ErrorBody)),
    tags(
        (name = "auth", description = "Sign up, sign in and out, the current user"),
        (name = "users", description = "Staff accounts (admin)"),
        (name = "catalog", description = "Categories and products"),
        (name = "inventory", description = "The stock ledger"),
        (name = "customers", description = "Customer records"),
        (name = "orders", description = "Orders, their lifecycle, payments and refunds"),
        (name = "shifts", description = "Registers and their cash drawer shifts, X and Z reports"),
        (name = "live", description = "Live order events over WebSocket"),
        (name = "reports", description = "Sales reports and the audit log"),
        (name = "admin", description = "Background jobs"),
        (name = "webhooks", description = "Webhook endpoints, deliveries and the event log (admin)"),
        (name = "meta", description = "This description"),
        (name = "health", description = "Health, readiness and metrics (no /api/v1 prefix)"),
    )
)]
struct ApiDoc;

/// An empty router carrying the document's header (info, tags, shared schemas).
pub fn base() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
}

/// The whole document: the API under `/api/v1` plus the health routes, with the conventions
/// applied. Built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        // The simulated provider is served in development only; it is described always.
        let doc = base()
            .nest("/api/v1", crate::routes::api())
            .nest("/api/v1", crate::routes::payments::dev_router())
            .nest("/api/v1", crate::routes::payments::provider_router())
            .merge(crate::health::router())
            .into_openapi();
        let mut value = serde_json::to_value(doc).unwrap_or(Value::Null);
        conventions(&mut value);
        value
    })
}

/// The document as served, serialised once.
fn document_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| serde_json::to_vec(document()).unwrap_or_default())
}

/// This description of the API, as OpenAPI 3.1 JSON.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object, content_type = "application/json"))
)]
pub async fn serve_document() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document_bytes(),
    )
        .into_response()
}

/// `/api/docs`: Swagger UI, its files embedded in the binary, reading [`DOCUMENT_PATH`].
pub fn docs_router() -> Router<AppState> {
    let config = Config::new([DOCUMENT_PATH])
        // The default validator badge loads an image from a third-party site.
        .validator_url("none")
        .try_it_out_enabled(false)
        .display_operation_id(false);
    SwaggerUi::new(DOCS_PATH).config(config).into()
}

const UNSAFE: [&str; 4] = ["post", "put", "patch", "delete"];
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn error_ref() -> Value {
    json!({"$ref": "#/components/schemas/ErrorBody"})
}

fn string_header(description: &str) -> Value {
    json!({"description": description, "schema": {"type": "string"}})
}

fn integer_header(description: &str) -> Value {
    json!({"description": description, "schema": {"type": "string", "pattern": "^[0-9]+$"}})
}

/// An error response in the envelope.
fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": error_ref()}},
    })
}

/// Adds `status` to `responses` unless the handler documented it already.
fn add_response(responses: &mut Map<String, Value>, status: &str, description: &str) {
    responses
        .entry(status.to_owned())
        .or_insert_with(|| error_response(description));
}

/// Applies the rules listed in the module comment to every operation of `doc`.
pub fn conventions(doc: &mut Value) {
    let schemes = json!({
        "bearer": {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "`access_token` from `POST /api/v1/auth/login`."
        },
        "cookie": {
            "type": "apiKey", "in": "cookie", "name": "till_session",
            "description": "The session cookie set by `POST /api/v1/auth/login` (web UI)."
        },
        "csrf": {
            "type": "apiKey", "in": "header", "name": "X-CSRF-Token",
            "description": "With the session cookie, unsafe methods (POST, PUT, PATCH, DELETE) \
                must send the session's `csrf_token` (from login or `GET /auth/me`); else 403 `csrf_failed`."
        }
    });
    if let Some(components) = doc.get_mut("components").and_then(Value::as_object_mut) {
        components.insert("securitySchemes".into(), schemes);
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let api = path.starts_with("/api/v1/");
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for method in METHODS {
            if let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) {
                op.insert("operationId".into(), json!(operation_id(method, path)));
                operation(op, method, api);
            }
        }
    }
}

/// A unique, stable id from method and path (handler names repeat: many are `list`):
/// `GET /api/v1/orders/{id}` → `get_orders_id`.
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<&str> = path
        .trim_start_matches("/api/v1")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    format!("{method}_{}", words.join("_"))
}

fn operation(op: &mut Map<String, Value>, method: &str, api: bool) {
    let unsafe_method = UNSAFE.contains(&method);
    let params = op
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has_in = |place: &str| params.iter().any(|p| p["in"] == place);
    let has_body = op.contains_key("requestBody");

    // Security: "signed in" becomes bearer or cookie (+ CSRF on unsafe methods).
    let mut signed_in = false;
    if let Some(reqs) = op.get("security").and_then(Value::as_array).cloned() {
        let anonymous_ok = reqs
            .iter()
            .any(|r| r.as_object().is_some_and(Map::is_empty));
        signed_in = reqs
            .iter()
            .any(|r| r.as_object().is_some_and(|o| o.contains_key("bearer")));
        if signed_in {
            let cookie = if unsafe_method {
                json!({"cookie": [], "csrf": []})
            } else {
                json!({"cookie": []})
            };
            let mut expanded = Vec::new();
            if anonymous_ok {
                expanded.push(json!({}));
            }
            expanded.push(json!({"bearer": []}));
            expanded.push(cookie);
            op.insert("security".into(), Value::Array(expanded));
        }
    }

    if method == "post" {
        idempotency_key(op);
    }

    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else { return };
    if has_body {
        add_response(responses, "400", "The body is not JSON.");
        add_response(
            responses,
            "413",
            "The body is larger than `MAX_BODY_BYTES`.",
        );
        add_response(responses, "415", "The body is not `application/json`.");
        add_response(
            responses,
            "422",
            "`validation_failed`: `details.fields` names each invalid field.",
        );
    }
    if has_in("path") {
        add_response(responses, "400", "A path parameter is not a UUID.");
    }
    if has_in("query") {
        add_response(
            responses,
            "422",
            "`validation_failed`: `details.fields` names each invalid parameter.",
        );
    }
    if signed_in {
        add_response(
            responses,
            "401",
            "`unauthorized`: missing, invalid, expired or revoked credentials.",
        );
        if unsafe_method {
            add_response(
                responses,
                "403",
                "`csrf_failed` (cookie sign-in without `X-CSRF-Token`), or `forbidden`.",
            );
        }
    }
    if api {
        add_response(
            responses,
            "429",
            "`rate_limited`: the caller's bucket is empty; retry after `Retry-After` seconds.",
        );
    }
    add_response(
        responses,
        "503",
        "`service_unavailable`: a dependency is down, the schema is being upgraded, or the \
         request timed out; retry after `Retry-After` seconds.",
    );

    for (status, response) in responses.iter_mut() {
        let Some(response) = response.as_object_mut() else {
            continue;
        };
        let headers = response
            .entry("headers")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        let Some(headers) = headers else { continue };
        headers.insert(
            "X-Request-Id".into(),
            string_header(
                "The request's id (the one sent, if it was 1..64 visible ASCII characters).",
            ),
        );
        if api {
            headers.insert(
                "RateLimit-Limit".into(),
                integer_header("Requests allowed per window for this caller."),
            );
            headers.insert(
                "RateLimit-Remaining".into(),
                integer_header("Requests left in this window."),
            );
            headers.insert(
                "RateLimit-Reset".into(),
                integer_header("Seconds until the window resets."),
            );
        }
        if status == "429" || status == "503" {
            headers.insert(
                "Retry-After".into(),
                integer_header("Seconds to wait before retrying."),
            );
        }
    }
}

/// `Idempotency-Key` on a POST: optional unless the handler declared it (then required); the
/// same constraints either way.
fn idempotency_key(op: &mut Map<String, Value>) {
    let params = op
        .entry("parameters")
        .or_insert_with(|| json!([]))
        .as_array_mut();
    let Some(params) = params else { return };
    let declared = params
        .iter()
        .position(|p| p["name"] == "Idempotency-Key" && p["in"] == "header");
    let required = declared.is_some();
    let param = json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": required,
        "description": if required {
            "Required. The same key with the same body replays the first answer \
             (`Idempotent-Replayed: true`) without a second effect; with another body → 422 \
             `idempotency_key_reused`; while the first is running → 409 `idempotency_key_in_use`."
        } else {
            "Optional. The same key with the same body replays the first answer without a \
             second effect. Keys are scoped to the caller and kept at least 24 h."
        },
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    });
    match declared {
        Some(i) => params[i] = param,
        None => params.push(param),
    }
}
