//! Role-checked principals. A handler names the policy in its signature (`Authed<ManagerPlus>`),
//! so authorisation cannot be forgotten: the extractor runs before the handler body.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;
use till_domain::Role;

use crate::auth::AuthOutcome;
pub use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// Which roles a route admits.
pub trait RolePolicy: Send + Sync + 'static {
    fn allows(role: Role) -> bool;
}

macro_rules! policy {
    ($(#[$doc:meta])* $name:ident, |$r:ident| $e:expr) => {
        $(#[$doc])*
        pub struct $name;
        impl RolePolicy for $name {
            fn allows($r: Role) -> bool {
                $e
            }
        }
    };
}

policy!(/// Any signed-in user, customers included.
    AnyUser, |_r| true);
policy!(/// Everyone who works in the shop (not customers).
    StaffSide, |r| r.is_staff_side());
policy!(/// admin, manager, cashier.
    CashierPlus, |r| r.is_cashier_or_above());
policy!(/// admin, manager.
    ManagerPlus, |r| r.is_manager_or_above());
policy!(/// admin, manager, and staff (fulfilment): who receives transfers and counts stock.
    ManagerOrStaff, |r| r.is_manager_or_above() || r == Role::Staff);
policy!(/// admin only.
    Admin, |r| r == Role::Admin);

/// The credentials outcome computed once per request by the API middleware.
#[derive(Clone)]
pub struct Credentials(pub AuthOutcome);

/// An authenticated caller whose role satisfies `P`.
pub struct Authed<P: RolePolicy> {
    pub principal: Principal,
    _p: PhantomData<P>,
}

impl<P: RolePolicy> std::ops::Deref for Authed<P> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
    }
}

/// The caller if signed in; anonymous is fine, but presented-and-invalid credentials are a 401.
pub struct MaybeUser(pub Option<Principal>);

async fn outcome(parts: &mut Parts, state: &AppState) -> AuthOutcome {
    if let Some(Credentials(o)) = parts.extensions.get::<Credentials>() {
        return o.clone();
    }
    let o = crate::auth::resolve(state, &parts.headers).await;
    parts.extensions.insert(Credentials(o.clone()));
    o
}

fn check_csrf(parts: &Parts, p: &Principal) -> Result<(), ApiError> {
    let Some(expected) = &p.cookie_csrf else {
        return Ok(());
    };
    if parts.method.is_safe() {
        return Ok(());
    }
    let sent = parts
        .headers
        .get("x-csrf-token")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if sent.is_empty() || !bool::from(sent.ct_eq(expected.as_bytes())) {
        return Err(ApiError::csrf_failed());
    }
    Ok(())
}

impl<P: RolePolicy> FromRequestParts<AppState> for Authed<P> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match outcome(parts, state).await {
            AuthOutcome::Authenticated(principal) => {
                check_csrf(parts, &principal)?;
                if !P::allows(principal.role) {
                    return Err(ApiError::forbidden());
                }
                Ok(Authed {
                    principal,
                    _p: PhantomData,
                })
            }
            AuthOutcome::Unavailable(cause) => Err(ApiError::unavailable(
                "Sign-in service unavailable; try again shortly.",
            )
            .with_source(cause)),
            AuthOutcome::Anonymous | AuthOutcome::Invalid => Err(ApiError::unauthorized()),
        }
    }
}

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match outcome(parts, state).await {
            AuthOutcome::Authenticated(p) => {
                check_csrf(parts, &p)?;
                Ok(MaybeUser(Some(p)))
            }
            AuthOutcome::Anonymous => Ok(MaybeUser(None)),
            AuthOutcome::Invalid => Err(ApiError::unauthorized()),
            AuthOutcome::Unavailable(cause) => Err(ApiError::unavailable(
                "Sign-in service unavailable; try again shortly.",
            )
            .with_source(cause)),
        }
    }
}
