//! Register, login, logout, me.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use till_app::accounts::Registration;
use till_cache::WindowCount;
use till_db::{users, DbError};
use till_domain::Email;

use super::users::User;
use crate::auth::{password, session};
use crate::error::{ApiError, ApiResult};
use crate::extract::idempotency::{answer, respond};
use crate::extract::{AnyUser, Authed, Json, MaybeIdempotent, RequestMeta};
use crate::layers::{bucket_key, ip_group, set_rate_headers, RATE_WINDOW};
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
    meta: RequestMeta,
    idem: MaybeIdempotent<RegisterBody>,
) -> ApiResult<Response> {
    let body = &idem.body;
    // Every registration counts (each costs an Argon2 hash and may create a customer record).
    let limit = state.config.limits.register_per_min;
    let key = bucket_key(&state, "reg:ip", &client_group(&meta));
    let c = count(&state, &key).await?;
    if c.count > limit {
        return Ok(limited(limit, c));
    }
    let registration = Registration {
        email: &body.email,
        password: &body.password,
        name: &body.name,
        phone: body.phone.as_deref(),
    };
    let done =
        till_app::accounts::register_customer(&state, registration, idem.key.as_ref(), |user| {
            answer(
                StatusCode::CREATED,
                json!({ "user": User::from(user.clone()) }),
                Vec::new(),
            )
        })
        .await?;
    Ok(respond(done))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = Login)]
struct LoginBody {
    email: String,
    password: String,
}

/// The client's per-IP bucket name (IPv6: its /64).
fn client_group(meta: &RequestMeta) -> String {
    meta.ip.map(ip_group).unwrap_or_default()
}

/// Counts one attempt in a bucket: shared by all instances, or per instance while Redis is
/// down. When not even that can count, the request is refused: these routes never run
/// unthrottled.
async fn count(state: &AppState, key: &str) -> ApiResult<WindowCount> {
    state
        .store
        .count_attempt(key, RATE_WINDOW)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "sign-in limits cannot be checked");
            ApiError::unavailable("Sign-in is unavailable right now; try again shortly.")
        })
}

fn limited(limit: u64, c: WindowCount) -> Response {
    let mut resp = ApiError::rate_limited(c.reset_secs).into_response();
    set_rate_headers(resp.headers_mut(), limit, c.count, c.reset_secs);
    resp
}

/// Signs in: a bearer token in the body and the session cookie (`till_session`).
///
/// Password guessing is limited by *failed* attempts, per account and per client IP, on every
/// instance together; successful logins do not count, so a shop's tills behind one address can
/// all sign in at opening time. Each attempt reserves a failure in both buckets before the
/// password is checked (so parallel guesses cannot all slip under the limit) and gives it back
/// when it turns out not to be one.
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
    // No address is that long: answer at once, touching no store.
    if body.email.trim().chars().count() > Email::MAX_LEN {
        return Err(ApiError::invalid_credentials());
    }
    let email = Email::parse(&body.email)
        .map(|e| e.as_str().to_owned())
        .unwrap_or_else(|_| body.email.trim().to_lowercase());
    let limits = &state.config.limits;
    let buckets = [
        (
            bucket_key(&state, "login:email", &email),
            limits.login_per_min,
        ),
        (
            bucket_key(&state, "login:ip", &client_group(&meta)),
            limits.login_ip_per_min,
        ),
    ];
    let mut counts = Vec::with_capacity(buckets.len());
    for (key, limit) in &buckets {
        match count(&state, key).await {
            Ok(c) => counts.push((key, *limit, c)),
            Err(e) => {
                refund(&state, counts.iter().map(|(k, _, _)| *k)).await;
                return Err(e);
            }
        }
    }
    if let Some((_, limit, c)) = counts.iter().find(|(_, limit, c)| c.count > *limit) {
        // Refused before any password check: not a failed attempt.
        let resp = limited(*limit, *c);
        refund(&state, counts.iter().map(|(k, _, _)| *k)).await;
        return Ok(resp);
    }

    let user = users::find_by_email(&state.db.write, &email).await;
    let user = match user {
        Ok(u) => u,
        Err(e) => {
            refund(&state, counts.iter().map(|(k, _, _)| *k)).await;
            return Err(e.into());
        }
    };
    let ok = password::verify(
        body.password,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await
    .map_err(ApiError::internal)?;
    let user = match user {
        Some(u) if ok => u,
        // A failed attempt: the reservations stand.
        _ => return Err(ApiError::invalid_credentials()),
    };
    refund(&state, counts.iter().map(|(k, _, _)| *k)).await;
    if !user.active {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "This account is deactivated; ask an administrator.",
        ));
    }
    let ttl = state.config.auth.session_ttl;
    // The session is issued under the epoch read with the user above (one statement): if a
    // deactivation or role change commits meanwhile, this session is dead on arrival.
    let created = session::create(
        &state.store,
        &state.db,
        ttl,
        user.id,
        &user.role,
        user.customer_id,
        user.auth_epoch,
    )
    .await?;
    let (token, _) = state
        .jwt
        .issue(user.id, &user.role, &created.handle)
        .map_err(ApiError::internal)?;
    let mut resp = Json(json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": state.jwt.ttl.as_secs(),
        "csrf_token": created.session.csrf_token,
        "user": User::from(user),
    }))
    .into_response();
    set_cookie(&state, resp.headers_mut(), &created.cookie, ttl.as_secs());
    Ok(resp)
}

async fn refund(state: &AppState, keys: impl Iterator<Item = &String>) {
    for k in keys {
        state.store.refund(k).await;
    }
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
    session::end(&state.store, &state.db, &who.session_id).await?;
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
