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
use axum::routing::post;
use axum::Router;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use till_app::orders::IntentInput;
use till_app::payments::{self, EventKind, ProviderEvent, SIGNATURE_HEADER};
use till_db::payment_intents;
use till_db::DbError;
use uuid::Uuid;

use super::orders::{caller, can_see};
use crate::error::{ApiError, ApiResult};
use crate::extract::idempotency::{answer, respond};
use crate::extract::{parse_json, AnyUser, Authed, Idempotent, Json};
use crate::state::AppState;

/// Where the provider delivers its callbacks (outside the rate-limited API router).
pub const PROVIDER_EVENTS_PATH: &str = "/api/v1/payment-provider/events";

/// Routes under `/api/v1` (rate-limited, authenticated).
pub fn router() -> Router<AppState> {
    Router::new().route("/orders/{id}/payment-intents", post(create_intent))
}

/// The simulated provider, mounted under `/api/v1` in development only.
pub fn dev_router() -> Router<AppState> {
    Router::new().route("/dev/payment-provider/simulate", post(simulate))
}

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

/// `POST /payment-provider/events`: verify the signature over the raw body, then settle.
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

/// The callback's whole handling, shared by the real route and the simulator.
async fn deliver(state: &AppState, signature: Option<&str>, body: &[u8]) -> ApiResult<Response> {
    let secret = state
        .config
        .payments
        .webhook_secret
        .expose_secret()
        .as_bytes();
    payments::verify(secret, signature, body, chrono::Utc::now().timestamp())?;
    let event: ProviderEvent = parse_json(body)?;
    let settled = payments::settle(state, &event).await?;
    Ok((StatusCode::OK, Json(settled)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulateBody {
    intent_id: Uuid,
    outcome: Outcome,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Succeeded,
    Failed,
}

/// Development only: plays the provider for an intent the caller may see. The secret never
/// leaves the server: the body is signed here and handed to [`deliver`].
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
    let secret = state
        .config
        .payments
        .webhook_secret
        .expose_secret()
        .as_bytes();
    let signature = payments::sign(secret, chrono::Utc::now().timestamp(), &body);
    deliver(&state, Some(&signature), &body).await
}
