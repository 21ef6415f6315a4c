//! Locations (admin): stores and warehouses that hold stock. The default one (made by the
//! migration) always exists and stays active; a location that holds stock or has open transfers
//! cannot be deactivated. Also the error type shared with transfers and stock counts.

use serde::Deserialize;
use serde_json::{json, Value};
use till_db::audit::{self, Actor};
use till_db::locations::{self, LocationPatch, LocationRow, NewLocation};
use till_db::stock::Shortage;
use till_db::DbError;
use till_domain::FieldErrors;
use uuid::Uuid;

use crate::idempotency::{self, Answer, Begun, IdempotencyError, IdempotencyKey};
use crate::{App, Precondition};

/// Why a location, transfer or stock-count use case refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error("invalid request: {0}")]
    Validation(FieldErrors),
    #[error("not found")]
    NotFound,
    #[error("the record changed since it was read")]
    PreconditionFailed,
    /// A unique field is taken.
    #[error("{message}")]
    AlreadyExists {
        field: &'static str,
        message: String,
    },
    /// The state forbids this (e.g. deactivating a location that holds stock).
    #[error("{message}")]
    Conflict { message: String, details: Value },
    #[error("cannot go from {from} to {to}")]
    InvalidTransition {
        from: String,
        to: String,
        allowed: Vec<&'static str>,
    },
    /// Lines the location's stock cannot cover; nothing moved.
    #[error("insufficient stock")]
    InsufficientStock {
        location_id: Uuid,
        lines: Vec<Shortage>,
    },
    /// A receipt for more than is outstanding on some lines.
    #[error("more received than outstanding")]
    OverReceipt { lines: Value },
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl LocationError {
    pub fn field(name: impl Into<String>, msg: impl Into<String>) -> Self {
        let mut e = FieldErrors::default();
        e.add(name.into(), msg.into());
        LocationError::Validation(e)
    }
}

/// Checks one text field: trimmed length within `1..=max` (when present) and no control
/// characters. Returns the trimmed text, `None` when absent or blank.
pub(crate) fn text<'a>(
    errs: &mut FieldErrors,
    field: &str,
    value: Option<&'a str>,
    max: usize,
    multiline: bool,
) -> Option<&'a str> {
    let v = value.map(str::trim).filter(|v| !v.is_empty())?;
    if let Err(e) = till_domain::limits::check_text(v, multiline) {
        errs.add(field, e.message());
    } else if v.chars().count() > max {
        errs.add(field, format!("must be at most {max} characters"));
    }
    Some(v)
}

const KINDS: [&str; 2] = ["store", "warehouse"];

fn check_code(errs: &mut FieldErrors, code: &str) {
    let ok = (1..=32).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        errs.add("code", "must be 1 to 32 of A-Z, a-z, 0-9, '-' and '_'");
    }
}

fn check_kind(errs: &mut FieldErrors, kind: &str) {
    if !KINDS.contains(&kind) {
        errs.add("kind", "must be store or warehouse");
    }
}

/// A new location as asked for.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLocationInput {
    /// Short unique code (`[A-Za-z0-9_-]`, 1..32), e.g. `WH1`.
    pub code: String,
    pub name: String,
    /// `store` or `warehouse`.
    pub kind: String,
    pub address: Option<String>,
    /// Whether customers may choose it for pickup (default false).
    #[serde(default)]
    pub pickup_enabled: bool,
}

/// A change to a location; absent fields stay.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationPatchInput {
    pub code: Option<String>,
    pub name: Option<String>,
    pub kind: Option<String>,
    /// `null` clears it.
    #[serde(default, with = "serde_with_null")]
    #[schema(value_type = Option<String>)]
    pub address: Option<Option<String>>,
    pub pickup_enabled: Option<bool>,
    pub active: Option<bool>,
}

/// `Some(None)` for an explicit `null`, `None` when the key is absent.
mod serde_with_null {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Ok(Some(Option::<String>::deserialize(d)?))
    }
}

fn taken(e: DbError, code: &str) -> LocationError {
    match e {
        DbError::Unique(_) => LocationError::AlreadyExists {
            field: "code",
            message: format!("A location with the code \"{code}\" already exists."),
        },
        e => e.into(),
    }
}

