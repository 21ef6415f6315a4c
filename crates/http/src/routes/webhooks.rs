//! Webhooks (admin): endpoints and their secrets, deliveries with every attempt, manual retry,
//! and `GET /events` for receivers reconciling what they may have missed. Delivery itself is
//! `till worker`'s.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use till_app::webhooks::{self as app_webhooks, NewWebhook, WebhookPatch};
use till_db::cursor::Page;
use till_db::outbox;
use till_db::webhooks::{self, AttemptRow, DeliveryRow, EndpointRow};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::idempotency::{answer, etag_header, location, respond, BodilessKey};
use crate::extract::{
    Admin, Authed, IfMatch, Json, MaybeIdempotent, PageQuery, Query, RequestMeta,
};
use crate::openapi::schemas::{ErrorBody, PageParams};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, remove))
        .routes(routes!(rotate_secret))
        .routes(routes!(test))
        .routes(routes!(deliveries))
        .routes(routes!(delivery))
        .routes(routes!(retry))
        .routes(routes!(events))
}

/// A webhook endpoint; its secret is shown only when created or rotated.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub active: bool,
    /// Why delivery stopped (a 410, or too many consecutive failures); cleared on re-enable.
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i32,
    /// Until when the previous secret still signs (after a rotation).
    pub previous_valid_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

impl From<&EndpointRow> for WebhookEndpoint {
    fn from(e: &EndpointRow) -> Self {
        WebhookEndpoint {
            id: e.id,
            url: e.url.clone(),
            events: e.events.clone(),
            description: e.description.clone(),
            active: e.active,
            disabled_reason: e.disabled_reason.clone(),
            consecutive_failures: e.consecutive_failures,
            previous_valid_until: e.previous_valid_until.filter(|t| *t > Utc::now()),
            created_at: e.created_at,
            version: e.version,
        }
    }
}

/// The endpoint as created, with its secret (shown only here).
#[derive(Serialize, utoipa::ToSchema)]
struct CreatedWebhook {
    #[serde(flatten)]
    endpoint: WebhookEndpoint,
    /// `whsec_…`: the key of `Till-Signature`. Store it now; it is never shown again.
    secret: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewWebhookBody {
    /// In production: `https`, and not resolving to a loopback, private, link-local or
    /// metadata address.
    url: String,
    /// Event types to receive (e.g. `order.created`, `order.paid`, `stock.low`).
    events: Vec<String>,
    description: Option<String>,
}

/// Adds an endpoint; the answer carries its signing secret, shown only this once.
#[utoipa::path(
    post,
    path = "/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = NewWebhookBody,
    responses(
        (status = 201, description = "Created, with `secret`", body = CreatedWebhook),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 409, description = "`idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    who: Authed<Admin>,
    meta: RequestMeta,
    idem: MaybeIdempotent<NewWebhookBody>,
) -> ApiResult<Response> {
    let b = &idem.body;
    let done = app_webhooks::create(
        &state,
        &meta.actor(&who),
        who.user_id,
        NewWebhook {
            url: &b.url,
            events: &b.events,
            description: b.description.as_deref().unwrap_or(""),
        },
        idem.key.as_ref(),
        |row| {
            let body = CreatedWebhook {
                endpoint: row.into(),
                secret: row.secret.clone(),
            };
            let mut headers = location(&format!("/api/v1/webhooks/{}", row.id));
            headers.extend(etag_header(row.version));
            answer(StatusCode::CREATED, json!(body), headers)
        },
    )
    .await?;
    Ok(respond(done))
}

/// Every endpoint, oldest first.
#[utoipa::path(
    get,
    path = "/webhooks",
    tag = "webhooks",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of endpoints", body = Page<WebhookEndpoint>),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    _: Authed<Admin>,
    page: PageQuery,
) -> ApiResult<impl IntoResponse> {
    let after = page.decode(webhooks::decode_cursor)?;
    let rows = webhooks::list(&state.db.write, after, page.limit).await?;
    Ok(Json(
        state
            .cursors
            .sign_page(rows)
            .map(|r| WebhookEndpoint::from(&r)),
    ))
}

/// One endpoint.
#[utoipa::path(
    get,
    path = "/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookEndpoint),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
async fn read(
    State(state): State<AppState>,
    _: Authed<Admin>,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let row = webhooks::get(&state.db.write, id).await?;
    Ok(with_etag(&row))
}

