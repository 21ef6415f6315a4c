//! Reading an import file: the header, then one record at a time, each checked with the rules
//! of the JSON API (`crate::products`). Blocking (it reads a `std::io::Read`): run it on a
//! blocking thread over the request body.

use std::collections::HashMap;
use std::io::Read;

use sha2::{Digest, Sha256};
use till_domain::{limits, slugify, FieldErrors};

use super::{RowError, COLUMNS, MAX_REPORTED_ERRORS, MAX_STOCK};
use crate::products::check_fields;

/// One valid row. `None` means "column absent or cell empty": an existing product keeps its
/// value, a new one gets the default.
#[derive(Debug, Clone)]
pub struct ImportRow {
    /// 1 = the first record after the header.
    pub row: usize,
    pub sku: String,
    /// `Some(None)`: an empty cell clears the barcode.
    pub barcode: Option<Option<String>>,
    pub name: String,
    pub description: Option<String>,
    /// `Some(None)`: an empty cell clears the category.
    pub category: Option<Option<String>>,
    pub price_cents: Option<i64>,
    pub tax_rate_bp: Option<i32>,
    pub active: Option<bool>,
    pub track_stock: Option<bool>,
    pub low_stock_threshold: Option<i64>,
    pub stock_on_hand: Option<i64>,
}

/// The whole file, checked.
#[derive(Debug, Default)]
pub struct Parsed {
    pub rows: Vec<ImportRow>,
    pub errors: Vec<RowError>,
    /// Errors found, including those past [`MAX_REPORTED_ERRORS`].
    pub error_count: usize,
    /// SHA-256 of the raw body (the Idempotency-Key fingerprint).
    pub body_sha256: String,
}

/// Why the file as a whole cannot be read (a 422, or a 413 for `TooLarge`).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("invalid columns")]
    Columns(FieldErrors),
    #[error("the file is not valid CSV: {0}")]
    Malformed(String),
    #[error("the body is larger than allowed")]
    TooLarge,
    #[error("reading the body: {0}")]
    Io(std::io::Error),
}

/// Hashes what passes through.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Column index of each known column present in the header.
type Layout = HashMap<&'static str, usize>;

fn layout(header: &csv::StringRecord) -> Result<Layout, FileError> {
    let mut errs = FieldErrors::default();
    let mut cols = Layout::new();
    for (i, raw) in header.iter().enumerate() {
        let name = raw.trim().trim_start_matches('\u{feff}');
        match COLUMNS.iter().find(|c| **c == name) {
            Some(c) if cols.insert(c, i).is_some() => {
                errs.add("columns", format!("{name} appears twice"));
            }
            Some(_) => {}
            None => {
                let shown: String = name.chars().take(64).collect();
                errs.add(
                    "columns",
                    format!("unknown column {shown:?} (known: {})", COLUMNS.join(", ")),
                );
            }
        }
    }
    for required in ["sku", "name"] {
        if !cols.contains_key(required) {
            errs.add("columns", format!("{required} is required"));
        }
    }
    if errs.is_empty() {
        Ok(cols)
    } else {
        Err(FileError::Columns(errs))
    }
}

fn io_error(e: std::io::Error) -> FileError {
    if e.get_ref()
        .is_some_and(|inner| inner.to_string().contains("length limit exceeded"))
        || e.to_string().contains("length limit exceeded")
    {
        FileError::TooLarge
    } else {
        FileError::Io(e)
    }
}

fn csv_error(e: csv::Error) -> FileError {
    let position = e.position().map(|p| p.record());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io_error(io),
        csv::ErrorKind::Utf8 { .. } => FileError::Malformed(format!(
            "record {} is not UTF-8",
            position.unwrap_or_default()
        )),
        other => FileError::Malformed(format!("{other:?}").chars().take(200).collect()),
    }
}

