//! The one error type of the HTTP layer and the one JSON shape it answers with:
//! `{"error": {"code", "message", "details", "request_id"}}`. Internal causes are logged with
//! the request id and never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use till_cache::StoreError;
use till_db::DbError;
use till_domain::FieldErrors;

use crate::request_id;

mod from_app;
mod from_locations;
mod from_media;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
    /// Logged, never sent.
    pub source: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
            source: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", msg)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Sign in to continue.",
        )
    }
    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "Wrong email or password.",
        )
    }
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Your role is not allowed to do this.",
        )
    }
    pub fn forbidden_msg(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", msg)
    }
    pub fn csrf_failed() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "Missing or wrong X-CSRF-Token header.",
        )
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found.")
    }
    pub fn conflict(code: &'static str, msg: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, msg)
    }
    pub fn already_exists(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "already_exists", msg)
    }
    pub fn precondition_failed() -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            "This record was changed by someone else; reload it and try again.",
        )
    }
    pub fn unprocessable(code: &'static str, msg: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, msg)
    }
    pub fn validation(errors: FieldErrors) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Some fields are invalid.",
        )
        .with_details(json!({ "fields": errors }))
    }
    /// A single-field validation error.
    pub fn field(field: &str, msg: &str) -> Self {
        let mut e = FieldErrors::default();
        e.add(field, msg);
        Self::validation(e)
    }
    pub fn rate_limited(retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests; slow down.",
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }
    pub fn unavailable(msg: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", msg);
        e.retry_after = Some(1);
        e
    }
    /// The cause, for the log line of a 5xx (never shown to the client).
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }
    pub fn internal(source: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side.",
        );
        e.source = Some(source.to_string());
        e
    }

    /// The envelope for a bare status (layers outside our handlers: 405, 413, timeouts, panics).
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::BAD_REQUEST => Self::bad_request("The request could not be read."),
            StatusCode::UNAUTHORIZED => Self::unauthorized(),
            StatusCode::FORBIDDEN => Self::forbidden(),
            StatusCode::NOT_FOUND => Self::not_found(),
            StatusCode::METHOD_NOT_ALLOWED => Self::new(
                status,
                "method_not_allowed",
                "This method is not allowed on this path.",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                status,
                "payload_too_large",
                "The request body is too large.",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(
                status,
                "unsupported_media_type",
                "Send the body as application/json.",
            ),
            StatusCode::TOO_MANY_REQUESTS => Self::rate_limited(1),
            StatusCode::REQUEST_TIMEOUT
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => {
                Self::unavailable("The server is busy; try again shortly.")
            }
            s if s.is_server_error() => Self::internal(format!("bare {s} from a layer")),
            s => Self::new(
                s,
                "bad_request",
                s.canonical_reason().unwrap_or("Request failed."),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = request_id::current();
        if self.status.is_server_error() {
            tracing::error!(request_id = %request_id, code = self.code, cause = ?self.source, "request failed");
        }
        let mut error = json!({
            "code": self.code,
            "message": self.message,
            "request_id": request_id,
        });
        if let Some(d) = self.details {
            error["details"] = d;
        }
        let mut resp = (self.status, axum::Json(json!({ "error": error }))).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound => ApiError::not_found(),
            DbError::Unique(v) => {
                ApiError::already_exists(format!("A record with this {} already exists.", v.field))
                    .with_details(json!({ "field": v.field }))
            }
            DbError::InvalidData(cause) => {
                // The value is the client's; the cause is logged for the rare case it is ours.
                tracing::warn!(error = %cause, "database refused a value");
                let mut fields = FieldErrors::default();
                fields.add(
                    "request",
                    "contains a value that cannot be stored (a control character, or a number or date out of range)",
                );
                ApiError::validation(fields)
            }
            DbError::Unavailable(cause) => {
                ApiError::unavailable("The database is unavailable; try again shortly.")
                    .with_source(cause)
            }
            DbError::Retryable => {
                ApiError::conflict("conflict", "A concurrent change got in the way; try again.")
            }
            other => {
                // The whole cause chain (constraint, then PostgreSQL's message) for the log.
                let mut cause = other.to_string();
                let mut next = std::error::Error::source(&other);
                while let Some(e) = next {
                    cause.push_str(": ");
                    cause.push_str(&e.to_string());
                    next = e.source();
                }
                ApiError::internal(cause)
            }
        }
    }
}

impl From<crate::auth::session::SessionError> for ApiError {
    fn from(e: crate::auth::session::SessionError) -> Self {
        tracing::warn!(error = %e, "sessions unavailable");
        ApiError::unavailable("Sign-in is unavailable right now; try again shortly.")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "shared store unavailable");
        ApiError::unavailable("A backing service is unavailable; try again shortly.")
    }
}
