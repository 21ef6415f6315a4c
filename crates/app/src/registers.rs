//! Registers (admin): create, rename, deactivate. A register with an open shift cannot be
//! deactivated.

use serde::Deserialize;
use serde_json::json;
use till_db::audit::{self, Actor};
use till_db::registers::{self, Register};
use till_db::{shifts, DbError};
use till_domain::{limits, FieldErrors};
use uuid::Uuid;

use crate::idempotency::{self, Answer, Begun, IdempotencyKey};
use crate::shifts::ShiftError;
use crate::{App, Precondition};

const MAX_NAME: usize = 100;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewRegister)]
pub struct RegisterInput {
    pub name: String,
    /// The active location it sells from (absent: the default location).
    pub location_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RegisterPatch)]
pub struct RegisterPatch {
    pub name: Option<String>,
    pub active: Option<bool>,
    /// Move the register to another active location.
    pub location_id: Option<Uuid>,
}

fn check_name(name: &str, errs: &mut FieldErrors) {
    if name.is_empty() || name.chars().count() > MAX_NAME {
        errs.add("name", format!("must be 1 to {MAX_NAME} characters"));
    } else if let Err(e) = limits::check_text(name, false) {
        errs.add("name", e.message());
    }
}

/// A named location must exist and be active.
async fn check_location(
    conn: &mut till_db::PgConnection,
    location: Option<Uuid>,
) -> Result<(), ShiftError> {
    let Some(id) = location else { return Ok(()) };
    match till_db::locations::get(conn, id).await? {
        Some(l) if l.active => Ok(()),
        _ => Err(ShiftError::field(
            "location_id",
            "no such location, or it is inactive",
        )),
    }
}

fn name_taken(e: DbError) -> ShiftError {
    match e {
        DbError::Unique(v) if v == "registers_name_key" => {
            ShiftError::field("name", "another register has this name")
        }
        e => e.into(),
    }
}

pub async fn create(
    app: &App,
    actor: &Actor,
    caller: Uuid,
    input: &RegisterInput,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&Register) -> Answer,
) -> Result<Answer, ShiftError> {
    let name = input.name.trim();
    let mut errs = FieldErrors::new();
    check_name(name, &mut errs);
    if !errs.is_empty() {
        return Err(ShiftError::Validation(errs));
    }
    let mut run = match idempotency::begin::<ShiftError>(app, caller, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    check_location(&mut run.tx, input.location_id).await?;
    let register = registers::insert(&mut run.tx, name, input.location_id)
        .await
        .map_err(name_taken)?;
    let data = json!({"name": register.name, "location_id": register.location_id});
    audit::record(
        &mut run.tx,
        actor,
        "register.create",
        "register",
        register.id,
        data,
    )
    .await?;
    run.finish::<ShiftError>(render(&register)).await
}

pub async fn update(
    app: &App,
    actor: &Actor,
    id: Uuid,
    patch: &RegisterPatch,
    precondition: &Precondition,
) -> Result<Register, ShiftError> {
    let name = patch.name.as_deref().map(str::trim);
    let mut errs = FieldErrors::new();
    if let Some(n) = name {
        check_name(n, &mut errs);
    }
    if !errs.is_empty() {
        return Err(ShiftError::Validation(errs));
    }
    let mut tx = app.db.write.begin().await.map_err(DbError::from)?;
    let before = registers::lock(&mut tx, id).await.map_err(|e| match e {
        DbError::NotFound => ShiftError::NotFound,
        e => e.into(),
    })?;
    if !precondition.matches(before.version) {
        return Err(ShiftError::PreconditionFailed {
            current_version: before.version,
        });
    }
    if patch.active == Some(false) {
        if let Some(open) = shifts::open_of_register(&mut tx, id).await? {
            return Err(ShiftError::Conflict {
                message: "This register has an open shift; close it first.",
                open_shift_id: Some(open),
            });
        }
    }
    check_location(&mut tx, patch.location_id).await?;
    let after = registers::update(&mut tx, id, name, patch.active, patch.location_id)
        .await
        .map_err(name_taken)?;
    let data = json!({"name": name, "active": patch.active, "location_id": patch.location_id});
    audit::record(&mut tx, actor, "register.update", "register", id, data).await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(after)
}
