//! `GET /orders/{id}/receipt`: the receipt as text (ESC/POS printers) or HTML (the till's
//! printable page), both from one layout. Each call issues a receipt: the second and later
//! ones say COPY.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use till_app::receipts::{self, render};
use uuid::Uuid;

use super::caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AnyUser, Authed, Query, RequestMeta};
use crate::openapi::schemas::ErrorBody;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptFormat {
    #[default]
    Html,
    Text,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReceiptParams {
    /// `html` (default) or `text`.
    #[param(value_type = Option<ReceiptFormat>)]
    format: Option<String>,
    /// Paper width in mm: `58` (32 characters a line) or `80` (48; default).
    #[param(value_type = Option<u32>)]
    width: Option<String>,
}

/// The order's receipt: store details, lines, discount, tax by rate, total, payments with
/// tendered and change, refunds. Cashier+ for any order, a customer for their own.
#[utoipa::path(
    get,
    path = "/orders/{id}/receipt",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id"), ReceiptParams),
    responses(
        (status = 200, description = "The receipt", content(
            (String = "text/html"), (String = "text/plain"))),
        (status = 404, description = "`not_found` (also another customer's order)", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `format` or `width`", body = ErrorBody),
    )
)]
pub async fn receipt(
    State(state): State<AppState>,
    who: Authed<AnyUser>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Query(params): Query<ReceiptParams>,
) -> ApiResult<Response> {
    let format = match params.format.as_deref() {
        None | Some("html") => ReceiptFormat::Html,
        Some("text") => ReceiptFormat::Text,
        Some(_) => return Err(ApiError::field("format", "must be html or text")),
    };
    let columns = match params.width.as_deref() {
        None | Some("80") => 48,
        Some("58") => 32,
        Some(_) => return Err(ApiError::field("width", "must be 58 or 80 (mm)")),
    };
    let receipt = receipts::issue(&state, &meta.actor(&who), &caller(&who), id).await?;
    let rows = render::layout(&receipt);
    let (body, content_type) = match format {
        ReceiptFormat::Text => (render::text(&rows, columns), "text/plain; charset=utf-8"),
        ReceiptFormat::Html => (
            render::html(&rows, columns, &format!("Receipt {}", receipt.number)),
            "text/html; charset=utf-8",
        ),
    };
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The till prints this page from a frame of its own origin; nothing else may frame it, and
    // it loads nothing.
    h.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'; base-uri 'none'",
        ),
    );
    Ok(resp)
}
