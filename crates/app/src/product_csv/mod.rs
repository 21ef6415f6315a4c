//! The catalog as CSV (manager+): export every product, import (upsert by SKU) a file of them.
//!
//! Import is all or nothing. The file is read and every row checked first ([`parse`], with the
//! JSON API's rules), then the rows are compared with the database in one transaction:
//! barcodes held by other products are errors too. Any error → nothing is written and the
//! report names each `{row, field, message}`. Otherwise the rows are written in batches in that
//! same transaction. A dry run does all of it and rolls back, so its report is exactly what the
//! real import would do.

pub mod parse;

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use serde_json::json;
use till_db::audit::{self, Actor};
use till_db::product_import::{self as db, ExportRow, ImportProduct, StockCount};
use till_db::{categories, DbError, PgConnection};
use till_domain::{slugify, FieldErrors};
use uuid::Uuid;

use crate::idempotency::{self, Answer, Begun, IdempotencyError, IdempotencyKey};
use crate::App;
pub use parse::{FileError, ImportRow, Parsed};

/// The columns, in export order.
pub const COLUMNS: [&str; 11] = [
    "sku",
    "barcode",
    "name",
    "description",
    "category",
    "price_cents",
    "tax_rate_bp",
    "active",
    "track_stock",
    "low_stock_threshold",
    "stock_on_hand",
];
/// Beyond this many, errors are counted (`error_count`) but not listed.
pub const MAX_REPORTED_ERRORS: usize = 1000;
/// Highest `stock_on_hand` an import may set.
pub const MAX_STOCK: i64 = 1_000_000_000;
/// Rows per write statement.
const BATCH: usize = 2000;

/// One problem with one row (`row` 1 = the first record after the header).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RowError {
    pub row: usize,
    pub field: String,
    pub message: String,
}

/// What an import did (or, for a dry run or a file with errors, would do).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub dry_run: bool,
    /// True when the rows were written (not a dry run, and no errors).
    pub applied: bool,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Every error found, up to 1000 (see `error_count`).
    pub errors: Vec<RowError>,
    pub error_count: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl ImportError {
    /// The 422 details of a header problem.
    pub fn columns(&self) -> Option<&FieldErrors> {
        match self {
            ImportError::File(FileError::Columns(e)) => Some(e),
            _ => None,
        }
    }
}

/// The header line and one line per row, as RFC 4180 CSV.
pub struct CsvEncoder {
    writer: csv::Writer<Vec<u8>>,
}

impl Default for CsvEncoder {
    fn default() -> Self {
        Self::new()
    }
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(64 * 1024))
}

impl CsvEncoder {
    /// An encoder whose first output is the header row.
    pub fn new() -> Self {
        let mut writer = csv_writer();
        // Writing into a Vec cannot fail.
        let _ = writer.write_record(COLUMNS);
        CsvEncoder { writer }
    }

    pub fn push(&mut self, r: &ExportRow) {
        let _ = self.writer.write_record([
            r.sku.as_str(),
            r.barcode.as_deref().unwrap_or_default(),
            r.name.as_str(),
            r.description.as_str(),
            r.category.as_deref().unwrap_or_default(),
            &r.price_cents.to_string(),
            &r.tax_rate_bp.to_string(),
            if r.active { "true" } else { "false" },
            if r.track_stock { "true" } else { "false" },
            &r.low_stock_threshold.to_string(),
            &r.stock_on_hand.to_string(),
        ]);
    }

    /// Bytes encoded so far (give or take the writer's own small buffer).
    pub fn buffered(&self) -> usize {
        self.writer.get_ref().len()
    }

    /// Takes what is encoded so far; the encoder carries on with the next row.
    pub fn take(&mut self) -> Vec<u8> {
        let done = std::mem::replace(&mut self.writer, csv_writer());
        done.into_inner().unwrap_or_default()
    }
}

