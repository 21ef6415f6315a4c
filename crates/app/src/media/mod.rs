//! Product images (manager+): upload, reorder, delete. Files live in `MEDIA_DIR` (a volume all
//! instances share) under content-hashed names; rows in `product_images` say which product
//! shows which file in which place.
//!
//! Decoding and resizing run on blocking threads, at most `IMAGE_WORKERS` at once per
//! instance (a semaphore), so a burst of uploads cannot starve the async runtime or the memory.
//! Files are written and removed while holding the key's advisory lock, inside the transaction
//! that adds or drops the row, so an upload and a delete of the same picture never leave a row
//! without its files.

pub mod process;

use std::path::Path;

use serde::Serialize;
use serde_json::json;
use till_db::audit::{self, Actor};
use till_db::product_images::{self as images, ImageRow, ImageUrls};
use till_db::{products, DbError, PgConnection};
use uuid::Uuid;

use crate::idempotency::{self, Answer, Begun, IdempotencyError, IdempotencyKey};
use crate::App;
pub use process::ImageRejected;

/// An image as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImageView {
    pub id: Uuid,
    pub product_id: Uuid,
    pub position: i32,
    /// Of the `original` variant.
    pub width: i32,
    pub height: i32,
    pub urls: ImageUrls,
}

impl From<&ImageRow> for ImageView {
    fn from(r: &ImageRow) -> Self {
        ImageView {
            id: r.id,
            product_id: r.product_id,
            position: r.position,
            width: r.width,
            height: r.height,
            urls: ImageUrls::for_key(&r.file_key),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{0}")]
    Rejected(#[from] ImageRejected),
    #[error("no image was sent in the `file` part")]
    NoFile,
    #[error("media storage: {0}")]
    Storage(#[from] std::io::Error),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Adds `bytes` (an uploaded file) as the product's last image.
pub async fn upload(
    app: &App,
    actor: &Actor,
    caller: Uuid,
    product_id: Uuid,
    bytes: Vec<u8>,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&ImageView) -> Answer,
) -> Result<Answer, MediaError> {
    // A missing product is a 404 before any decoding work.
    {
        let mut conn = app.db.write.acquire().await.map_err(DbError::from)?;
        images::lock_product(&mut conn, product_id).await?;
    }
    // Cheap refusals (not an image, too many pixels) before waiting for a decoding slot.
    process::check_dimensions(&bytes)?;
    let processed = {
        let _slot = app
            .image_slots
            .acquire()
            .await
            .map_err(|_| std::io::Error::other("image workers closed"))?;
        tokio::task::spawn_blocking(move || process::process(&bytes))
            .await
            .map_err(std::io::Error::other)??
    };
    let mut run = match idempotency::begin::<MediaError>(app, caller, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    images::lock_product(tx, product_id).await?;
    images::lock_key(tx, &processed.file_key).await?;
    write_files(&app.config.media.media_dir, &processed).await?;
    let row = images::insert(
        tx,
        product_id,
        &processed.file_key,
        processed.original.width,
        processed.original.height,
        Some(caller),
    )
    .await?;
    product_changed(tx, product_id).await?;
    audit::record(
        tx,
        actor,
        "product.image_add",
        "product",
        product_id,
        json!({"image_id": row.id, "file_key": row.file_key, "position": row.position}),
    )
    .await?;
    let view = ImageView::from(&row);
    let answer = run.finish::<MediaError>(render(&view)).await?;
    app.after_commit(false);
    app.invalidate_catalog().await;
    Ok(answer)
}

/// Images are part of the product: webhooks get `product.updated` with the new list.
async fn product_changed(conn: &mut PgConnection, product_id: Uuid) -> Result<(), DbError> {
    images::touch_product(conn, product_id).await?;
    if let Some(p) = products::get(conn, product_id, true).await? {
        crate::products::record_event(conn, &p).await?;
    }
    Ok(())
}

/// Writes each variant unless a file of that name is already there (same key, same content):
/// to a temporary name first, then renamed, so a reader never sees half a file.
async fn write_files(dir: &Path, p: &process::Processed) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let names = images::file_names(&p.file_key);
    for (name, variant) in names.iter().zip([&p.thumb, &p.medium, &p.original]) {
        let path = dir.join(name);
        if tokio::fs::try_exists(&path).await? {
            continue;
        }
        let tmp = dir.join(format!(".{name}.{}.tmp", Uuid::now_v7()));
        tokio::fs::write(&tmp, &variant.webp).await?;
        tokio::fs::rename(&tmp, &path).await?;
    }
    Ok(())
}

/// Removes an image; its files go too when no other image uses them.
pub async fn delete(
    app: &App,
    actor: &Actor,
    product_id: Uuid,
    image_id: Uuid,
) -> Result<(), MediaError> {
    let mut tx = app.db.write.begin().await.map_err(DbError::from)?;
    images::lock_product(&mut tx, product_id).await?;
    let image = images::get(&mut tx, product_id, image_id).await?;
    images::lock_key(&mut tx, &image.file_key).await?;
    let unused = images::delete(&mut tx, &image).await?;
    // Close the gap the image leaves, so positions stay 0..n.
    if let Some(first) = images::list(&mut tx, product_id).await?.first() {
        images::reorder(&mut tx, product_id, first.id, 0).await?;
    }
    product_changed(&mut tx, product_id).await?;
    audit::record(
        &mut tx,
        actor,
        "product.image_delete",
        "product",
        product_id,
        json!({"image_id": image.id, "file_key": image.file_key, "files_removed": unused}),
    )
    .await?;
    if unused {
        // Still under the key's lock: no upload of the same picture can slip in between.
        for name in images::file_names(&image.file_key) {
            match tokio::fs::remove_file(app.config.media.media_dir.join(name)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
    }
    tx.commit().await.map_err(DbError::from)?;
    app.after_commit(false);
    app.invalidate_catalog().await;
    Ok(())
}

/// Moves an image to `position` (0 = first); the others shift. Returns every image in order.
pub async fn reorder(
    app: &App,
    actor: &Actor,
    product_id: Uuid,
    image_id: Uuid,
    position: usize,
) -> Result<Vec<ImageView>, MediaError> {
    let mut tx = app.db.write.begin().await.map_err(DbError::from)?;
    images::lock_product(&mut tx, product_id).await?;
    images::get(&mut tx, product_id, image_id).await?;
    let rows = images::reorder(&mut tx, product_id, image_id, position).await?;
    product_changed(&mut tx, product_id).await?;
    audit::record(
        &mut tx,
        actor,
        "product.image_move",
        "product",
        product_id,
        json!({"image_id": image_id, "position": position}),
    )
    .await?;
    tx.commit().await.map_err(DbError::from)?;
    app.after_commit(false);
    app.invalidate_catalog().await;
    Ok(rows.iter().map(ImageView::from).collect())
}
