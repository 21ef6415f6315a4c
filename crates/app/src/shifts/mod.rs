//! Register shifts: open with a float, join, paid-in/paid-out, the blind close, and the X/Z
//! reports. Which shift money lands in is decided in PostgreSQL by a row lock (see
//! `till_db::shifts`); this module holds the rules around it.
//!
//! Blind close: while a shift is open, a cashier never sees the cash the drawer should hold
//! (`expected_cash_cents` and `difference_cents` are null in what they read); the close's
//! answer shows it. Managers and admins see it all the time.

use serde::Deserialize;
use serde_json::json;
use till_db::audit::{self, Actor};
use till_db::registers;
use till_db::shifts::{self, CashMovement, Closing, NewShift, Report, Shift, ShiftRow};
use till_db::{DbError, PgConnection};
use till_domain::{difference_needs_manager, limits, CashMovementType, FieldErrors};
use uuid::Uuid;

use crate::idempotency::{self, Answer, Begun, IdempotencyError, IdempotencyKey};
use crate::{App, Caller};

mod read;

pub use read::{current, get, list_scope, report, views};

const MAX_NOTE: usize = 1000;
const MAX_REASON: usize = 500;

/// Why a shift or register use case refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ShiftError {
    #[error("no such shift or register")]
    NotFound,
    #[error("forbidden")]
    Forbidden(Option<&'static str>),
    /// A cashier's close with a difference beyond `SHIFT_MAX_DIFFERENCE_CENTS`.
    #[error("a difference of {difference_cents} needs a manager")]
    DifferenceNeedsManager { difference_cents: i64 },
    /// One open shift per register and per user; an open shift blocks deactivation.
    #[error("{message}")]
    Conflict {
        message: &'static str,
        open_shift_id: Option<Uuid>,
    },
    /// The shift is closed: nothing can change it any more.
    #[error("the shift is closed")]
    Closed,
    /// A paid-out larger than the cash the drawer should hold.
    #[error("not enough cash in the drawer")]
    NotEnoughCash { expected_cash_cents: Option<i64> },
    #[error("the register changed since it was read")]
    PreconditionFailed { current_version: i64 },
    #[error("invalid: {0}")]
    Validation(FieldErrors),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl ShiftError {
    pub fn field(field: &str, msg: &str) -> Self {
        let mut e = FieldErrors::default();
        e.add(field, msg);
        ShiftError::Validation(e)
    }
}

fn not_found(e: DbError) -> ShiftError {
    match e {
        DbError::NotFound => ShiftError::NotFound,
        e => e.into(),
    }
}

/// Cashiers close blind: managers and admins see the expected cash of an open shift.
fn sees_expected(caller: &Caller) -> bool {
    caller.role.is_manager_or_above()
}

/// The shift as `caller` may see it (blind while open for a cashier).
pub fn present(mut s: Shift, caller: &Caller) -> Shift {
    if s.status == "open" && !sees_expected(caller) {
        s.expected_cash_cents = None;
        s.difference_cents = None;
    }
    s
}

fn present_report(mut r: Report, caller: &Caller) -> Report {
    r.shift = present(r.shift, caller);
    r.cash.expected_cash_cents = r.shift.expected_cash_cents;
    r.cash.difference_cents = r.shift.difference_cents;
    r
}

/// The whole Shift of a row: a closed shift's is the one its Z report stored.
async fn view(conn: &mut PgConnection, row: &ShiftRow) -> Result<Shift, DbError> {
    if !row.is_open() {
        if let Some(z) = shifts::stored_report(conn, row.id).await? {
            if let Ok(r) = serde_json::from_value::<Report>(z) {
                return Ok(r.shift);
            }
        }
    }
    Ok(Shift::new(row, shifts::figures(conn, row.id).await?))
}

/// Managers see every shift; a cashier the shifts they opened or joined.
async fn may_see(
    conn: &mut PgConnection,
    caller: &Caller,
    row: &ShiftRow,
) -> Result<bool, DbError> {
    if caller.role.is_manager_or_above() || row.opened_by == caller.user_id {
        return Ok(true);
    }
    shifts::is_member(conn, row.id, caller.user_id).await
}

/// The shift's cashiers and managers may move cash and close; others get 403 (or 404 when
/// they may not even see it).
async fn may_operate(
    conn: &mut PgConnection,
    caller: &Caller,
    row: &ShiftRow,
) -> Result<(), ShiftError> {
    if caller.role.is_manager_or_above() || shifts::is_member(conn, row.id, caller.user_id).await? {
        Ok(())
    } else if may_see(conn, caller, row).await? {
        Err(ShiftError::Forbidden(Some(
            "Only the shift's cashiers or a manager may do this.",
        )))
    } else {
        Err(ShiftError::NotFound)
    }
}

fn check_cents(name: &str, v: i64, min: i64, errs: &mut FieldErrors) {
    if v < min {
        errs.add(name, format!("must be at least {min}"));
    } else if let Err(e) = limits::check_amount_cents(v) {
        errs.add(name, e.message());
    }
}

fn check_note<'a>(
    name: &str,
    v: Option<&'a str>,
    max: usize,
    errs: &mut FieldErrors,
) -> Option<&'a str> {
    let v = v.map(str::trim).filter(|n| !n.is_empty());
    if let Some(n) = v {
        if n.chars().count() > max {
            errs.add(name, format!("must be at most {max} characters"));
        } else if let Err(e) = limits::check_text(n, true) {
            errs.add(name, e.message());
        }
    }
    v
}