fn with_etag(row: &EndpointRow) -> Response {
    let mut resp = Json(WebhookEndpoint::from(row)).into_response();
    for (k, v) in etag_header(row.version) {
        resp.headers_mut().insert(k, v);
    }
    resp
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebhookPatch)]
struct PatchBody {
    url: Option<String>,
    events: Option<Vec<String>>,
    description: Option<String>,
    /// `false` pauses deliveries (they wait); `true` re-enables a disabled endpoint.
    active: Option<bool>,
}

/// Changes an endpoint (`If-Match` with its version, or none).
#[utoipa::path(
    patch,
    path = "/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Endpoint id"), ("If-Match" = Option<String>, Header, description = "`\"<version>\"`: 412 unless the endpoint is still at that version")),
    request_body = PatchBody,
    responses(
        (status = 200, description = "The endpoint after the change", body = WebhookEndpoint),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 412, description = "`precondition_failed`", body = ErrorBody),
    )
)]
async fn update(
    State(state): State<AppState>,
    who: Authed<Admin>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    if_match: IfMatch,
    Json(b): Json<PatchBody>,
) -> ApiResult<Response> {
    let row = app_webhooks::update(
        &state,
        &meta.actor(&who),
        id,
        &if_match.0,
        WebhookPatch {
            url: b.url.as_deref(),
            events: b.events.as_deref(),
            description: b.description.as_deref(),
            active: b.active,
        },
    )
    .await?;
    Ok(with_etag(&row))
}

/// Deletes an endpoint and its delivery log.
#[utoipa::path(
    delete,
    path = "/webhooks/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
