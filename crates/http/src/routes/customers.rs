//! Customers: created at the till (`till_app::customers`), found by phone (normalised to E.164, exact match on the
//! unique index), read by staff or by the customer themself.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use till_app::customers::CustomerInput;
use till_db::cursor::Page;
use till_db::customers::CustomerRow;
use till_db::{customers, DbError};
use till_domain::Phone;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::idempotency::{answer, location, respond};
use crate::extract::{
    AnyUser, Authed, CashierPlus, Json, MaybeIdempotent, Query, RequestMeta, StaffSide,
};
use crate::openapi::schemas::ErrorBody;
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(find, create))
        .routes(routes!(read))
}

/// Creates a customer record (phone normalised to E.164, unique).
#[utoipa::path(
    post,
    path = "/customers",
    tag = "customers",
    security(("bearer" = [])),
    request_body = CustomerInput,
    responses(
        (status = 201, description = "Created", body = CustomerRow,
            headers(("Location" = String, description = "The customer's URL"))),
        (status = 403, description = "`forbidden`: cashiers, managers and admins only", body = ErrorBody),
        (status = 409, description = "`already_exists`: a customer has this phone", body = ErrorBody),
    )
)]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct FindParams {
    /// Any spelling; matched exactly after normalisation to E.164.
    #[param(required = true)]
    phone: Option<String>,
}

/// Look-up by phone only: customers are never listed or searched by partial text.
#[utoipa::path(
    get,
    path = "/customers",
    tag = "customers",
    security(("bearer" = [])),
    params(FindParams),
    responses(
        (status = 200, description = "The customer with this phone, if any (one page)", body = Page<CustomerRow>),
        (status = 403, description = "`forbidden`: staff only", body = ErrorBody),
    )
)]
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
#[utoipa::path(
    get,
    path = "/customers/{id}",
    tag = "customers",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Customer id")),
    responses(
        (status = 200, description = "The customer", body = CustomerRow),
        (status = 404, description = "`not_found` (also another customer's record)", body = ErrorBody),
    )
)]
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
