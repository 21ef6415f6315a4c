//! Register, login, logout, me.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use till_db::{users, DbError};
use till_domain::Email;

use super::users::User;
use crate::auth::{password, session};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AnyUser, Authed, Json, RequestMeta};
use crate::layers::{set_rate_headers, RATE_WINDOW};
use crate::openapi::schemas::{ErrorBody, LoginResult, Me, UserEnvelope};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Registration)]
struct RegisterBody {
    email: String,
    password: String,
    name: String,
    phone: Option<String>,
}

/// Creates a customer login (role `customer`), linked to a customer record.
#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "auth",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "Registered", body = UserEnvelope),
        (status = 409, description = "`already_exists`: the email (or phone) is taken", body = ErrorBody),
    )
)]
async fn register(
    State(state): State<AppState>,
    Json(body): Json<RegisterBody>,
) -> ApiResult<Response> {
    let user = till_app::accounts::register_customer(
        &state,
        &body.email,
        &body.password,
        &body.name,
        body.phone.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user": User::from(user) })),
    )
        .into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = Login)]
struct LoginBody {
    email: String,
    password: String,
}

/// Signs in: a bearer token in the body and the session cookie (`till_session`).
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in", body = LoginResult,
            headers(("Set-Cookie" = String, description = "`till_session`: HttpOnly, SameSite=Lax"))),
        (status = 401, description = "`invalid_credentials` (wrong email or password), or `unauthorized` (deactivated)", body = ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    meta: RequestMeta,
    Json(body): Json<LoginBody>,
) -> ApiResult<Response> {
    let email = Email::parse(&body.email)
        .map(|e| e.as_str().to_owned())
        .unwrap_or_else(|_| body.email.trim().to_lowercase());
    // Password guessing is limited per client IP and per account, on every instance together.
    let limit = state.config.limits.login_per_min;
    let ip = meta.ip.map(|i| i.to_string()).unwrap_or_default();
    let by_ip = state
        .store
        .incr_window(&format!("rl:login:ip:{ip}"), RATE_WINDOW)
        .await;
    let by_email = state
        .store
        .incr_window(&format!("rl:login:email:{email}"), RATE_WINDOW)
        .await;
    let worst = [by_ip.ok(), by_email.ok()]
        .into_iter()
        .flatten()
        .max_by_key(|c| c.count);
    if let Some(c) = worst.filter(|c| c.count > limit) {
        let mut resp = ApiError::rate_limited(c.reset_secs).into_response();
        set_rate_headers(resp.headers_mut(), limit, c.count, c.reset_secs);
        return Ok(resp);
    }

    let user = users::find_by_email(&state.db.write, &email).await?;
    let ok = password::verify(
        body.password,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await
    .map_err(ApiError::internal)?;
    let user = match user {
        Some(u) if ok => u,
        _ => return Err(ApiError::invalid_credentials()),
    };
    if !user.active {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "This account is deactivated; ask an administrator.",
        ));
    }
    let ttl = state.config.auth.session_ttl;
    let (sid, sess) =
        session::create(&state.store, ttl, user.id, &user.role, user.customer_id).await?;
    let (token, _) = state
        .jwt
        .issue(user.id, &user.role, &sid)
        .map_err(ApiError::internal)?;
    let mut resp = Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": state.jwt.ttl.as_secs(),
        "csrf_token": sess.csrf_token,
        "user": User::from(user),
    }))
    .into_response();
    set_cookie(&state, resp.headers_mut(), &sid, ttl.as_secs());
    Ok(resp)
}

fn set_cookie(state: &AppState, headers: &mut HeaderMap, sid: &str, max_age: u64) {
    let secure = if state.config.auth.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    let v = format!(
        "{}={sid}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        session::COOKIE
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        headers.append(header::SET_COOKIE, v);
    }
}

/// Ends the session and revokes the presented token on every instance.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 204, description = "Signed out; the cookie is cleared"))
)]
async fn logout(State(state): State<AppState>, who: Authed<AnyUser>) -> ApiResult<Response> {
    session::end(&state.store, &who.session_id, who.user_id).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    set_cookie(&state, resp.headers_mut(), "", 0);
    Ok(resp)
}

/// The signed-in user.
#[utoipa::path(
    get,
    path = "/auth/me",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "The current user", body = Me))
)]
async fn me(State(state): State<AppState>, who: Authed<AnyUser>) -> ApiResult<Response> {
    let user = match users::get(&state.db.write, who.user_id).await {
        Ok(u) if u.active => u,
        Ok(_) | Err(DbError::NotFound) => return Err(ApiError::unauthorized()),
        Err(e) => return Err(e.into()),
    };
    // A page signed in by cookie learns its CSRF token again here (a new tab has lost it).
    let mut body = json!({ "user": User::from(user) });
    if let Some(csrf) = &who.cookie_csrf {
        body["csrf_token"] = json!(csrf);
    }
    Ok(Json(body).into_response())
}
