//! Customers: created at the till (`till_app::customers`), found by phone (normalised to E.164, exact match on the
//! unique index), read by staff or by the customer themself.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use till_app::customers::CustomerInput;
use till_db::{customers, DbError};
use till_domain::Phone;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::idempotency::{answer, location, respond};
use crate::extract::{
    AnyUser, Authed, CashierPlus, Json, MaybeIdempotent, Query, RequestMeta, StaffSide,
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/customers", get(find).post(create))
        .route("/customers/{id}", get(read))
}

async fn create(
    State(state): State<AppState>,
    who: Authed<CashierPlus>,
    meta: RequestMeta,
    idem: MaybeIdempotent<CustomerInput>,
) -> ApiResult<Response> {
    let done = till_app::customers::create(
        &state,
        &meta.actor(&who),
        who.user_id,
        &idem.body,
        idem.key.as_ref(),
        |customer| {
            answer(
                StatusCode::CREATED,
                json!(customer),
                location(&format!("/api/v1/customers/{}", customer.id)),
            )
        },
    )
    .await?;
    Ok(respond(done))
}

#[derive(Deserialize)]
struct FindParams {
    phone: Option<String>,
}

/// Look-up by phone only: customers are never listed or searched by partial text.
async fn find(
    State(state): State<AppState>,
    _: Authed<StaffSide>,
    Query(params): Query<FindParams>,
) -> ApiResult<Response> {
    let Some(raw) = params.phone.as_deref() else {
        return Err(ApiError::field("phone", "is required"));
    };
    let phone = Phone::parse(raw, &state.config.shop.default_calling_code)
        .map_err(|e| ApiError::field("phone", &e.to_string()))?;
    let mut conn = state.db.write.acquire().await.map_err(DbError::from)?;
    let found = customers::find_by_phone(&mut conn, phone.as_str()).await?;
    let items: Vec<_> = found.into_iter().collect();
    Ok(Json(json!({ "items": items, "next_cursor": null })).into_response())
}

/// Staff read any customer; a customer reads only their own record (anyone else's is 404).
async fn read(
    State(state): State<AppState>,
    who: Authed<AnyUser>,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    if !who.role.is_staff_side() && who.customer_id != Some(id) {
        return Err(ApiError::not_found());
    }
    let customer = customers::get(&state.db.write, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(customer).into_response())
}
