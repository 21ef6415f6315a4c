//! The catalog as CSV (manager+): a streamed export and an all-or-nothing import.
//!
//! Export never holds the catalog: a task reads rows from a database cursor and sends the
//! encoded CSV in 64 KiB chunks through a small channel into the response body, so a slow
//! client slows the reading instead of filling memory. Import reads the body as it arrives
//! (`MAX_IMPORT_BYTES`, not `MAX_BODY_BYTES`), on a blocking thread, one record at a time.

use std::io;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::json;
use till_app::idempotency::IdempotencyKey;
use till_app::product_csv::{self, CsvEncoder, ImportReport};
use till_db::product_import;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::error::{ApiError, ApiResult};
use crate::extract::idempotency::{answer, optional_key, request_hash, respond};
use crate::extract::{Authed, ManagerPlus, Query, RequestMeta};
use crate::openapi::schemas::ErrorBody;
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import))
        // MAX_IMPORT_BYTES is applied by the body-limit middleware for this route.
        .layer(DefaultBodyLimit::disable())
        .merge(OpenApiRouter::new().routes(routes!(export)))
}

/// Export chunks are sent once this much CSV is encoded.
const CHUNK: usize = 64 * 1024;

/// Every product (active and inactive), by SKU, as RFC 4180 CSV with a header row:
/// `sku,barcode,name,description,category,price_cents,tax_rate_bp,active,track_stock,low_stock_threshold,stock_on_hand`.
#[utoipa::path(
    get,
    path = "/products/export.csv",
    tag = "catalog",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The catalog", content_type = "text/csv", body = String),
        (status = 403, description = "`forbidden`: managers and admins only", body = ErrorBody),
    )
)]
async fn export(State(state): State<AppState>, _who: Authed<ManagerPlus>) -> ApiResult<Response> {
    // Take the connection before answering, so a database outage is a 503, not a cut body.
    let mut tx = product_import::begin_export(&state.db.write).await?;
    let (send, recv) = tokio::sync::mpsc::channel::<io::Result<Vec<u8>>>(2);
    tokio::spawn(async move {
        let mut csv = CsvEncoder::new();
        let mut rows = product_import::export(&mut tx);
        while let Some(row) = rows.next().await {
            match row {
                Ok(r) => csv.push(&r),
                Err(e) => {
                    tracing::warn!(error = %e, "product export failed mid-stream");
                    let _ = send.send(Err(io::Error::other("export failed"))).await;
                    return;
                }
            }
            if csv.buffered() >= CHUNK && send.send(Ok(csv.take())).await.is_err() {
                return; // the client went away
            }
        }
        let _ = send.send(Ok(csv.take())).await;
    });
    // `poll_fn` over the receiver, not `stream::unfold`: the body may be polled again after it
    // ended (the compression layer does), and a closed receiver keeps answering `None`.
    let mut recv = recv;
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| recv.poll_recv(cx)));
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"products.csv\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ImportParams {
    /// `true`: check and report, write nothing.
    dry_run: Option<bool>,
}

fn is_csv(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim();
            m.eq_ignore_ascii_case("text/csv") || m.eq_ignore_ascii_case("application/csv")
        })
}

/// Creates or updates products by SKU from CSV with the export's columns (only `sku` and
/// `name` required; unknown columns → 422). All or nothing: with any row error nothing is
/// written and `errors` names each row and field. `dry_run=true` never writes.
#[utoipa::path(
    post,
    path = "/products/import",
    tag = "catalog",
    security(("bearer" = [])),
    params(ImportParams),
    request_body(content = String, content_type = "text/csv",
        description = "Header row, then one product per row (RFC 4180)"),
    responses(
        (status = 200, description = "What was (or, for a dry run or with errors, would be) done", body = ImportReport),
        (status = 403, description = "`forbidden`: managers and admins only", body = ErrorBody),
        (status = 409, description = "`idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: over `MAX_IMPORT_BYTES`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not text/csv", body = ErrorBody),
        (status = 422, description = "`validation_failed`: unknown or missing columns, or not CSV", body = ErrorBody),
    )
)]
async fn import(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    Query(params): Query<ImportParams>,
    req: Request,
) -> ApiResult<Response> {
    if !is_csv(&req) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the file as text/csv.",
        ));
    }
    let key = optional_key(req.headers())?;
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let stream = req
        .into_body()
        .into_data_stream()
        .map_err(|e| io::Error::other(e.into_inner()));
    let reader = StreamReader::new(stream);
    // SyncIoBridge blocks on the async body from the blocking thread it is read on.
    let parsed =
        tokio::task::spawn_blocking(move || product_csv::parse::parse(SyncIoBridge::new(reader)))
            .await
            .map_err(ApiError::internal)?
            .map_err(product_csv::ImportError::from)?;
    let key = key.map(|key| IdempotencyKey {
        request_hash: request_hash("POST", &path_and_query, &parsed.body_sha256),
        key,
    });
    let done = product_csv::import(
        &state,
        &meta.actor(&who),
        who.user_id,
        parsed,
        params.dry_run.unwrap_or(false),
        key.as_ref(),
        |report| answer(StatusCode::OK, json!(report), Vec::new()),
    )
    .await?;
    Ok(respond(done))
}
