//! Creating categories (manager+). The slug is derived from the name and must be unique.

use serde_json::json;
use till_db::audit::{self, Actor};
use till_db::categories::{self, CategoryRow};
use till_db::DbError;
use till_domain::{slugify, FieldErrors};
use uuid::Uuid;

use crate::idempotency::{self, Answer, Begun, IdempotencyError, IdempotencyKey};
use crate::App;

/// Why a category could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CategoryError {
    #[error("invalid category: {0}")]
    Validation(FieldErrors),
    /// Another category already has this name's slug.
    #[error("a category with the slug {slug:?} already exists")]
    SlugTaken { slug: String },
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Db(#[from] DbError),
}

fn field(name: &str, msg: &str) -> CategoryError {
    let mut e = FieldErrors::default();
    e.add(name, msg);
    CategoryError::Validation(e)
}

/// Creates the category `name` (trimmed); invalidates the catalog cache after the commit.
pub async fn create(
    app: &App,
    actor: &Actor,
    caller: Uuid,
    name: &str,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&CategoryRow) -> Answer,
) -> Result<Answer, CategoryError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(field("name", "must be 1 to 100 characters"));
    }
    let slug = slugify(name);
    if slug.is_empty() {
        return Err(field(
            "name",
            "must contain at least one letter or digit (A-Z, 0-9)",
        ));
    }
    let mut run = match idempotency::begin::<CategoryError>(app, caller, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    let category = categories::insert(tx, name, &slug)
        .await
        .map_err(|e| match e {
            DbError::Unique(_) => CategoryError::SlugTaken { slug: slug.clone() },
            e => e.into(),
        })?;
    audit::record(
        tx,
        actor,
        "category.create",
        "category",
        category.id,
        json!({ "name": category.name, "slug": category.slug }),
    )
    .await?;
    let answer = run.finish::<CategoryError>(render(&category)).await?;
    app.invalidate_catalog().await;
    Ok(answer)
}
