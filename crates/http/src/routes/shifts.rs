//! Register shifts: open, join, paid-in/paid-out, the blind close and the X/Z reports
//! (`till_app::shifts` holds the rules).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use till_app::shifts::{self, CloseInput, MovementInput, OpenInput};
use till_db::cursor::Page;
use till_db::shifts::{CashMovement, ListFilter, Report, Shift};
use till_domain::FieldErrors;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::orders::caller;
use super::orders::read::instant;
use crate::error::{ApiError, ApiResult};
use crate::extract::idempotency::{answer, etag_header, location, respond, BodilessKey};
use crate::extract::{Authed, CashierPlus, Json, MaybeIdempotent, PageQuery, Query, RequestMeta};
use crate::openapi::schemas::{ErrorBody, PageParams};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, open))
        .routes(routes!(current))
        .routes(routes!(read))
        .routes(routes!(join))
        .routes(routes!(cash_movement))
        .routes(routes!(close))
        .routes(routes!(report))
}

fn shift_answer(status: StatusCode, s: &Shift) -> till_app::idempotency::Answer {
    answer(status, json!(s), etag_header(s.version))
}

/// Opens a shift on a register with an opening float; the caller is on it.
#[utoipa::path(
    post,
    path = "/shifts",
    tag = "shifts",
    security(("bearer" = [])),
    request_body = OpenInput,
    responses(
        (status = 201, description = "The open shift", body = Shift, headers(("Location" = String), ("ETag" = String))),
        (status = 403, description = "`forbidden`: cashiers and above", body = ErrorBody),
        (status = 409, description = "`conflict`: the register or the caller already has an open shift (`details.open_shift_id`)", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
async fn open(
    State(state): State<AppState>,
    who: Authed<CashierPlus>,
    meta: RequestMeta,
    idem: MaybeIdempotent<OpenInput>,
) -> ApiResult<Response> {
    let done = shifts::open(
        &state,
        &caller(&who),
        &meta.actor(&who),
        &idem.body,
        idem.key.as_ref(),
        |s| {
            let mut headers = location(&format!("/api/v1/shifts/{}", s.id));
            headers.extend(etag_header(s.version));
            answer(StatusCode::CREATED, json!(s), headers)
        },
    )
    .await?;
    Ok(respond(done))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    #[param(value_type = Option<Uuid>)]
    register_id: Option<String>,
    /// `open` or `closed`.
    status: Option<String>,
    /// Opened at or after: an RFC 3339 time, or `YYYY-MM-DD` (a day in `STORE_TIMEZONE`).
    from: Option<String>,
    /// Opened at or before: an RFC 3339 time, or `YYYY-MM-DD` (that whole day included).
    to: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

fn parse_filter(p: &ListParams, tz: chrono_tz::Tz) -> ApiResult<ListFilter> {
    let mut errs = FieldErrors::new();
    let register_id = given(&p.register_id).and_then(|s| {
        s.parse::<Uuid>()
            .map_err(|_| errs.add("register_id", "must be a UUID"))
            .ok()
    });
    let status = match given(&p.status) {
        None => None,
        Some("open") => Some("open"),
        Some("closed") => Some("closed"),
        Some(_) => {
            errs.add("status", "must be open or closed");
            None
        }
    };
    let mut when = |name: &str, v: &Option<String>, end: bool| {
        let t = given(v).map(|s| instant(s, tz, end))?;
        errs.check(name, t)
    };
    let from = when("from", &p.from, false);
    let before = when("to", &p.to, true);
    if let (Some(a), Some(b)) = (from, before) {
        if a >= b {
            errs.add("to", "must be after from");
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    Ok(ListFilter {
        register_id,
        status,
        from,
        before,
        opened_by: None,
    })
}

/// Shifts, newest opened first: managers see all, a cashier the shifts they opened.
#[utoipa::path(
    get,
    path = "/shifts",
    tag = "shifts",
    security(("bearer" = [])),
    params(ListParams, PageParams),
    responses(
        (status = 403, description = "`forbidden`: cashiers and above", body = ErrorBody),
        (status = 200, description = "A page of shifts", body = Page<Shift>),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    who: Authed<CashierPlus>,
    Query(params): Query<ListParams>,
    page: PageQuery,
) -> ApiResult<impl IntoResponse> {
    let c = caller(&who);
    let mut filter = parse_filter(&params, state.config.shop.store_timezone)?;
    filter.opened_by = shifts::list_scope(&c);
    let after = page.decode(till_db::shifts::decode_cursor)?;
    let rows = till_db::shifts::list(&state.db.write, &filter, after, page.limit).await?;
    let page = state.cursors.sign_page(rows);
    let items = shifts::views(&state, &c, page.items).await?;
    Ok(Json(Page {
        items,
        next_cursor: page.next_cursor,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CurrentParams {
    /// The register; absent: the open shift the caller is on.
    register_id: Option<Uuid>,
}

/// The open shift of a register (or the caller's own); 404 when there is none.
#[utoipa::path(
    get,
    path = "/shifts/current",
    tag = "shifts",
    security(("bearer" = [])),
    params(CurrentParams),
    responses(
        (status = 403, description = "`forbidden`: cashiers and above", body = ErrorBody),
        (status = 200, description = "The open shift", body = Shift, headers(("ETag" = String))),
        (status = 404, description = "`not_found`: no open shift", body = ErrorBody),
    )
)]
async fn current(
    State(state): State<AppState>,
    who: Authed<CashierPlus>,
    Query(params): Query<CurrentParams>,
) -> ApiResult<Response> {
    let s = shifts::current(&state, &caller(&who), params.register_id).await?;
    Ok(respond(shift_answer(StatusCode::OK, &s)))
}

/// One shift (a cashier: only shifts they opened or joined).
#[utoipa::path(
    get,
    path = "/shifts/{id}",
    tag = "shifts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Shift id")),
    responses(
        (status = 403, description = "`forbidden`: cashiers and above", body = ErrorBody),
        (status = 200, description = "The shift", body = Shift, headers(("ETag" = String))),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
async fn read(
    State(state): State<AppState>,
    who: Authed<CashierPlus>,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let s = shifts::get(&state, &caller(&who), id).await?;
    Ok(respond(shift_answer(StatusCode::OK, &s)))
}

/// Puts the caller on an open shift.
#[utoipa::path(
    post,
    path = "/shifts/{id}/join",
    tag = "shifts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Shift id")),
    responses(
        (status = 403, description = "`forbidden`: cashiers and above", body = ErrorBody),
        (status = 200, description = "The shift with the caller on it", body = Shift),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`: the caller is on another open shift; `invalid_transition`: the shift is closed; `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the Idempotency-Key was used for another request", body = ErrorBody),
    )
)]
async fn join(
    State(state): State<AppState>,
    who: Authed<CashierPlus>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    BodilessKey(key): BodilessKey,
) -> ApiResult<Response> {
    // Joining twice changes nothing more, but a retry must still get the first answer: the
    // shift may have been closed meanwhile (409), and each join is audited.
    let done = shifts::join(
        &state,
        &caller(&who),
        &meta.actor(&who),
        id,
        key.as_ref(),
        |s| shift_answer(StatusCode::OK, s),
    )
    .await?;
    Ok(respond(done))
}

/// A paid-in or paid-out, with its reason.
#[utoipa::path(
    post,
    path = "/shifts/{id}/cash-movements",
    tag = "shifts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Shift id")),
    request_body = MovementInput,
    responses(
        (status = 201, description = "The movement and the shift after it", body = CashMovementResult),
        (status = 403, description = "`forbidden`: not the shift's cashier or a manager", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`: a paid-out above the cash in the drawer; `invalid_transition`: the shift is closed", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
async fn cash_movement(
    State(state): State<AppState>,
    who: Authed<CashierPlus>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    idem: MaybeIdempotent<MovementInput>,
) -> ApiResult<Response> {
    let done = shifts::cash_movement(
        &state,
        &caller(&who),
        &meta.actor(&who),
        id,
        &idem.body,
        idem.key.as_ref(),
        |m, s| {
            answer(
                StatusCode::CREATED,
                json!({"movement": m, "shift": s}),
                etag_header(s.version),
            )
        },
    )
    .await?;
    Ok(respond(done))
}

/// `{movement, shift}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CashMovementResult {
    movement: CashMovement,
    shift: Shift,
}

/// Closes the shift with the cash counted (blind for a cashier: the answer shows the expected
/// cash and the difference). Beyond `SHIFT_MAX_DIFFERENCE_CENTS` a manager must close.
#[utoipa::path(
    post,
    path = "/shifts/{id}/close",
    tag = "shifts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Shift id")),
    request_body = CloseInput,
    responses(
        (status = 200, description = "The closed shift", body = Shift),
        (status = 403, description = "`forbidden`: not the shift's cashier or a manager, or a difference only a manager may close with (`details.difference_cents`)", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: already closed", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    )
)]
async fn close(
    State(state): State<AppState>,
    who: Authed<CashierPlus>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    idem: MaybeIdempotent<CloseInput>,
) -> ApiResult<Response> {
    let done = shifts::close(
        &state,
        &caller(&who),
        &meta.actor(&who),
        id,
        &idem.body,
        idem.key.as_ref(),
        |s| shift_answer(StatusCode::OK, s),
    )
    .await?;
    Ok(respond(done))
}

/// The X report of an open shift, or the Z report of a closed one (stored at the close, so it
/// reads the same every time).
#[utoipa::path(
    get,
    path = "/shifts/{id}/report",
    tag = "shifts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Shift id")),
    responses(
        (status = 403, description = "`forbidden`: cashiers and above", body = ErrorBody),
        (status = 200, description = "The report", body = Report),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
async fn report(
    State(state): State<AppState>,
    who: Authed<CashierPlus>,
    Path(id): Path<Uuid>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(shifts::report(&state, &caller(&who), id).await?))
}
