//! Registers: created and changed by admins, listed for the tills (`till_app::registers` holds
//! the rules).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use till_app::registers::{RegisterInput, RegisterPatch};
use till_db::cursor::Page;
use till_db::registers::{self, Register};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::idempotency::{answer, etag_header, location, respond};
use crate::extract::{
    Admin, Authed, CashierPlus, IfMatch, Json, MaybeIdempotent, PageQuery, RequestMeta,
};
use crate::openapi::schemas::{ErrorBody, PageParams};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(update))
}

/// Adds a register (a till's cash drawer).
#[utoipa::path(
    post,
    path = "/registers",
    tag = "shifts",
    security(("bearer" = [])),
    request_body = RegisterInput,
    responses(
        (status = 201, description = "Created", body = Register,
            headers(("Location" = String), ("ETag" = String))),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 409, description = "`idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 422, description = "`validation_failed` (e.g. a name another register has)", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    who: Authed<Admin>,
    meta: RequestMeta,
    idem: MaybeIdempotent<RegisterInput>,
) -> ApiResult<Response> {
    let done = till_app::registers::create(
        &state,
        &meta.actor(&who),
        who.user_id,
        &idem.body,
        idem.key.as_ref(),
        |r| {
            let mut headers = location(&format!("/api/v1/registers/{}", r.id));
            headers.extend(etag_header(r.version));
            answer(StatusCode::CREATED, json!(r), headers)
        },
    )
    .await?;
    Ok(respond(done))
}

/// Every register, by name.
#[utoipa::path(
    get,
    path = "/registers",
    tag = "shifts",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of registers", body = Page<Register>),
        (status = 403, description = "`forbidden`: cashiers and above", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    _: Authed<CashierPlus>,
    page: PageQuery,
) -> ApiResult<impl IntoResponse> {
    let after = page.decode(registers::decode_cursor)?;
    let rows = registers::list(&state.db.write, after, page.limit).await?;
    Ok(Json(state.cursors.sign_page(rows)))
}

/// Renames or (de)activates a register; one with an open shift cannot be deactivated.
#[utoipa::path(
    patch,
    path = "/registers/{id}",
    tag = "shifts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Register id"), ("If-Match" = Option<String>, Header, description = "`\"<version>\"`: 412 unless the register is still at that version")),
    request_body = RegisterPatch,
    responses(
        (status = 200, description = "The register after the change", body = Register,
            headers(("ETag" = String))),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`: the register has an open shift", body = ErrorBody),
        (status = 412, description = "`precondition_failed`", body = ErrorBody),
    )
)]
async fn update(
    State(state): State<AppState>,
    who: Authed<Admin>,
    meta: RequestMeta,
    if_match: IfMatch,
    Path(id): Path<Uuid>,
    Json(body): Json<RegisterPatch>,
) -> ApiResult<Response> {
    let r = till_app::registers::update(&state, &meta.actor(&who), id, &body, &if_match.0).await?;
    let headers = etag_header(r.version);
    Ok((StatusCode::OK, headers_map(headers), Json(r)).into_response())
}

fn headers_map(h: Vec<(axum::http::HeaderName, axum::http::HeaderValue)>) -> axum::http::HeaderMap {
    h.into_iter().collect()
}
