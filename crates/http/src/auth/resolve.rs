use axum::http::{header, HeaderMap};
use till_domain::Role;
use uuid::Uuid;

use super::session::{self, Cached, EpochError, Session};
use crate::state::AppState;

/// Who is calling, once credentials have been checked against the shared session store.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub role: Role,
    pub customer_id: Option<Uuid>,
    /// The session's handle (never the cookie's secret id).
    pub session_id: String,
    /// The revocation epoch the session was issued under.
    pub epoch: i64,
    /// Set when the credentials came from the session cookie: unsafe methods then need CSRF.
    pub cookie_csrf: Option<String>,
}

#[derive(Debug, Clone)]
pub enum AuthOutcome {
    Anonymous,
    Authenticated(Principal),
    /// Credentials were presented but are not valid (bad signature, expired, revoked).
    Invalid,
    /// The session store could not be asked; fail closed. The cause is for the log.
    Unavailable(String),
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Resolves `Authorization: Bearer` first, then the session cookie.
pub async fn resolve(state: &AppState, headers: &HeaderMap) -> AuthOutcome {
    if let Some(token) = bearer(headers) {
        return resolve_token(state, token).await;
    }
    let Some(sid) = cookie(headers, session::COOKIE) else {
        return AuthOutcome::Anonymous;
    };
    match session::by_cookie(&state.store, &state.db, &sid).await {
        Err(e) => AuthOutcome::Unavailable(e.to_string()),
        // A stale cookie is not an attack: browse on as anonymous.
        Ok(None) => AuthOutcome::Anonymous,
        Ok(Some((handle, s))) => match admit(state, handle, s, true, None).await {
            // A revoked session behind a cookie is stale too.
            AuthOutcome::Invalid => AuthOutcome::Anonymous,
            other => other,
        },
    }
}

/// Verifies a raw access token (also used by the WebSocket's `?access_token=`).
pub async fn resolve_token(state: &AppState, token: &str) -> AuthOutcome {
    let Some(claims) = state.jwt.verify(token) else {
        return AuthOutcome::Invalid;
    };
    match session::get_with_epoch(&state.store, &state.db, &claims.sh, claims.sub).await {
        Err(e) => AuthOutcome::Unavailable(e.to_string()),
        Ok(Some((s, epoch))) if s.user_id == claims.sub => {
            admit(state, claims.sh, s, false, Some(epoch)).await
        }
        Ok(_) => AuthOutcome::Invalid,
    }
}

/// A session found in the store is honoured only if it was issued under the user's current
/// revocation epoch (`epoch`: what the store answered for it already, if it was asked).
async fn admit(
    state: &AppState,
    handle: String,
    s: Session,
    by_cookie: bool,
    epoch: Option<Cached>,
) -> AuthOutcome {
    let current = match epoch {
        Some(cached) => session::epoch_from(&state.store, &state.db, s.user_id, cached).await,
        None => session::current_epoch(&state.store, &state.db, s.user_id).await,
    };
    match current {
        Ok(current) if s.epoch >= current => {}
        Ok(_) | Err(EpochError::NoSuchUser) => return AuthOutcome::Invalid,
        Err(EpochError::Unavailable(cause)) => return AuthOutcome::Unavailable(cause),
    }
    match s.role.parse::<Role>() {
        Ok(role) => AuthOutcome::Authenticated(Principal {
            user_id: s.user_id,
            role,
            customer_id: s.customer_id,
            session_id: handle,
            epoch: s.epoch,
            cookie_csrf: by_cookie.then_some(s.csrf_token),
        }),
        Err(_) => AuthOutcome::Invalid,
    }
}

/// Whether a principal's session still stands (for long-lived connections): `Some(false)` once
/// it was ended or revoked, `None` when that cannot be told right now.
pub async fn still_valid(state: &AppState, p: &Principal) -> Option<bool> {
    match session::get(&state.store, &state.db, &p.session_id).await {
        Ok(None) => return Some(false),
        Err(_) => return None,
        Ok(Some(_)) => {}
    }
    match session::current_epoch(&state.store, &state.db, p.user_id).await {
        Ok(current) => Some(p.epoch >= current),
        Err(EpochError::NoSuchUser) => Some(false),
        Err(EpochError::Unavailable(_)) => None,
    }
}
