//! Creating categories (manager+). The slug is derived from the name and must be unique.

use serde_json::json;
use till_db::audit::{self, Actor};
use till_db::categories::{self, CategoryRow};
use till_db::DbError;
use till_domain::{slugify, FieldErrors};

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
    Db(#[from] DbError),
}

fn field(name: &str, msg: &str) -> CategoryError {
    let mut e = FieldErrors::default();
    e.add(name, msg);
    CategoryError::Validation(e)
}

/// Creates the category `name` (trimmed); invalidates the catalog cache after the commit.
pub async fn create(app: &App, actor: &Actor, name: &str) -> Result<CategoryRow, CategoryError> {
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
    let mut tx = app.db.write.begin().await.map_err(DbError::from)?;
    let category = categories::insert(&mut tx, name, &slug)
        .await
        .map_err(|e| match e {
            DbError::Unique(_) => CategoryError::SlugTaken { slug: slug.clone() },
            e => e.into(),
        })?;
    audit::record(
        &mut tx,
        actor,
        "category.create",
        "category",
        category.id,
        json!({ "name": category.name, "slug": category.slug }),
    )
    .await?;
    tx.commit().await.map_err(DbError::from)?;
    app.invalidate_catalog().await;
    Ok(category)
}
