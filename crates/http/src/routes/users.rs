//! Accounts: admin-only create, list and update (the rules of creating one are in
//! `till_app::accounts`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;
use till_app::accounts::{self, NewAccount};
use till_db::audit;
use till_db::cursor::Page;
use till_db::users::{self, UserPatch, UserRow};
use till_domain::Role;
use uuid::Uuid;

use crate::auth::session;
use crate::error::{ApiError, ApiResult};
use crate::extract::idempotency::{answer, respond};
use crate::extract::{Admin, Authed, Json, MaybeIdempotent, PageQuery, RequestMeta};
use crate::openapi::schemas::{ErrorBody, PageParams};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(update, read))
}

/// The public shape of a user; never the password hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
    #[schema(value_type = Role)]
    pub role: String,
    pub active: bool,
    pub customer_id: Option<Uuid>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<UserRow> for User {
    fn from(u: UserRow) -> Self {
        User {
            id: u.id,
            email: u.email,
            name: u.name,
            phone: u.phone,
            role: u.role,
            active: u.active,
            customer_id: u.customer_id,
            created_at: u.created_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewUser)]
struct NewUserBody {
    email: String,
    password: String,
    name: String,
    role: Role,
}

/// Creates a staff (or customer) account.
#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    security(("bearer" = [])),
    request_body = NewUserBody,
    responses(
        (status = 201, description = "Created", body = User),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 409, description = "`already_exists`: the email is taken", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    who: Authed<Admin>,
    meta: RequestMeta,
    idem: MaybeIdempotent<NewUserBody>,
) -> ApiResult<impl IntoResponse> {
    let body = &idem.body;
    let account = NewAccount {
        email: &body.email,
        password: &body.password,
        name: &body.name,
        role: body.role,
    };
    let done = accounts::create_user(
        &state,
        &meta.actor(&who),
        who.user_id,
        account,
        idem.key.as_ref(),
        |user| {
            answer(
                StatusCode::CREATED,
                json!(User::from(user.clone())),
                Vec::new(),
            )
        },
    )
    .await?;
    Ok(respond(done))
}

/// Every account, oldest first.
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of users", body = Page<User>),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    _: Authed<Admin>,
    page: PageQuery,
) -> ApiResult<impl IntoResponse> {
    let after = page.decode(users::decode_cursor)?;
    let rows = users::list(&state.db.write, after, page.limit).await?;
    Ok(Json(state.cursors.sign_page(rows).map(User::from)))
}

/// One account.
#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
async fn read(
    State(state): State<AppState>,
    _: Authed<Admin>,
    Path(id): Path<Uuid>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(User::from(users::get(&state.db.write, id).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UserPatch)]
struct PatchBody {
    role: Option<Role>,
    active: Option<bool>,
    name: Option<String>,
}

/// Changes role, active flag or name; deactivating or re-roling ends that user's sessions.
#[utoipa::path(
    patch,
    path = "/users/{id}",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")),
    request_body = PatchBody,
    responses(
        (status = 200, description = "The user after the change", body = User),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`: this would remove the last active admin", body = ErrorBody),
    )
)]
async fn update(
    State(state): State<AppState>,
    who: Authed<Admin>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Json(body): Json<PatchBody>,
) -> ApiResult<impl IntoResponse> {
    let name = body.name.as_deref().map(str::trim);
    if name.is_some_and(|n| n.is_empty() || n.chars().count() > 200) {
        return Err(ApiError::field("name", "must be 1 to 200 characters"));
    }
    let mut tx = state
        .db
        .write
        .begin()
        .await
        .map_err(till_db::DbError::from)?;
    let before = users::get_for_update(&mut tx, id).await?;
    let demotes_admin = before.role == "admin"
        && before.active
        && (body.active == Some(false) || body.role.is_some_and(|r| r != Role::Admin));
    if demotes_admin && users::active_admins(&mut tx).await? <= 1 {
        return Err(ApiError::conflict(
            "conflict",
            "This is the last active admin; make another admin first.",
        ));
    }
    let after = users::update(
        &mut tx,
        id,
        UserPatch {
            role: body.role.map(|r| r.as_str()),
            active: body.active,
            name,
        },
    )
    .await?;
    audit::record(
        &mut tx,
        &meta.actor(&who),
        "user.update",
        "user",
        id,
        json!({"role": body.role.map(|r| r.as_str()), "active": body.active, "name": name}),
    )
    .await?;
    tx.commit().await.map_err(till_db::DbError::from)?;
    // Tokens and sessions carry the role; a deactivated or re-roled user signs in again. The
    // update bumped the user's epoch in the same transaction; publishing it before answering
    // kills every session issued under an older one on every instance, including one a racing
    // login is creating right now. If the store cannot take it, the answer is 503 (the change
    // is committed; repeating the PATCH publishes again), and the cached epoch expires within a
    // minute anyway, after which PostgreSQL's is read.
    if after.auth_epoch != before.auth_epoch {
        session::publish_epoch(&state.store, id, after.auth_epoch).await?;
        if let Err(e) = session::end_all(&state.store, &state.db, id).await {
            // Only housekeeping now: the epoch already revoked these sessions.
            tracing::warn!(error = %e, user_id = %id, "could not delete revoked sessions");
        }
    }
    Ok(Json(User::from(after)))
}
