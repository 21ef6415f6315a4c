//! Products: cached public reads (list, search, one, barcode/SKU lookup) and manager+ writes
//! with optimistic concurrency (`version`, `ETag`, `If-Match`).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use till_db::products::{self, ListFilter, NewProduct, ProductPatch, ProductRow};
use till_db::{audit, categories, DbError, PgConnection};
use till_domain::{Barcode, FieldErrors, PriceCents, ProductName, Sku, TaxRateBp};
use uuid::Uuid;

use super::catalog_cache::{self, json_response, vis, Cached};
use crate::error::{ApiError, ApiResult};
use crate::extract::{
    Authed, IfMatch, Json, ManagerPlus, MaybeUser, PageQuery, Principal, Query, RequestMeta,
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products", get(list).post(create))
        .route("/products/lookup", get(lookup))
        .route("/products/{id}", get(read).patch(update).delete(deactivate))
}

/// Longest `q` accepted: no product name is longer.
const MAX_Q_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 5000;

fn sees_inactive(who: &Option<Principal>) -> bool {
    who.as_ref().is_some_and(|p| p.role.is_manager_or_above())
}

/// A product answer with its `ETag`.
fn product_response(status: StatusCode, p: &ProductRow) -> ApiResult<Response> {
    let body = serde_json::to_vec(p).map_err(ApiError::internal)?;
    Ok(json_response(status, Some(p.version), Bytes::from(body)))
}

#[derive(Deserialize)]
struct ListParams {
    category_id: Option<Uuid>,
    q: Option<String>,
    include_inactive: Option<bool>,
}

async fn list(
    State(state): State<AppState>,
    MaybeUser(who): MaybeUser,
    page: PageQuery,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    let include_inactive = params.include_inactive.unwrap_or(false);
    if include_inactive && !sees_inactive(&who) {
        return Err(match who {
            None => ApiError::unauthorized(),
            Some(_) => ApiError::forbidden_msg("Only managers may list inactive products."),
        });
    }
    let q = params.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > MAX_Q_CHARS) {
        return Err(ApiError::field("q", "must be at most 200 characters"));
    }
    let after = page.decode(products::decode_cursor)?;
    // q goes last: it is the only part that may contain the separator.
    let key = format!(
        "list:{}:{}:{}:{}:{}",
        vis(include_inactive),
        params
            .category_id
            .map(|c| c.to_string())
            .unwrap_or_default(),
        page.limit,
        page.cursor.as_deref().unwrap_or_default(),
        q.unwrap_or_default(),
    );
    let filter = ListFilter {
        category_id: params.category_id,
        q,
        include_inactive,
    };
    catalog_cache::read(&state, &key, || async {
        let rows = products::list(&state.db.write, &filter, after, page.limit).await?;
        Cached::json(&rows, None)
    })
    .await
}

async fn read(
    State(state): State<AppState>,
    MaybeUser(who): MaybeUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let include_inactive = sees_inactive(&who);
    let key = format!("p:{}:{id}", vis(include_inactive));
    catalog_cache::read(&state, &key, || async {
        let mut conn = state.db.write.acquire().await.map_err(DbError::from)?;
        match products::get(&mut conn, id, include_inactive).await? {
            Some(p) => Cached::json(&p, Some(p.version)),
            None => Ok(Cached::NotFound),
        }
    })
    .await
}

#[derive(Deserialize)]
struct LookupParams {
    code: Option<String>,
}

async fn lookup(
    State(state): State<AppState>,
    MaybeUser(who): MaybeUser,
    Query(params): Query<LookupParams>,
) -> ApiResult<Response> {
    let code = params.code.as_deref().map(str::trim).unwrap_or_default();
    if code.is_empty() {
        return Err(ApiError::field("code", "is required: a barcode or SKU"));
    }
    // No product can carry a code that is neither a valid barcode nor a valid SKU; answering
    // at once also keeps junk out of the cache.
    if Barcode::parse(code).is_err() && Sku::parse(code).is_err() {
        return Err(ApiError::not_found());
    }
    let include_inactive = sees_inactive(&who);
    let key = format!("l:{}:{code}", vis(include_inactive));
    catalog_cache::read(&state, &key, || async {
        match products::lookup(&state.db.write, code, include_inactive).await? {
            Some(p) => Cached::json(&p, Some(p.version)),
            None => Ok(Cached::NotFound),
        }
    })
    .await
}

/// `Some(None)` for an explicit `null`, `None` for an absent field.
fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

