//! Categories: public list (cached), manager+ create.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use till_db::{audit, categories, DbError};
use till_domain::slugify;

use super::catalog_cache::{self, Cached};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authed, Json, ManagerPlus, RequestMeta};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/categories", get(list).post(create))
}

async fn list(State(state): State<AppState>) -> ApiResult<Response> {
    catalog_cache::read(&state, "categories", || async {
        let items = categories::list(&state.db.write).await?;
        Cached::json(&json!({ "items": items }), None)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCategory {
    name: String,
}

async fn create(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    Json(body): Json<NewCategory>,
) -> ApiResult<Response> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::field("name", "must be 1 to 100 characters"));
    }
    let slug = slugify(name);
    if slug.is_empty() {
        return Err(ApiError::field(
            "name",
            "must contain at least one letter or digit (A-Z, 0-9)",
        ));
    }
    let mut tx = state.db.write.begin().await.map_err(DbError::from)?;
    let category = categories::insert(&mut tx, name, &slug)
        .await
        .map_err(|e| match e {
            DbError::Unique(_) => ApiError::already_exists(format!(
                "A category with the slug \"{slug}\" already exists."
            ))
            .with_details(json!({ "field": "name", "slug": slug })),
            e => e.into(),
        })?;
    audit::record(
        &mut tx,
        &meta.actor(&who),
        "category.create",
        "category",
        category.id,
        json!({ "name": category.name, "slug": category.slug }),
    )
    .await?;
    tx.commit().await.map_err(DbError::from)?;
    catalog_cache::invalidate(&state).await;
    Ok((StatusCode::CREATED, Json(category)).into_response())
}
