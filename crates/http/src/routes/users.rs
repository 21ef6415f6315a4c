//! Staff accounts: admin-only create, list and update; the first admin from the environment.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, patch};
use axum::Router;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use till_db::users::{self, UserPatch, UserRow};
use till_db::{audit, customers};
use till_domain::{Email, FieldErrors, Password, Role};
use uuid::Uuid;

use crate::auth::{password, session};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Admin, Authed, Json, PageQuery, RequestMeta};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{id}", patch(update).get(read))
}

/// The public shape of a user; never the password hash.
#[derive(Debug, Serialize)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub phone: Option<String>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    email: String,
    password: String,
    name: String,
    role: Role,
}

/// Validates the parts every account has; returns (email, trimmed name).
pub(crate) fn check_account(
    email: &str,
    password: &str,
    name: &str,
    errs: &mut FieldErrors,
) -> Option<(Email, String)> {
    let email = Email::parse(email)
        .map_err(|e| errs.add("email", e.to_string()))
        .ok();
    if let Err(e) = Password::check(password) {
        errs.add("password", e.to_string());
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        errs.add("name", "must be 1 to 200 characters");
    }
    email.map(|e| (e, name.to_owned()))
}

async fn create(
    State(state): State<AppState>,
    who: Authed<Admin>,
    meta: RequestMeta,
    Json(body): Json<NewUserBody>,
) -> ApiResult<impl IntoResponse> {
    let mut errs = FieldErrors::default();
    let checked = check_account(&body.email, &body.password, &body.name, &mut errs);
    let Some((email, name)) = checked.filter(|_| errs.is_empty()) else {
        return Err(ApiError::validation(errs));
    };
    let hash = password::hash(body.password)
        .await
        .map_err(ApiError::internal)?;
    let mut tx = state
        .db
        .write
        .begin()
        .await
        .map_err(till_db::DbError::from)?;
    let user = insert_account(&mut tx, &email, &hash, &name, body.role).await?;
    audit::record(
        &mut tx,
        &meta.actor(&who),
        "user.create",
        "user",
        user.id,
        json!({"email": user.email, "role": user.role}),
    )
    .await?;
    tx.commit().await.map_err(till_db::DbError::from)?;
    Ok((StatusCode::CREATED, Json(User::from(user))))
}

async fn list(
    State(state): State<AppState>,
    _: Authed<Admin>,
    page: PageQuery,
) -> ApiResult<impl IntoResponse> {
    let after = page.decode(users::decode_cursor)?;
    let rows = users::list(&state.db.write, after, page.limit).await?;
    Ok(Json(rows.map(User::from)))
}

async fn read(
    State(state): State<AppState>,
    _: Authed<Admin>,
    Path(id): Path<Uuid>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(User::from(users::get(&state.db.write, id).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    role: Option<Role>,
    active: Option<bool>,
    name: Option<String>,
}

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
    // Tokens and sessions carry the role; a deactivated or re-roled user signs in again.
    if after.role != before.role || !after.active {
        session::end_all(&state.store, id).await?;
    }
    Ok(Json(User::from(after)))
}

/// Inserts a user of `role`; a customer login gets its customer record in the same transaction.
async fn insert_account(
    tx: &mut till_db::PgConnection,
    email: &Email,
    hash: &str,
    name: &str,
    role: Role,
) -> Result<UserRow, till_db::DbError> {
    let customer_id = if role == Role::Customer {
        Some(
            customers::insert(tx, name, None, Some(email.as_str()))
                .await?
                .id,
        )
    } else {
        None
    };
    users::insert(
        tx,
        users::NewUser {
            email: email.as_str(),
            password_hash: hash,
            name,
            phone: None,
            role: role.as_str(),
            customer_id,
        },
    )
    .await
}

/// Creates the first admin from `ADMIN_EMAIL`/`ADMIN_PASSWORD` when no admin exists yet.
/// Returns whether one was created.
pub async fn bootstrap_admin(state: &AppState) -> anyhow::Result<bool> {
    let (Some(email), Some(pass)) = (&state.config.admin_email, &state.config.admin_password)
    else {
        return Ok(false);
    };
    create_admin(state, email, pass.expose_secret(), false).await
}

/// Creates an admin account (the `create-admin` subcommand and the bootstrap). Unless `always`,
/// does nothing when an admin already exists.
pub async fn create_admin(
    state: &AppState,
    email: &str,
    pass: &str,
    always: bool,
) -> anyhow::Result<bool> {
    if !always && users::any_admin(&state.db.write).await? {
        return Ok(false);
    }
    create_account(state, email, pass, "Administrator", Role::Admin).await
}

/// Creates an account unless the email is taken (then nothing changes); returns whether it did.
pub async fn create_account(
    state: &AppState,
    email: &str,
    pass: &str,
    name: &str,
    role: Role,
) -> anyhow::Result<bool> {
    let mut errs = FieldErrors::default();
    let checked = check_account(email, pass, name, &mut errs);
    let Some((email, name)) = checked.filter(|_| errs.is_empty()) else {
        anyhow::bail!("invalid account {email}: {errs}");
    };
    if users::find_by_email(&state.db.write, email.as_str())
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let hash = password::hash(pass.to_owned()).await?;
    let mut tx = state.db.write.begin().await?;
    match insert_account(&mut tx, &email, &hash, &name, role).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(true)
        }
        // Another instance created the same account at the same moment.
        Err(till_db::DbError::Unique(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