/// Reads and checks every record. Row problems are collected, not fatal; only a bad header or
/// unreadable CSV stops the read.
pub fn parse(body: impl Read) -> Result<Parsed, FileError> {
    let mut hashing = Hashing {
        inner: body,
        hash: Sha256::new(),
    };
    let mut parsed = Parsed::default();
    {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(&mut hashing);
        let header = reader.headers().map_err(csv_error)?.clone();
        let cols = layout(&header)?;
        let mut seen_sku: HashMap<String, usize> = HashMap::new();
        let mut seen_barcode: HashMap<String, usize> = HashMap::new();
        let mut record = csv::StringRecord::new();
        let mut row = 0;
        while reader.read_record(&mut record).map_err(csv_error)? {
            row += 1;
            let mut errs = FieldErrors::default();
            let checked = check_row(row, &cols, &record, &mut errs);
            if let Some(r) = &checked {
                if let Some(first) = seen_sku.insert(r.sku.clone(), row) {
                    errs.add("sku", format!("appears again (first on row {first})"));
                }
                if let Some(Some(b)) = &r.barcode {
                    if let Some(first) = seen_barcode.insert(b.clone(), row) {
                        errs.add("barcode", format!("appears again (first on row {first})"));
                    }
                }
            }
            if errs.is_empty() {
                parsed.rows.extend(checked);
            } else {
                for (field, msgs) in errs.as_map() {
                    for message in msgs {
                        parsed.error_count += 1;
                        if parsed.errors.len() < MAX_REPORTED_ERRORS {
                            parsed.errors.push(RowError {
                                row,
                                field: field.clone(),
                                message: message.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    // Drain anything the CSV reader did not need, so the fingerprint covers the whole body.
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(io_error)?;
    parsed.body_sha256 = hex::encode(hashing.hash.finalize());
    Ok(parsed)
}

fn cell<'r>(cols: &Layout, record: &'r csv::StringRecord, col: &str) -> Option<&'r str> {
    cols.get(col).and_then(|i| record.get(*i))
}

fn number(errs: &mut FieldErrors, field: &str, raw: Option<&str>) -> Option<i64> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
    match raw.parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) => {
            errs.add(field, "must be a whole number");
            None
        }
    }
}

fn boolean(errs: &mut FieldErrors, field: &str, raw: Option<&str>) -> Option<bool> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => {
            errs.add(field, "must be true or false");
            None
        }
    }
}

fn text<'r>(errs: &mut FieldErrors, field: &str, raw: Option<&'r str>) -> Option<&'r str> {
    let raw = raw?;
    match limits::check_text(raw, limits::is_multiline(field)) {
        Ok(()) => Some(raw),
        Err(e) => {
            errs.add(field, e.to_string());
            None
        }
    }
}

/// One record, checked like the JSON API checks the same fields.
fn check_row(
    row: usize,
    cols: &Layout,
    record: &csv::StringRecord,
    errs: &mut FieldErrors,
) -> Option<ImportRow> {
    let sku = text(errs, "sku", cell(cols, record, "sku")).map(str::trim);
    let name = text(errs, "name", cell(cols, record, "name")).map(str::trim);
    let barcode = text(errs, "barcode", cell(cols, record, "barcode")).map(str::trim);
    let description = text(errs, "description", cell(cols, record, "description"));
    let category = text(errs, "category", cell(cols, record, "category")).map(str::trim);
    let price = number(errs, "price_cents", cell(cols, record, "price_cents"));
    let tax = number(errs, "tax_rate_bp", cell(cols, record, "tax_rate_bp"));
    let threshold = number(
        errs,
        "low_stock_threshold",
        cell(cols, record, "low_stock_threshold"),
    );
    let stock = number(errs, "stock_on_hand", cell(cols, record, "stock_on_hand"));
    let active = boolean(errs, "active", cell(cols, record, "active"));
    let track_stock = boolean(errs, "track_stock", cell(cols, record, "track_stock"));
    if sku.is_some_and(str::is_empty) {
        errs.add("sku", "is required");
    }
    if name.is_some_and(str::is_empty) {
        errs.add("name", "is required");
    }
    let c = check_fields(
        errs,
        sku.filter(|s| !s.is_empty()),
        // An absent barcode column leaves barcodes alone; an empty cell clears one.
        cols.contains_key("barcode").then_some(barcode),
        name.filter(|s| !s.is_empty()),
        description,
        price,
        tax,
        threshold,
    );
    if let Some(s) = stock {
        if !(0..=MAX_STOCK).contains(&s) {
            errs.add(
                "stock_on_hand",
                format!("must be between 0 and {MAX_STOCK}"),
            );
        }
    }
    if let Some(cat) = category.filter(|c| !c.is_empty()) {
        if slugify(cat).is_empty() {
            errs.add("category", "must contain a letter or digit");
        } else if cat.chars().count() > 100 {
            errs.add("category", "must be at most 100 characters");
        }
    }
    if !errs.is_empty() {
        return None;
    }
    Some(ImportRow {
        row,
        sku: c.sku?.as_str().to_owned(),
        barcode: c.barcode.map(|b| b.map(|b| b.as_str().to_owned())),
        name: c.name?.as_str().to_owned(),
        description: c.description,
        category: cols
            .contains_key("category")
            .then(|| category.filter(|c| !c.is_empty()).map(str::to_owned)),
        price_cents: c.price_cents.map(|p| p.get()),
        tax_rate_bp: c.tax_rate_bp.map(|t| t.get() as i32),
        active,
        track_stock,
        low_stock_threshold: c.low_stock_threshold,
        stock_on_hand: stock,
    })
}
