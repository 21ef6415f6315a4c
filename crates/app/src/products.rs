//! Product writes (manager+): create, change and soft-delete, with optimistic concurrency on
//! `version`. Every write invalidates the catalog cache after its commit. Stock is not a
//! product field here: it changes through the stock ledger (`crate::stock`).

use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use till_db::audit::{self, Actor};
use till_db::products::{self, NewProduct, ProductPatch, ProductRow};
use till_db::{categories, DbError, PgConnection};
use till_domain::{Barcode, FieldErrors, PriceCents, ProductName, Sku, TaxRateBp};
use uuid::Uuid;

use crate::idempotency::{self, Answer, Begun, IdempotencyError, IdempotencyKey};
use crate::{App, Precondition};

const MAX_DESCRIPTION_CHARS: usize = 5000;

/// Why a product write was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    #[error("invalid product: {0}")]
    Validation(FieldErrors),
    /// The product is at another version than the client read.
    #[error("the product is at version {current_version}")]
    PreconditionFailed { current_version: i64 },
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl ProductError {
    fn field(field: &str, msg: &str) -> Self {
        let mut e = FieldErrors::default();
        e.add(field, msg);
        ProductError::Validation(e)
    }
}

/// `Some(None)` for an explicit `null`, `None` for an absent field.
fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

const STOCK_READ_ONLY: &str =
    "is read-only: stock changes through POST /api/v1/inventory/adjustments";

/// A new product as asked for; required fields are checked here (missing ones are field errors).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProductInput {
    /// 1..64 of `[A-Za-z0-9._-]`, unique.
    #[schema(value_type = String, required = true)]
    pub sku: Option<String>,
    pub barcode: Option<String>,
    /// 1..200 characters.
    #[schema(value_type = String, required = true)]
    pub name: Option<String>,
    pub description: Option<String>,
    pub category_id: Option<Uuid>,
    #[schema(value_type = i64, required = true, minimum = 0)]
    pub price_cents: Option<i64>,
    /// Basis points, 0..10000 (825 = 8.25 %).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 10000)]
    pub tax_rate_bp: Option<i64>,
    pub track_stock: Option<bool>,
    pub low_stock_threshold: Option<i64>,
    /// Read-only: sending it is a 422 (stock changes through movements), so it is not documented.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(ignore)]
    pub stock_on_hand: Option<Option<Value>>,
}

/// Checked product fields shared by create and update.
#[derive(Default)]
pub(crate) struct Checked {
    pub sku: Option<Sku>,
    pub barcode: Option<Option<Barcode>>,
    pub name: Option<ProductName>,
    pub description: Option<String>,
    pub price_cents: Option<PriceCents>,
    pub tax_rate_bp: Option<TaxRateBp>,
    pub low_stock_threshold: Option<i64>,
}

/// Parses whichever fields are present, recording every problem in `errs` (the CSV import
/// checks its rows with this too).
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_fields(
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
            if !(0..=till_domain::limits::MAX_STOCK_DELTA).contains(&t) {
                errs.add("low_stock_threshold", "must be between 0 and 1000000");
                None
            } else {
                Some(t)
            }
        }),
    }
}

/// 422 on `category_id` unless the category exists.
async fn check_category(conn: &mut PgConnection, id: Option<Uuid>) -> Result<(), ProductError> {
    match id {
        Some(id) if !categories::exists(conn, id).await? => Err(ProductError::field(
            "category_id",
            "no category with this id",
        )),
        _ => Ok(()),
    }
}

/// Creates a product (audited as `product.create` by `actor`).
pub async fn create(
    app: &App,
    actor: &Actor,
    caller: Uuid,
    body: &NewProductInput,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&ProductRow) -> Answer,
) -> Result<Answer, ProductError> {
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
        return Err(ProductError::Validation(errs));
    };
    if !errs.is_empty() {
        return Err(ProductError::Validation(errs));
    }
    let barcode = c.barcode.flatten();
    let mut run = match idempotency::begin::<ProductError>(app, caller, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    check_category(tx, body.category_id).await?;
    let product = products::insert(
        tx,
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
        tx,
        actor,
        "product.create",
        "product",
        product.id,
        json!({"sku": product.sku, "name": product.name, "price_cents": product.price_cents,
               "tax_rate_bp": product.tax_rate_bp}),
    )
    .await?;
    record_event(tx, &product).await?;
    let answer = run.finish::<ProductError>(render(&product)).await?;
    app.after_commit(false);
    app.invalidate_catalog().await;
    Ok(answer)
}

/// A change to a product: absent fields stay as they are; `null` clears a nullable one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatchInput {
    pub sku: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub barcode: Option<Option<String>>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub category_id: Option<Option<Uuid>>,
    pub price_cents: Option<i64>,
    pub tax_rate_bp: Option<i64>,
    pub active: Option<bool>,
    pub track_stock: Option<bool>,
    pub low_stock_threshold: Option<i64>,
    /// The version the client read; like `If-Match`, a mismatch is 412.
    pub version: Option<i64>,
    /// Read-only (422 when sent), so not documented.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(ignore)]
    pub stock_on_hand: Option<Option<Value>>,
}

/// Changes the fields present in `body` if the product's version satisfies `expected` (and the
/// body's own `version`, when given).
pub async fn update(
    app: &App,
    actor: &Actor,
    id: Uuid,
    expected: &Precondition,
    body: &ProductPatchInput,
) -> Result<ProductRow, ProductError> {
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
        return Err(ProductError::Validation(errs));
    }
    let mut tx = app.db.write.begin().await.map_err(DbError::from)?;
    let before = products::get_for_update(&mut tx, id).await?;
    if !expected.matches(before.version) || body.version.is_some_and(|v| v != before.version) {
        return Err(ProductError::PreconditionFailed {
            current_version: before.version,
        });
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
        actor,
        "product.update",
        "product",
        id,
        json!({ "changes": changes(&before, &after), "version": after.version }),
    )
    .await?;
    record_event(&mut tx, &after).await?;
    tx.commit().await.map_err(DbError::from)?;
    app.after_commit(false);
    app.invalidate_catalog().await;
    Ok(after)
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
pub async fn deactivate(
    app: &App,
    actor: &Actor,
    id: Uuid,
    expected: &Precondition,
) -> Result<(), ProductError> {
    let mut tx = app.db.write.begin().await.map_err(DbError::from)?;
    let before = products::get_for_update(&mut tx, id).await?;
    if !expected.matches(before.version) {
        return Err(ProductError::PreconditionFailed {
            current_version: before.version,
        });
    }
    if before.active {
        let patch = ProductPatch {
            active: Some(false),
            ..ProductPatch::default()
        };
        let after = products::update(&mut tx, id, &patch).await?;
        audit::record(
            &mut tx,
            actor,
            "product.delete",
            "product",
            id,
            json!({ "sku": after.sku, "version": after.version }),
        )
        .await?;
        record_event(&mut tx, &after).await?;
        tx.commit().await.map_err(DbError::from)?;
        app.after_commit(false);
        app.invalidate_catalog().await;
    }
    Ok(())
}

/// `product.updated` (created, changed or deactivated) for webhooks, in the caller's
/// transaction; live clients are not sent it (they re-read the cached catalog).
pub async fn record_event(conn: &mut PgConnection, product: &ProductRow) -> Result<(), DbError> {
    let payload = json!({
        "type": "product.updated",
        "at": chrono::Utc::now(),
        "audience": "none",
        "data": product,
    });
    till_db::outbox::enqueue(conn, "product.updated", &payload).await?;
    Ok(())
}