async fn remove(
    State(state): State<AppState>,
    who: Authed<Admin>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    app_webhooks::delete(&state, &meta.actor(&who), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
struct RotatedSecret {
    /// The new `whsec_…` secret, shown only here.
    secret: String,
    /// Until then the previous secret signs too (a second `v1=`).
    previous_valid_until: DateTime<Utc>,
}

/// A new signing secret; the previous one keeps signing beside it for 24 hours.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The new secret", body = RotatedSecret),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 409, description = "`idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the Idempotency-Key was used for another request", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
async fn rotate_secret(
    State(state): State<AppState>,
    who: Authed<Admin>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    BodilessKey(key): BodilessKey,
) -> ApiResult<Response> {
    let done = app_webhooks::rotate_secret(
        &state,
        &meta.actor(&who),
        who.user_id,
        id,
        key.as_ref(),
        |row, until| {
            let body = RotatedSecret {
                secret: row.secret.clone(),
                previous_valid_until: until,
            };
            answer(StatusCode::OK, json!(body), Vec::new())
        },
    )
    .await?;
    Ok(respond(done))
}

/// Sends a `ping` event to this endpoint (through the outbox, like every event).
#[utoipa::path(
    post,
    path = "/webhooks/{id}/test",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 202, description = "A `ping` is queued for delivery"),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 409, description = "`idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the Idempotency-Key was used for another request", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
async fn test(
    State(state): State<AppState>,
    who: Authed<Admin>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    BodilessKey(key): BodilessKey,
) -> ApiResult<Response> {
    let done = app_webhooks::ping(
        &state,
        &meta.actor(&who),
        who.user_id,
        id,
        key.as_ref(),
        |ep| {
            answer(
                StatusCode::ACCEPTED,
                json!({"endpoint_id": ep.id}),
                Vec::new(),
            )
        },
    )
    .await?;
    Ok(respond(done))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DeliveryFilter {
    /// `pending`, `succeeded` or `failed`.
    status: Option<String>,
}

/// An endpoint's deliveries, newest first.
#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Endpoint id"), DeliveryFilter, PageParams),
    responses(
        (status = 200, description = "A page of deliveries", body = Page<DeliveryRow>),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
async fn deliveries(
    State(state): State<AppState>,
    _: Authed<Admin>,
    Path(id): Path<Uuid>,
    Query(f): Query<DeliveryFilter>,
    page: PageQuery,
) -> ApiResult<impl IntoResponse> {
    let status = f.status.as_deref();
    if status.is_some_and(|s| !["pending", "succeeded", "failed"].contains(&s)) {
        return Err(ApiError::field(
            "status",
            "must be one of: pending, succeeded, failed",
        ));
    }
    webhooks::get(&state.db.write, id).await?;
    let before = page.decode(webhooks::decode_delivery_cursor)?;
    let rows = webhooks::deliveries(&state.db.write, id, status, before, page.limit).await?;
    Ok(Json(state.cursors.sign_page(rows)))
}

#[derive(Serialize, utoipa::ToSchema)]
struct DeliveryWithAttempts {
    #[serde(flatten)]
    delivery: DeliveryRow,
    /// Every attempt, first first: status code, duration, error, the start of the answer.
    attempt_log: Vec<AttemptRow>,
}

/// One delivery with every attempt.
#[utoipa::path(
    get,
    path = "/webhook-deliveries/{id}",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "The delivery and its attempts", body = DeliveryWithAttempts),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
async fn delivery(
    State(state): State<AppState>,
    _: Authed<Admin>,
    Path(id): Path<Uuid>,
) -> ApiResult<impl IntoResponse> {
    let delivery = webhooks::delivery(&state.db.write, id).await?;
    let mut attempt_log = webhooks::attempts(&state.db.write, id).await?;
    // A first-try success is recorded on the delivery itself (no attempt row is written for
    // the happy path).
    if attempt_log.is_empty() && delivery.status == "succeeded" {
        attempt_log.push(AttemptRow {
            attempt: 1,
            started_at: delivery.created_at,
            duration_ms: delivery.last_duration_ms.unwrap_or(0),
            status_code: delivery.last_status_code,
            error: None,
            response_excerpt: delivery.last_excerpt.clone(),
        });
    }
    Ok(Json(DeliveryWithAttempts {
        delivery,
        attempt_log,
    }))
}

/// Sends a delivery again now (same event id and body); one more attempt if it had used all.
#[utoipa::path(
    post,
    path = "/webhook-deliveries/{id}/retry",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Delivery id")),
    responses(
        (status = 202, description = "Queued for delivery", body = DeliveryRow),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 409, description = "`idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the Idempotency-Key was used for another request", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
async fn retry(
    State(state): State<AppState>,
    who: Authed<Admin>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    BodilessKey(key): BodilessKey,
) -> ApiResult<Response> {
    let done = app_webhooks::retry(
        &state,
        &meta.actor(&who),
        who.user_id,
        id,
        key.as_ref(),
        |d| answer(StatusCode::ACCEPTED, json!(d), Vec::new()),
    )
    .await?;
    Ok(respond(done))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// Events with a greater `sequence` (default 0: the oldest kept).
    after_sequence: Option<i64>,
    /// Only this event type.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// 1..1000 (default 100).
    limit: Option<i64>,
}

/// One event as POSTed to endpoints.
#[derive(Serialize, utoipa::ToSchema)]
struct WebhookEvent {
    id: Uuid,
    /// Gap-free and increasing over all events.
    sequence: i64,
    #[serde(rename = "type")]
    kind: String,
    created_at: DateTime<Utc>,
    /// The changed object (e.g. the order, as `GET` returns it), as stored.
    #[schema(value_type = Object)]
    data: Box<RawValue>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct EventList {
    items: Vec<WebhookEvent>,
    /// Pass as `after_sequence` for the next page (the last item's sequence).
    next_after_sequence: Option<i64>,
}

/// Published events in `sequence` order, for a receiver to reconcile what it may have missed
/// (kept `EVENT_RETENTION_DAYS`).
#[utoipa::path(
    get,
    path = "/events",
    tag = "webhooks",
    security(("bearer" = [])),
    params(EventsQuery),
    responses(
        (status = 200, description = "Events after `after_sequence`", body = EventList),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
    )
)]
async fn events(
    State(state): State<AppState>,
    _: Authed<Admin>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<impl IntoResponse> {
    let after = q.after_sequence.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::field("after_sequence", "must be 0 or more"));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            "must be an integer from 1 to 1000",
        ));
    }
    let kind = q.kind.as_deref();
    if kind.is_some_and(|k| !app_webhooks::EVENT_TYPES.contains(&k)) {
        return Err(ApiError::field("type", "is not an event type"));
    }
    let rows = outbox::wire_after(&state.db.write, after, kind, limit).await?;
    let next_after_sequence = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.seq));
    let items = rows
        .into_iter()
        .map(|e| WebhookEvent {
            id: e.event_id,
            sequence: e.seq,
            kind: e.topic,
            created_at: e.created_at,
            // PostgreSQL's JSON text is valid JSON.
            data: RawValue::from_string(e.data).unwrap_or_else(|_| RawValue::NULL.to_owned()),
        })
        .collect();
    Ok(Json(EventList {
        items,
        next_after_sequence: next_after_sequence.flatten(),
    }))
}