/// Creates a location (admin).
pub async fn create(
    app: &App,
    actor: &Actor,
    by: Uuid,
    input: &NewLocationInput,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&LocationRow) -> Answer,
) -> Result<Answer, LocationError> {
    let mut errs = FieldErrors::default();
    let code = input.code.trim();
    check_code(&mut errs, code);
    let name = text(&mut errs, "name", Some(&input.name), 100, false);
    if name.is_none() {
        errs.add("name", "is required");
    }
    check_kind(&mut errs, &input.kind);
    let address = text(&mut errs, "address", input.address.as_deref(), 500, true);
    if !errs.is_empty() {
        return Err(LocationError::Validation(errs));
    }
    let mut run = match idempotency::begin::<LocationError>(app, by, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    let row = locations::insert(
        tx,
        &NewLocation {
            code,
            name: name.unwrap_or_default(),
            kind: &input.kind,
            address,
            pickup_enabled: input.pickup_enabled,
        },
    )
    .await
    .map_err(|e| taken(e, code))?;
    audit::record(tx, actor, "location.create", "location", row.id, json!(row)).await?;
    let answer = run.finish::<LocationError>(render(&row)).await?;
    app.invalidate_catalog().await;
    Ok(answer)
}

/// Changes a location (admin, `If-Match`). Deactivating the default location, or one that holds
/// stock or has open transfers, is a 409.
pub async fn update(
    app: &App,
    actor: &Actor,
    id: Uuid,
    input: &LocationPatchInput,
    expected: &Precondition,
) -> Result<LocationRow, LocationError> {
    let mut errs = FieldErrors::default();
    let code = input.code.as_deref().map(str::trim);
    if let Some(c) = code {
        check_code(&mut errs, c);
    }
    let name = text(&mut errs, "name", input.name.as_deref(), 100, false);
    if input.name.is_some() && name.is_none() {
        errs.add("name", "must not be blank");
    }
    if let Some(k) = &input.kind {
        check_kind(&mut errs, k);
    }
    let address = input
        .address
        .as_ref()
        .map(|a| text(&mut errs, "address", a.as_deref(), 500, true));
    if !errs.is_empty() {
        return Err(LocationError::Validation(errs));
    }
    let mut tx = app.db.write.begin().await.map_err(DbError::from)?;
    let current = locations::get_for_update(&mut tx, id)
        .await?
        .ok_or(LocationError::NotFound)?;
    if !expected.matches(current.version) {
        return Err(LocationError::PreconditionFailed);
    }
    if input.active == Some(false) && current.active {
        if current.is_default {
            return Err(LocationError::Conflict {
                message: "The default location cannot be deactivated.".into(),
                details: json!({"is_default": true}),
            });
        }
        let (units, open_transfers) = locations::holdings(&mut tx, id).await?;
        if units > 0 || open_transfers > 0 {
            return Err(LocationError::Conflict {
                message: "This location still holds stock or has open transfers.".into(),
                details: json!({"on_hand": units, "open_transfers": open_transfers}),
            });
        }
    }
    let row = locations::update(
        &mut tx,
        id,
        &LocationPatch {
            code,
            name,
            kind: input.kind.as_deref(),
            address,
            pickup_enabled: input.pickup_enabled,
            active: input.active,
        },
    )
    .await
    .map_err(|e| taken(e, code.unwrap_or_default()))?;
    audit::record(
        &mut tx,
        actor,
        "location.update",
        "location",
        id,
        json!(row),
    )
    .await?;
    tx.commit().await.map_err(DbError::from)?;
    app.invalidate_catalog().await;
    Ok(row)
}

/// An active location, or a 422 on `field`.
pub(crate) async fn active(
    conn: &mut till_db::PgConnection,
    field: &str,
    id: Uuid,
) -> Result<LocationRow, LocationError> {
    match locations::get(conn, id).await? {
        Some(l) if l.active => Ok(l),
        _ => Err(LocationError::field(
            field,
            "no such location, or it is inactive",
        )),
    }
}
