//! Where a request came from, for the audit log and per-IP limits.

use std::convert::Infallible;
use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use till_db::audit::Actor;

use crate::auth::Principal;
use crate::layers::ClientIp;
use crate::request_id;

pub struct RequestMeta {
    pub ip: Option<IpAddr>,
    pub request_id: String,
}

impl RequestMeta {
    pub fn actor(&self, p: &Principal) -> Actor {
        Actor {
            user_id: Some(p.user_id),
            request_id: Some(self.request_id.clone()),
            ip: self.ip.map(|i| i.to_string()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(RequestMeta {
            ip: parts.extensions.get::<ClientIp>().map(|c| c.0),
            request_id: request_id::current(),
        })
    }
}
