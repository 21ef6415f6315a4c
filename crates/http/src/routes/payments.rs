//! Online payments: payment intents (`POST /orders/{id}/payment-intents`), the provider's
//! signed callback (`POST /payment-provider/events`) and, in development only, a simulated
//! provider (`POST /dev/payment-provider/simulate`) that signs and delivers a callback through
//! the very same code path. `till_app::orders::create_intent` and `till_app::payments` hold the
//! rules.
//!
//! The callback is routed outside the per-user/per-IP rate limiter (see [`crate::app`]): it has
//! no user, its authentication is the signature, and a provider retrying a burst of events must
//! not be throttled into giving up.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use till_app::orders::IntentInput;
use till_app::payments::{self, EventKind, ProviderEvent, Settled, SIGNATURE_HEADER};
use till_db::payment_intents;
use till_db::DbError;
use uuid::Uuid;

use super::orders::{caller, can_see};
use crate::error::{ApiError, ApiResult};
use crate::extract::idempotency::{answer, respond};
use crate::extract::{parse_json, AnyUser, Authed, Idempotent, Json};
use crate::openapi::schemas::{ErrorBody, IntentCreated};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Routes under `/api/v1` (rate-limited, authenticated).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_intent))
}

/// The simulated provider, mounted under `/api/v1` in development only.
pub fn dev_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(simulate))
}

/// The provider's callback, mounted under `/api/v1` but outside the rate limiter.
pub fn provider_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(provider_event))
}

/// A payment intent for the order's balance due, to be confirmed by the payment provider.
#[utoipa::path(
    post,
    path = "/orders/{id}/payment-intents",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id"), ("Idempotency-Key" = String, Header, description = "Required")),
    request_body = IntentInput,
    responses(
        (status = 201, description = "The intent (`status: requires_confirmation`)", body = IntentCreated),
        (status = 400, description = "`idempotency_key_required`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such order, or not the caller's", body = ErrorBody),
        (status = 409, description = "`conflict`: nothing due, or the order is cancelled or delivered; `idempotency_key_in_use`", body = ErrorBody),
    )
)]
async fn create_intent(
    State(state): State<AppState>,
    who: Authed<AnyUser>,
    Path(id): Path<Uuid>,
    idem: Idempotent<IntentInput>,
) -> ApiResult<Response> {
    let done = till_app::orders::create_intent(&state, &caller(&who), id, &idem.key, |intent| {
        answer(
            StatusCode::CREATED,
            json!({
                "id": intent.id,
                "order_id": intent.order_id,
                "amount_cents": intent.amount_cents,
                "status": intent.status,
                "created_at": intent.created_at,
            }),
            Vec::new(),
        )
    })
    .await?;
    Ok(respond(done))
}

/// The payment provider's signed callback: `Till-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
/// "t.body">`, at most 300 s old. `succeeded` records one card payment, exactly once however
/// often it is delivered (a replay answers 200 with the same payment).
#[utoipa::path(
    post,
    path = "/payment-provider/events",
    tag = "orders",
    params(("Till-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + \".\" + body)>`")),
    request_body = ProviderEvent,
    responses(
        (status = 200, description = "The intent after the event, and its payment", body = Settled),
        (status = 401, description = "`unauthorized`: signature missing, wrong or older than 300 s", body = ErrorBody),
        (status = 404, description = "`not_found`: no such intent", body = ErrorBody),
        (status = 409, description = "`conflict`: the order was cancelled, or a failure after success", body = ErrorBody),
    )
)]
pub async fn provider_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or(""));
    deliver(&state, signature, &body).await
}

/// The provider's signing secret (never logged, never sent).
fn webhook_secret(state: &AppState) -> &[u8] {
    state
        .config
        .payments
        .webhook_secret
        .expose_secret()
        .as_bytes()
}

/// The callback's whole handling, shared by the real route and the simulator.
async fn deliver(state: &AppState, signature: Option<&str>, body: &[u8]) -> ApiResult<Response> {
    payments::verify(
        webhook_secret(state),
        signature,
        body,
        chrono::Utc::now().timestamp(),
    )?;
    let event: ProviderEvent = parse_json(body)?;
    let settled = payments::settle(state, &event).await?;
    Ok((StatusCode::OK, Json(settled)).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SimulateBody {
    intent_id: Uuid,
    outcome: Outcome,
}

#[derive(Deserialize, Clone, Copy, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Succeeded,
    Failed,
}

/// Development only (404 in production): plays the provider for an intent the caller may see.
/// The secret never leaves the server: the body is signed here and handed to [`deliver`].
#[utoipa::path(
    post,
    path = "/dev/payment-provider/simulate",
    tag = "orders",
    security(("bearer" = [])),
    request_body = SimulateBody,
    responses(
        (status = 200, description = "What the provider's callback answered", body = Settled),
        (status = 404, description = "`not_found`: no such intent, not the caller's, or not development", body = ErrorBody),
        (status = 409, description = "`conflict`", body = ErrorBody),
    )
)]
async fn simulate(
    State(state): State<AppState>,
    who: Authed<AnyUser>,
    Json(b): Json<SimulateBody>,
) -> ApiResult<Response> {
    let intent = {
        let mut conn = state.db.write.acquire().await.map_err(DbError::from)?;
        let intent = payment_intents::get(&mut conn, b.intent_id).await?;
        let order = till_db::orders::get(&mut conn, intent.order_id).await?;
        if !can_see(&who, order.customer_id) {
            return Err(ApiError::not_found());
        }
        intent
    };
    let event = ProviderEvent {
        kind: match b.outcome {
            Outcome::Succeeded => EventKind::Succeeded,
            Outcome::Failed => EventKind::Failed,
        },
        intent_id: intent.id,
        amount_cents: intent.amount_cents,
        reference: Some(format!("sim_{}", intent.id.simple())),
    };
    let body = serde_json::to_vec(&event).map_err(ApiError::internal)?;
    let signature = payments::sign(
        webhook_secret(&state),
        chrono::Utc::now().timestamp(),
        &body,
    );
    deliver(&state, Some(&signature), &body).await
}
