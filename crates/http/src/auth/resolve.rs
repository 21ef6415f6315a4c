use axum::http::{header, HeaderMap};
use till_domain::Role;
use uuid::Uuid;

use super::session;
use crate::state::AppState;

/// Who is calling, once credentials have been checked against the shared session store.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub role: Role,
    pub customer_id: Option<Uuid>,
    pub session_id: String,
    /// Set when the credentials came from the session cookie: unsafe methods then need CSRF.
    pub cookie_csrf: Option<String>,
}

#[derive(Debug, Clone)]
pub enum AuthOutcome {
    Anonymous,
    Authenticated(Principal),
    /// Credentials were presented but are not valid (bad signature, expired, revoked).
    Invalid,
    /// The session store could not be asked; fail closed.
    Unavailable,
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
    match session::get(&state.store, &sid).await {
        Err(_) => AuthOutcome::Unavailable,
        // A stale cookie is not an attack: browse on as anonymous.
        Ok(None) => AuthOutcome::Anonymous,
        Ok(Some(s)) => match s.role.parse::<Role>() {
            Ok(role) => AuthOutcome::Authenticated(Principal {
                user_id: s.user_id,
                role,
                customer_id: s.customer_id,
                session_id: sid,
                cookie_csrf: Some(s.csrf_token),
            }),
            Err(_) => AuthOutcome::Invalid,
        },
    }
}

/// Verifies a raw access token (also used by the WebSocket's `?access_token=`).
pub async fn resolve_token(state: &AppState, token: &str) -> AuthOutcome {
    let Some(claims) = state.jwt.verify(token) else {
        return AuthOutcome::Invalid;
    };
    match session::get(&state.store, &claims.sid).await {
        Err(_) => AuthOutcome::Unavailable,
        Ok(Some(s)) if s.user_id == claims.sub => match s.role.parse::<Role>() {
            Ok(role) => AuthOutcome::Authenticated(Principal {
                user_id: s.user_id,
                role,
                customer_id: s.customer_id,
                session_id: claims.sid,
                cookie_csrf: None,
            }),
            Err(_) => AuthOutcome::Invalid,
        },
        Ok(_) => AuthOutcome::Invalid,
    }
}