/// Applies a parsed file: compares, checks barcodes, writes (unless `dry_run` or any error),
/// and reports. With `key`, a repeated request gets the first answer back.
pub async fn import(
    app: &App,
    actor: &Actor,
    caller: Uuid,
    parsed: Parsed,
    dry_run: bool,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&ImportReport) -> Answer,
) -> Result<Answer, ImportError> {
    // A dry run stores no answer: it has no effect to protect.
    let key = key.filter(|_| !dry_run);
    let mut run = match idempotency::begin::<ImportError>(app, caller, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let Parsed {
        rows,
        mut errors,
        mut error_count,
        ..
    } = parsed;
    let tx = &mut run.tx;
    let plan = plan(tx, &rows, &mut errors, &mut error_count).await?;
    let mut report = ImportReport {
        dry_run,
        applied: false,
        created: plan.create.len(),
        updated: plan.update.len(),
        unchanged: plan.unchanged,
        errors,
        error_count,
    };
    report.errors.sort_by_key(|e| e.row);
    if dry_run || report.error_count > 0 {
        // Rolled back: categories the plan created and the row locks go with it.
        return Ok(render(&report));
    }
    // Updates first: a barcode an existing product gives up may go to a new one.
    for batch in plan.update.chunks(BATCH) {
        db::update_batch(tx, batch).await?;
    }
    for batch in plan.create.chunks(BATCH) {
        db::insert_batch(tx, batch).await?;
    }
    for batch in plan.counts.chunks(BATCH) {
        db::record_counts(tx, batch, actor.user_id).await?;
    }
    // Webhooks hear of every product the import created or changed (not the unchanged ones).
    let changed: Vec<Uuid> = plan
        .update
        .iter()
        .chain(&plan.create)
        .map(|p| p.id)
        .collect();
    for batch in changed.chunks(BATCH) {
        db::enqueue_updated(tx, batch).await?;
    }
    report.applied = true;
    audit::record(
        tx,
        actor,
        "product.import",
        "product",
        "import",
        json!({"created": report.created, "updated": report.updated,
               "unchanged": report.unchanged, "stock_counts": plan.counts.len()}),
    )
    .await?;
    let answer = run.finish::<ImportError>(render(&report)).await?;
    app.after_commit(false);
    app.invalidate_catalog().await;
    Ok(answer)
}

/// What the rows would change.
#[derive(Default)]
struct Plan {
    create: Vec<ImportProduct>,
    update: Vec<ImportProduct>,
    unchanged: usize,
    counts: Vec<StockCount>,
}

fn push_error(errors: &mut Vec<RowError>, count: &mut usize, row: usize, field: &str, msg: &str) {
    *count += 1;
    if errors.len() < MAX_REPORTED_ERRORS {
        errors.push(RowError {
            row,
            field: field.to_owned(),
            message: msg.to_owned(),
        });
    }
}

async fn plan(
    tx: &mut PgConnection,
    rows: &[ImportRow],
    errors: &mut Vec<RowError>,
    error_count: &mut usize,
) -> Result<Plan, ImportError> {
    let category_ids = ensure_categories(tx, rows).await?;
    let skus: Vec<String> = rows.iter().map(|r| r.sku.clone()).collect();
    let mut existing: HashMap<String, ImportProduct> = HashMap::with_capacity(rows.len());
    for chunk in skus.chunks(10_000) {
        for p in db::lock_existing(tx, chunk).await? {
            existing.insert(p.sku.clone(), p);
        }
    }
    // A barcode may only move to a row's product if the product holding it now gives it up
    // in this same file.
    let new_barcode: HashMap<&str, Option<&str>> = rows
        .iter()
        .filter_map(|r| Some((r.sku.as_str(), r.barcode.as_ref()?.as_deref())))
        .collect();
    let barcodes: Vec<String> = rows
        .iter()
        .filter_map(|r| r.barcode.clone().flatten())
        .collect();
    let mut owner: HashMap<String, String> = HashMap::new();
    for chunk in barcodes.chunks(10_000) {
        owner.extend(db::barcode_owners(tx, chunk).await?);
    }
    let mut plan = Plan::default();
    for r in rows {
        if let Some(Some(b)) = &r.barcode {
            if let Some(holder) = owner.get(b).filter(|h| **h != r.sku) {
                let released = new_barcode
                    .get(holder.as_str())
                    .is_some_and(|nb| *nb != Some(b.as_str()));
                if !released {
                    let msg = format!("is already used by the product with SKU {holder}");
                    push_error(errors, error_count, r.row, "barcode", &msg);
                    continue;
                }
            }
        }
        let category_id = r.category.as_ref().map(|c| {
            c.as_ref()
                .and_then(|name| category_ids.get(&slugify(name)).copied())
        });
        match existing.get(&r.sku) {
            None => {
                let p = ImportProduct {
                    id: Uuid::now_v7(),
                    sku: r.sku.clone(),
                    barcode: r.barcode.clone().flatten(),
                    name: r.name.clone(),
                    description: r.description.clone().unwrap_or_default(),
                    category_id: category_id.flatten(),
                    price_cents: r.price_cents.unwrap_or(0),
                    tax_rate_bp: r.tax_rate_bp.unwrap_or(0),
                    active: r.active.unwrap_or(true),
                    track_stock: r.track_stock.unwrap_or(true),
                    low_stock_threshold: r.low_stock_threshold.unwrap_or(0),
                    stock_on_hand: r
                        .stock_on_hand
                        .filter(|_| r.track_stock != Some(false))
                        .unwrap_or(0),
                };
                if p.stock_on_hand > 0 {
                    plan.counts.push(StockCount {
                        product_id: p.id,
                        delta: p.stock_on_hand,
                        balance_after: p.stock_on_hand,
                    });
                }
                plan.create.push(p);
            }
            Some(old) => {
                let track_stock = r.track_stock.unwrap_or(old.track_stock);
                let stock = match r.stock_on_hand {
                    Some(s) if track_stock => s,
                    _ => old.stock_on_hand,
                };
                let new = ImportProduct {
                    id: old.id,
                    sku: old.sku.clone(),
                    barcode: r.barcode.clone().unwrap_or_else(|| old.barcode.clone()),
                    name: r.name.clone(),
                    description: r
                        .description
                        .clone()
                        .unwrap_or_else(|| old.description.clone()),
                    category_id: category_id.unwrap_or(old.category_id),
                    price_cents: r.price_cents.unwrap_or(old.price_cents),
                    tax_rate_bp: r.tax_rate_bp.unwrap_or(old.tax_rate_bp),
                    active: r.active.unwrap_or(old.active),
                    track_stock,
                    low_stock_threshold: r.low_stock_threshold.unwrap_or(old.low_stock_threshold),
                    stock_on_hand: stock,
                };
                if new == *old {
                    plan.unchanged += 1;
                } else {
                    if new.stock_on_hand != old.stock_on_hand {
                        plan.counts.push(StockCount {
                            product_id: new.id,
                            delta: new.stock_on_hand - old.stock_on_hand,
                            balance_after: new.stock_on_hand,
                        });
                    }
                    plan.update.push(new);
                }
            }
        }
    }
    Ok(plan)
}

/// The id of every category the rows name (by slug), creating the missing ones.
async fn ensure_categories(
    tx: &mut PgConnection,
    rows: &[ImportRow],
) -> Result<HashMap<String, Uuid>, DbError> {
    let names: BTreeSet<&str> = rows
        .iter()
        .filter_map(|r| r.category.as_ref()?.as_deref())
        .collect();
    let mut ids = HashMap::new();
    for name in names {
        let slug = slugify(name);
        if ids.contains_key(&slug) {
            continue;
        }
        let c = categories::ensure(tx, name, &slug).await?;
        ids.insert(slug, c.id);
    }
    Ok(ids)
}
