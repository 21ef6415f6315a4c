//! Product images (manager+): `multipart/form-data` upload, reorder, delete. The body limit
//! of the upload route is `MAX_IMAGE_BYTES`, not `MAX_BODY_BYTES` (see `layers::guard`);
//! the part is read chunk by chunk and the upload stops at the limit.

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use till_app::idempotency::IdempotencyKey;
use till_app::media::{ImageView, MediaError};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::idempotency::{answer, location, optional_key, request_hash, respond};
use crate::extract::{Authed, Json, ManagerPlus, RequestMeta};
use crate::openapi::schemas::ErrorBody;
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // The image limit is applied by the body-limit middleware for this route.
        .routes(routes!(upload))
        .layer(DefaultBodyLimit::disable())
        .merge(OpenApiRouter::new().routes(routes!(reorder, delete)))
}

/// The upload form (for the OpenAPI description).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// A JPEG, PNG or WebP image, at most `MAX_IMAGE_BYTES` and 40 megapixels.
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
}

/// Reads the `file` part (other parts are ignored).
async fn file_part(mut form: Multipart) -> ApiResult<Vec<u8>> {
    let mut bytes = None;
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") || bytes.is_some() {
            continue;
        }
        let mut buf = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            buf.extend_from_slice(&chunk);
        }
        bytes = Some(buf);
    }
    match bytes {
        Some(b) if !b.is_empty() => Ok(b),
        _ => Err(MediaError::NoFile.into()),
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large()
    } else {
        ApiError::bad_request(format!(
            "The multipart body could not be read: {}",
            e.body_text()
        ))
    }
}

/// Adds an image to the product (after its others). Variants are WebP: `thumb` ≤ 256 px and
/// `medium` ≤ 800 px on the long side, `original` the whole picture; metadata is stripped.
#[utoipa::path(
    post,
    path = "/products/{id}/images",
    tag = "catalog",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id")),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The image", body = ImageView,
            headers(("Location" = String, description = "The image's URL"))),
        (status = 403, description = "`forbidden`: managers and admins only", body = ErrorBody),
        (status = 404, description = "`not_found`: no such product", body = ErrorBody),
        (status = 409, description = "`idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: over `MAX_IMAGE_BYTES`", body = ErrorBody),
        (status = 422, description = "`validation_failed` on `file`: not a JPEG, PNG or WebP image, or over 40 megapixels", body = ErrorBody),
    )
)]
async fn upload(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    headers: axum::http::HeaderMap,
    form: Multipart,
) -> ApiResult<Response> {
    let key = optional_key(&headers)?;
    let bytes = file_part(form).await?;
    let key = key.map(|key| IdempotencyKey {
        request_hash: request_hash(
            "POST",
            &format!("/api/v1/products/{id}/images"),
            &till_app::media::process::file_key(&bytes),
        ),
        key,
    });
    let done = till_app::media::upload(
        &state,
        &meta.actor(&who),
        who.user_id,
        id,
        bytes,
        key.as_ref(),
        |image| {
            answer(
                StatusCode::CREATED,
                json!(image),
                location(&format!("/api/v1/products/{id}/images/{}", image.id)),
            )
        },
    )
    .await?;
    Ok(respond(done))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MoveImage {
    /// The new place, 0 = first (beyond the last: last).
    #[schema(minimum = 0, maximum = 1000)]
    position: i64,
}

/// Moves an image; the product's other images shift. Answers every image in the new order.
#[utoipa::path(
    patch,
    path = "/products/{id}/images/{image_id}",
    tag = "catalog",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id"), ("image_id" = Uuid, Path, description = "Image id")),
    request_body = MoveImage,
    responses(
        (status = 200, description = "The product's images in order", body = Vec<ImageView>),
        (status = 403, description = "`forbidden`: managers and admins only", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 422, description = "`validation_failed` on `position`", body = ErrorBody),
    )
)]
async fn reorder(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    Path((id, image_id)): Path<(Uuid, Uuid)>,
    Json(body): Json<MoveImage>,
) -> ApiResult<Response> {
    if !(0..=1000).contains(&body.position) {
        return Err(ApiError::field("position", "must be between 0 and 1000"));
    }
    let images = till_app::media::reorder(
        &state,
        &meta.actor(&who),
        id,
        image_id,
        body.position as usize,
    )
    .await?;
    Ok(Json(images).into_response())
}

/// Removes an image; its files are deleted when no other image uses the same picture.
#[utoipa::path(
    delete,
    path = "/products/{id}/images/{image_id}",
    tag = "catalog",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id"), ("image_id" = Uuid, Path, description = "Image id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`forbidden`: managers and admins only", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
async fn delete(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    Path((id, image_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    till_app::media::delete(&state, &meta.actor(&who), id, image_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