/// Writes the shift's live event (`shift.opened`, `shift.closed`) for staff.
async fn event(conn: &mut PgConnection, kind: &str, s: &Shift) -> Result<(), DbError> {
    // `data` is what webhooks deliver (the Shift as `GET /shifts/{id}` shows it to a manager).
    let payload =
        json!({"type": kind, "at": chrono::Utc::now(), "shift": s, "audience": "staff", "data": s});
    till_db::outbox::enqueue(conn, kind, &payload).await?;
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OpenShift)]
pub struct OpenInput {
    pub register_id: Uuid,
    pub opening_float_cents: i64,
    pub note: Option<String>,
}

/// Opens a shift on a register with the caller on it.
pub async fn open(
    app: &App,
    caller: &Caller,
    actor: &Actor,
    input: &OpenInput,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&Shift) -> Answer,
) -> Result<Answer, ShiftError> {
    let mut errs = FieldErrors::new();
    check_cents(
        "opening_float_cents",
        input.opening_float_cents,
        0,
        &mut errs,
    );
    let note = check_note("note", input.note.as_deref(), MAX_NOTE, &mut errs);
    if !errs.is_empty() {
        return Err(ShiftError::Validation(errs));
    }
    let mut run = match idempotency::begin::<ShiftError>(app, caller.user_id, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    // Locked so the register cannot be deactivated while a shift opens on it.
    match registers::lock(tx, input.register_id).await {
        Ok(r) if r.active => {}
        Ok(_) | Err(DbError::NotFound) => {
            return Err(ShiftError::field(
                "register_id",
                "no such register, or it is inactive",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let conflict = |message, open_shift_id| ShiftError::Conflict {
        message,
        open_shift_id: Some(open_shift_id),
    };
    if let Some(open) = shifts::open_of_register(tx, input.register_id).await? {
        return Err(conflict("This register already has an open shift.", open));
    }
    if let Some(open) = shifts::open_of_user(tx, caller.user_id).await? {
        return Err(conflict("You are already on an open shift.", open));
    }
    let expected_opening = shifts::expected_opening(tx, input.register_id).await?;
    let inserted = shifts::insert_open(
        tx,
        NewShift {
            register_id: input.register_id,
            opened_by: caller.user_id,
            opening_float_cents: input.opening_float_cents,
            expected_opening_cents: expected_opening,
            note,
        },
    )
    .await;
    let id = match inserted {
        Ok(id) => id,
        // A concurrent open won the unique index: answer like the checks above would have.
        Err(DbError::Unique(v)) if v.field == "register_id" || v.field == "user_id" => {
            drop(run);
            let mut conn = app.db.write.acquire().await.map_err(DbError::from)?;
            let open = if v.field == "register_id" {
                shifts::open_of_register(&mut conn, input.register_id).await?
            } else {
                shifts::open_of_user(&mut conn, caller.user_id).await?
            };
            return Err(ShiftError::Conflict {
                message: "An open shift already exists.",
                open_shift_id: open,
            });
        }
        Err(e) => return Err(e.into()),
    };
    let row = shifts::get(tx, id).await?;
    let shift = view(tx, &row).await?;
    let data = json!({"register_id": input.register_id, "opening_float_cents": input.opening_float_cents,
        "expected_opening_cents": shift.expected_opening_cents, "opening_difference_cents": shift.opening_difference_cents});
    audit::record(tx, actor, "shift.open", "shift", id, data).await?;
    event(tx, "shift.opened", &shift).await?;
    let answer = run
        .finish::<ShiftError>(render(&present(shift, caller)))
        .await?;
    app.after_commit(false);
    Ok(answer)
}

/// Adds the caller to an open shift (already on it: the shift as it is).
pub async fn join(
    app: &App,
    caller: &Caller,
    actor: &Actor,
    id: Uuid,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&Shift) -> Answer,
) -> Result<Answer, ShiftError> {
    let mut run = match idempotency::begin::<ShiftError>(app, caller.user_id, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    let row = shifts::lock(tx, id).await.map_err(not_found)?;
    if !row.is_open() {
        return Err(ShiftError::Closed);
    }
    if let Some(open) = shifts::open_of_user(tx, caller.user_id).await? {
        if open != id {
            return Err(ShiftError::Conflict {
                message: "You are already on another open shift.",
                open_shift_id: Some(open),
            });
        }
    }
    shifts::join(tx, id, caller.user_id).await?;
    audit::record(
        tx,
        actor,
        "shift.join",
        "shift",
        id,
        json!({"user_id": caller.user_id}),
    )
    .await?;
    let row = shifts::get(tx, id).await?;
    let shift = view(tx, &row).await?;
    run.finish::<ShiftError>(render(&present(shift, caller)))
        .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewCashMovement)]
pub struct MovementInput {
    #[serde(rename = "type")]
    pub kind: CashMovementType,
    pub amount_cents: i64,
    pub reason: String,
}

/// A paid-in or paid-out on an open shift; a paid-out above the cash the drawer should hold is
/// refused (the shift row is locked, so payments and refunds cannot change that meanwhile).
pub async fn cash_movement(
    app: &App,
    caller: &Caller,
    actor: &Actor,
    id: Uuid,
    input: &MovementInput,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&CashMovement, &Shift) -> Answer,
) -> Result<Answer, ShiftError> {
    let mut errs = FieldErrors::new();
    check_cents("amount_cents", input.amount_cents, 1, &mut errs);
    let reason = check_note("reason", Some(&input.reason), MAX_REASON, &mut errs);
    if reason.is_none() {
        errs.add("reason", format!("must be 1 to {MAX_REASON} characters"));
    }
    if !errs.is_empty() {
        return Err(ShiftError::Validation(errs));
    }
    let reason = reason.unwrap_or_default();
    let mut run = match idempotency::begin::<ShiftError>(app, caller.user_id, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    let row = shifts::lock(tx, id).await.map_err(not_found)?;
    may_operate(tx, caller, &row).await?;
    if !row.is_open() {
        return Err(ShiftError::Closed);
    }
    if input.kind == CashMovementType::PaidOut {
        let before = view(tx, &row).await?;
        let expected = before.cash_flows().expected_cash();
        if input.amount_cents > expected {
            return Err(ShiftError::NotEnoughCash {
                expected_cash_cents: sees_expected(caller).then_some(expected),
            });
        }
    }
    let movement = shifts::add_movement(
        tx,
        id,
        input.kind,
        input.amount_cents,
        reason,
        caller.user_id,
    )
    .await?;
    let data = json!({"movement_id": movement.id, "type": input.kind, "amount_cents": input.amount_cents, "reason": reason});
    audit::record(tx, actor, "shift.cash_movement", "shift", id, data).await?;
    let row = shifts::get(tx, id).await?;
    let shift = view(tx, &row).await?;
    run.finish::<ShiftError>(render(&movement, &present(shift, caller)))
        .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CloseShift)]
pub struct CloseInput {
    pub counted_cash_cents: i64,
    pub deposit_cents: Option<i64>,
    pub note: Option<String>,
}

/// Closes an open shift with the cash counted. The shift row is locked `FOR UPDATE` first, so
/// every payment, refund or order already attached to it has committed and none can attach
/// any more; the Z report computed here is stored and read back unchanged ever after.
pub async fn close(
    app: &App,
    caller: &Caller,
    actor: &Actor,
    id: Uuid,
    input: &CloseInput,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&Shift) -> Answer,
) -> Result<Answer, ShiftError> {
    let mut errs = FieldErrors::new();
    check_cents("counted_cash_cents", input.counted_cash_cents, 0, &mut errs);
    let deposit = input.deposit_cents.unwrap_or(0);
    check_cents("deposit_cents", deposit, 0, &mut errs);
    if deposit > input.counted_cash_cents {
        errs.add("deposit_cents", "must be at most counted_cash_cents");
    }
    let note = check_note("note", input.note.as_deref(), MAX_NOTE, &mut errs);
    if !errs.is_empty() {
        return Err(ShiftError::Validation(errs));
    }
    let mut run = match idempotency::begin::<ShiftError>(app, caller.user_id, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    let row = shifts::lock(tx, id).await.map_err(not_found)?;
    may_operate(tx, caller, &row).await?;
    if !row.is_open() {
        return Err(ShiftError::Closed);
    }
    let expected = view(tx, &row).await?.cash_flows().expected_cash();
    let difference = input.counted_cash_cents - expected;
    let max = app.config.shop.shift_max_difference_cents;
    if difference_needs_manager(difference, max) && !caller.role.is_manager_or_above() {
        return Err(ShiftError::DifferenceNeedsManager {
            difference_cents: difference,
        });
    }
    shifts::close(
        tx,
        id,
        Closing {
            closed_by: caller.user_id,
            expected_cash_cents: expected,
            counted_cash_cents: input.counted_cash_cents,
            deposit_cents: deposit,
            note,
        },
    )
    .await?;
    let row = shifts::get(tx, id).await?;
    let z = shifts::report(tx, &row).await?;
    shifts::store_report(tx, id, &json!(z)).await?;
    let data = json!({"counted_cash_cents": input.counted_cash_cents, "deposit_cents": deposit,
        "expected_cash_cents": expected, "difference_cents": difference});
    audit::record(tx, actor, "shift.close", "shift", id, data).await?;
    event(tx, "shift.closed", &z.shift).await?;
    let answer = run.finish::<ShiftError>(render(&z.shift)).await?;
    app.after_commit(false);
    Ok(answer)
}