const STOCK_READ_ONLY: &str =
    "is read-only: stock changes through POST /api/v1/inventory/adjustments";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewProductBody {
    sku: Option<String>,
    barcode: Option<String>,
    name: Option<String>,
    description: Option<String>,
    category_id: Option<Uuid>,
    price_cents: Option<i64>,
    tax_rate_bp: Option<i64>,
    track_stock: Option<bool>,
    low_stock_threshold: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    stock_on_hand: Option<Option<Value>>,
}

/// Checked product fields shared by create and update.
#[derive(Default)]
struct Checked {
    sku: Option<Sku>,
    barcode: Option<Option<Barcode>>,
    name: Option<ProductName>,
    description: Option<String>,
    price_cents: Option<PriceCents>,
    tax_rate_bp: Option<TaxRateBp>,
    low_stock_threshold: Option<i64>,
}

/// Parses whichever fields are present, recording every problem in `errs`.
#[allow(clippy::too_many_arguments)]
fn check_fields(
    errs: &mut FieldErrors,
    sku: Option<&str>,
    barcode: Option<Option<&str>>,
    name: Option<&str>,
    description: Option<&str>,
    price_cents: Option<i64>,
    tax_rate_bp: Option<i64>,
    low_stock_threshold: Option<i64>,
) -> Checked {
    // An empty barcode from a form means "none".
    let barcode = barcode.map(|b| b.filter(|b| !b.is_empty()));
    Checked {
        sku: sku.and_then(|s| errs.check("sku", Sku::parse(s))),
        barcode: match barcode {
            None => None,
            Some(None) => Some(None),
            Some(Some(b)) => errs.check("barcode", Barcode::parse(b)).map(Some),
        },
        name: name.and_then(|n| errs.check("name", ProductName::parse(n))),
        description: description.and_then(|d| {
            if d.chars().count() > MAX_DESCRIPTION_CHARS {
                errs.add("description", "must be at most 5000 characters");
                None
            } else {
                Some(d.to_owned())
            }
        }),
        price_cents: price_cents.and_then(|p| errs.check("price_cents", PriceCents::parse(p))),
        tax_rate_bp: tax_rate_bp.and_then(|t| errs.check("tax_rate_bp", TaxRateBp::parse(t))),
        low_stock_threshold: low_stock_threshold.and_then(|t| {
            if t < 0 {
                errs.add("low_stock_threshold", "must be 0 or more");
                None
            } else {
                Some(t)
            }
        }),
    }
}

/// 422 on `category_id` unless the category exists.
async fn check_category(conn: &mut PgConnection, id: Option<Uuid>) -> ApiResult<()> {
    match id {
        Some(id) if !categories::exists(conn, id).await? => {
            Err(ApiError::field("category_id", "no category with this id"))
        }
        _ => Ok(()),
    }
}

async fn create(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    Json(body): Json<NewProductBody>,
) -> ApiResult<Response> {
    let mut errs = FieldErrors::default();
    for (field, present) in [
        ("sku", body.sku.is_some()),
        ("name", body.name.is_some()),
        ("price_cents", body.price_cents.is_some()),
        ("tax_rate_bp", body.tax_rate_bp.is_some()),
    ] {
        if !present {
            errs.add(field, "is required");
        }
    }
    if body.stock_on_hand.is_some() {
        errs.add("stock_on_hand", STOCK_READ_ONLY);
    }
    let c = check_fields(
        &mut errs,
        body.sku.as_deref(),
        Some(body.barcode.as_deref()),
        body.name.as_deref(),
        body.description.as_deref(),
        body.price_cents,
        body.tax_rate_bp,
        body.low_stock_threshold,
    );
    let (Some(sku), Some(name), Some(price), Some(tax)) =
        (c.sku, c.name, c.price_cents, c.tax_rate_bp)
    else {
        return Err(ApiError::validation(errs));
    };
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let barcode = c.barcode.flatten();
    let mut tx = state.db.write.begin().await.map_err(DbError::from)?;
    check_category(&mut tx, body.category_id).await?;
    let product = products::insert(
        &mut tx,
        &NewProduct {
            sku: sku.as_str(),
            barcode: barcode.as_ref().map(Barcode::as_str),
            name: name.as_str(),
            description: c.description.as_deref().unwrap_or_default(),
            category_id: body.category_id,
            price_cents: price.get(),
            tax_rate_bp: tax.get() as i32,
            track_stock: body.track_stock.unwrap_or(true),
            low_stock_threshold: c.low_stock_threshold.unwrap_or(0),
        },
    )
    .await?;
    audit::record(
        &mut tx,
        &meta.actor(&who),
        "product.create",
        "product",
        product.id,
        json!({"sku": product.sku, "name": product.name, "price_cents": product.price_cents,
               "tax_rate_bp": product.tax_rate_bp}),
    )
    .await?;
    tx.commit().await.map_err(DbError::from)?;
    state.invalidate_catalog().await;
    let mut resp = product_response(StatusCode::CREATED, &product)?;
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/products/{}", product.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    sku: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    barcode: Option<Option<String>>,
    name: Option<String>,
    description: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    category_id: Option<Option<Uuid>>,
    price_cents: Option<i64>,
    tax_rate_bp: Option<i64>,
    active: Option<bool>,
    track_stock: Option<bool>,
    low_stock_threshold: Option<i64>,
    /// The version the client read; like `If-Match`, a mismatch is 412.
    version: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    stock_on_hand: Option<Option<Value>>,
}

async fn update(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    if_match: IfMatch,
    Path(id): Path<Uuid>,
    Json(body): Json<PatchBody>,
) -> ApiResult<Response> {
    let mut errs = FieldErrors::default();
    if body.stock_on_hand.is_some() {
        errs.add("stock_on_hand", STOCK_READ_ONLY);
    }
    let c = check_fields(
        &mut errs,
        body.sku.as_deref(),
        body.barcode.as_ref().map(|b| b.as_deref()),
        body.name.as_deref(),
        body.description.as_deref(),
        body.price_cents,
        body.tax_rate_bp,
        body.low_stock_threshold,
    );
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let mut tx = state.db.write.begin().await.map_err(DbError::from)?;
    let before = products::get_for_update(&mut tx, id).await?;
    if !if_match.matches(before.version) || body.version.is_some_and(|v| v != before.version) {
        return Err(ApiError::precondition_failed()
            .with_details(json!({ "current_version": before.version })));
    }
    check_category(&mut tx, body.category_id.flatten()).await?;
    let patch = ProductPatch {
        sku: c.sku.as_ref().map(Sku::as_str),
        barcode: c.barcode.as_ref().map(|b| b.as_ref().map(Barcode::as_str)),
        name: c.name.as_ref().map(ProductName::as_str),
        description: c.description.as_deref(),
        category_id: body.category_id,
        price_cents: c.price_cents.map(PriceCents::get),
        tax_rate_bp: c.tax_rate_bp.map(|t| t.get() as i32),
        active: body.active,
        track_stock: body.track_stock,
        low_stock_threshold: c.low_stock_threshold,
    };
    let after = products::update(&mut tx, id, &patch).await?;
    audit::record(
        &mut tx,
        &meta.actor(&who),
        "product.update",
        "product",
        id,
        json!({ "changes": changes(&before, &after), "version": after.version }),
    )
    .await?;
    tx.commit().await.map_err(DbError::from)?;
    state.invalidate_catalog().await;
    product_response(StatusCode::OK, &after)
}

/// `{field: [before, after]}` for the audit log.
fn changes(before: &ProductRow, after: &ProductRow) -> Value {
    let (Ok(Value::Object(b)), Ok(Value::Object(a))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Value::Null;
    };
    let skip = ["version", "updated_at"];
    let diff: serde_json::Map<String, Value> = a
        .into_iter()
        .filter(|(k, v)| !skip.contains(&k.as_str()) && b.get(k) != Some(v))
        .map(|(k, v)| {
            let old = b.get(&k).cloned().unwrap_or(Value::Null);
            (k, json!([old, v]))
        })
        .collect();
    Value::Object(diff)
}

/// Soft delete: the product becomes inactive (orders keep referring to it). Deleting an
/// inactive product again is a no-op 204.
async fn deactivate(
    State(state): State<AppState>,
    who: Authed<ManagerPlus>,
    meta: RequestMeta,
    if_match: IfMatch,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let mut tx = state.db.write.begin().await.map_err(DbError::from)?;
    let before = products::get_for_update(&mut tx, id).await?;
    if !if_match.matches(before.version) {
        return Err(ApiError::precondition_failed()
            .with_details(json!({ "current_version": before.version })));
    }
    if before.active {
        let patch = ProductPatch {
            active: Some(false),
            ..ProductPatch::default()
        };
        let after = products::update(&mut tx, id, &patch).await?;
        audit::record(
            &mut tx,
            &meta.actor(&who),
            "product.delete",
            "product",
            id,
            json!({ "sku": after.sku, "version": after.version }),
        )
        .await?;
        tx.commit().await.map_err(DbError::from)?;
        state.invalidate_catalog().await;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
