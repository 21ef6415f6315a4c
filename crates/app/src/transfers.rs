//! Transfers of stock between locations: draft → dispatch (every line taken from the source at
//! once, or nothing) → receipts (partial or complete, with damaged units written off at the
//! destination) → received; or cancel, which returns exactly the outstanding units to the
//! source. A transfer never creates or destroys stock: Σ on hand over all locations + Σ units in
//! transit changes only by the units recorded as damaged.
//!
//! Every step is one transaction with its audit entry, a `transfer.updated` outbox event
//! (staff only) and, when an Idempotency-Key was sent, its stored answer. Stock moves through
//! `till_db::ledger` under the product locks.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::{json, Value};
use till_db::audit::{self, Actor};
use till_db::ledger::{self, LedgerContext};
use till_db::stock::Shortage;
use till_db::transfers::{self, Transfer};
use till_db::{DbError, PgConnection};
use till_domain::{FieldErrors, MovementReason};
use uuid::Uuid;

use crate::idempotency::{self, Answer, Begun, IdempotencyKey};
use crate::locations::{active, text, LocationError};
use crate::App;

const MAX_LINES: usize = 500;
const MAX_QUANTITY: i64 = 1_000_000;

/// A transfer as asked for.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransferInput {
    pub from_location_id: Uuid,
    pub to_location_id: Uuid,
    pub lines: Vec<TransferLineInput>,
    pub note: Option<String>,
    /// Dispatch at once (default false: a draft).
    #[serde(default)]
    pub dispatch: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferLineInput {
    pub product_id: Uuid,
    /// 1..1,000,000 units.
    pub quantity: i64,
}

/// A receipt as asked for: units arrived in good order, and units arrived damaged.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptInput {
    pub lines: Vec<ReceiptLineInput>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptLineInput {
    pub product_id: Uuid,
    /// Units put into the destination's stock (≥ 0).
    pub received: i64,
    /// Units arrived unusable, written off (≥ 0, default 0).
    #[serde(default)]
    pub damaged: i64,
}

/// The event of a changed transfer: a summary for the live feed (staff only), and the whole
/// transfer as `data` for webhooks (stripped from live frames).
fn event(t: &Transfer) -> Value {
    json!({
        "type": "transfer.updated",
        "at": chrono::Utc::now(),
        "transfer": {
            "id": t.id, "number": t.number, "status": t.status,
            "from_location_id": t.from_location_id, "to_location_id": t.to_location_id,
            "version": t.version, "updated_at": t.updated_at,
        },
        "audience": "staff",
        "data": t,
    })
}

/// Writes the audit entry and the event of `t` (as it is now) in the caller's transaction.
async fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    t: &Transfer,
    data: Value,
) -> Result<(), DbError> {
    audit::record(&mut *conn, actor, action, "transfer", t.id, data).await?;
    till_db::outbox::enqueue(conn, "transfer.updated", &event(t)).await?;
    Ok(())
}

async fn load(conn: &mut PgConnection, id: Uuid) -> Result<Transfer, LocationError> {
    transfers::get(conn, id)
        .await?
        .ok_or(LocationError::NotFound)
}

fn invalid(from: &str, to: &str) -> LocationError {
    let allowed: Vec<&'static str> = match from {
        "draft" => vec!["in_transit", "cancelled"],
        "in_transit" | "partially_received" => vec!["partially_received", "received", "cancelled"],
        _ => Vec::new(),
    };
    LocationError::InvalidTransition {
        from: from.to_owned(),
        to: to.to_owned(),
        allowed,
    }
}

/// Creates a transfer (a draft, or dispatched at once with `dispatch: true`).
pub async fn create(
    app: &App,
    actor: &Actor,
    by: Uuid,
    input: &NewTransferInput,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&Transfer) -> Answer,
) -> Result<Answer, LocationError> {
    let mut errs = FieldErrors::default();
    if input.from_location_id == input.to_location_id {
        errs.add("to_location_id", "must differ from from_location_id");
    }
    if input.lines.is_empty() || input.lines.len() > MAX_LINES {
        errs.add("lines", format!("must have 1 to {MAX_LINES} lines"));
    }
    let mut seen = HashSet::new();
    for (i, l) in input.lines.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&l.quantity) {
            errs.add(
                format!("lines[{i}].quantity"),
                "must be between 1 and 1000000",
            );
        }
        if !seen.insert(l.product_id) {
            errs.add(
                format!("lines[{i}].product_id"),
                "appears on more than one line",
            );
        }
    }
    let note = text(&mut errs, "note", input.note.as_deref(), 1000, true);
    if !errs.is_empty() {
        return Err(LocationError::Validation(errs));
    }
    let mut run = match idempotency::begin::<LocationError>(app, by, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    active(tx, "from_location_id", input.from_location_id).await?;
    active(tx, "to_location_id", input.to_location_id).await?;
    let ids: Vec<Uuid> = input.lines.iter().map(|l| l.product_id).collect();
    let found: HashMap<Uuid, bool> = transfers::products(tx, &ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p.track_stock))
        .collect();
    for (i, l) in input.lines.iter().enumerate() {
        match found.get(&l.product_id) {
            None => {
                errs.add(format!("lines[{i}].product_id"), "no such product");
            }
            Some(false) => {
                errs.add(format!("lines[{i}].product_id"), "does not track stock");
            }
            Some(true) => {}
        }
    }
    if !errs.is_empty() {
        return Err(LocationError::Validation(errs));
    }
    let lines: Vec<(Uuid, i64)> = input
        .lines
        .iter()
        .map(|l| (l.product_id, l.quantity))
        .collect();
    let id = transfers::insert(
        tx,
        input.from_location_id,
        input.to_location_id,
        note,
        by,
        &lines,
    )
    .await?;
    let mut t = load(tx, id).await?;
    record(
        tx,
        actor,
        "transfer.create",
        &t,
        json!({"lines": lines.len()}),
    )
    .await?;
    if input.dispatch {
        t = dispatch_locked(tx, actor, by, t).await?;
    }
    let answer = run.finish::<LocationError>(render(&t)).await?;
    app.after_commit(input.dispatch);
    Ok(answer)
}

/// Takes every line from the source, all or nothing, and puts the transfer in transit.
async fn dispatch_locked(
    tx: &mut PgConnection,
    actor: &Actor,
    by: Uuid,
    t: Transfer,
) -> Result<Transfer, LocationError> {
    if t.status != "draft" {
        return Err(invalid(&t.status, "in_transit"));
    }
    let ids: Vec<Uuid> = t.lines.iter().map(|l| l.product_id).collect();
    ledger::lock_products(tx, &ids).await?;
    let have = ledger::on_hand_at(tx, t.from_location_id, &ids).await?;
    let short: Vec<Shortage> = t
        .lines
        .iter()
        .filter_map(|l| {
            let available = have.get(&l.product_id).copied().unwrap_or(0);
            (available < l.quantity).then_some(Shortage {
                product_id: l.product_id,
                requested: l.quantity,
                available,
                location_id: None,
            })
        })
        .collect();
    if !short.is_empty() {
        return Err(LocationError::InsufficientStock {
            location_id: t.from_location_id,
            lines: short,
        });
    }
    let moves: Vec<(Uuid, i64)> = t
        .lines
        .iter()
        .map(|l| (l.product_id, -l.quantity))
        .collect();
    let note = format!("transfer {}", t.number);
    ledger::write(
        tx,
        &LedgerContext {
            location_id: t.from_location_id,
            reason: MovementReason::TransferOut,
            user_id: Some(by),
            transfer_id: Some(t.id),
            count_id: None,
            note: Some(&note),
        },
        &moves,
    )
    .await?;
    transfers::ensure_levels(tx, t.to_location_id, &ids).await?;
    transfers::set_status(tx, t.id, "in_transit", by).await?;
    let t = load(tx, t.id).await?;
    let units: i64 = t.lines.iter().map(|l| l.quantity).sum();
    record(tx, actor, "transfer.dispatch", &t, json!({"units": units})).await?;
    Ok(t)
}

/// Dispatches a draft (409 `insufficient_stock` naming the source when any line is short).
/// With `key`, a retry gets the first answer back instead of 409 `invalid_transition`.
pub async fn dispatch(
    app: &App,
    actor: &Actor,
    by: Uuid,
    id: Uuid,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&Transfer) -> Answer,
) -> Result<Answer, LocationError> {
    let mut run = match idempotency::begin::<LocationError>(app, by, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let t = transfers::lock(&mut run.tx, id)
        .await?
        .ok_or(LocationError::NotFound)?;
    let t = dispatch_locked(&mut run.tx, actor, by, t).await?;
    let answer = run.finish::<LocationError>(render(&t)).await?;
    app.after_commit(true);
    Ok(answer)
}

/// Records a receipt (Idempotency-Key required by the route): received units enter the
/// destination, damaged ones enter and are written off (`damage`). More than outstanding on any
/// line → 422 `over_receipt`, nothing recorded.
pub async fn receive(
    app: &App,
    actor: &Actor,
    by: Uuid,
    id: Uuid,
    input: &ReceiptInput,
    key: &IdempotencyKey,
    render: impl FnOnce(&Value, &Transfer) -> Answer,
) -> Result<Answer, LocationError> {
    let mut errs = FieldErrors::default();
    if input.lines.is_empty() || input.lines.len() > MAX_LINES {
        errs.add("lines", format!("must have 1 to {MAX_LINES} lines"));
    }
    let mut seen = HashSet::new();
    for (i, l) in input.lines.iter().enumerate() {
        if !(0..=MAX_QUANTITY).contains(&l.received) {
            errs.add(
                format!("lines[{i}].received"),
                "must be between 0 and 1000000",
            );
        }
        if !(0..=MAX_QUANTITY).contains(&l.damaged) {
            errs.add(
                format!("lines[{i}].damaged"),
                "must be between 0 and 1000000",
            );
        }
        if !seen.insert(l.product_id) {
            errs.add(
                format!("lines[{i}].product_id"),
                "appears on more than one line",
            );
        }
    }
    if errs.is_empty() && input.lines.iter().all(|l| l.received + l.damaged == 0) {
        errs.add("lines", "must receive or write off at least one unit");
    }
    if !errs.is_empty() {
        return Err(LocationError::Validation(errs));
    }
    let mut run = match idempotency::begin::<LocationError>(app, by, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    let t = transfers::lock(tx, id)
        .await?
        .ok_or(LocationError::NotFound)?;
    if t.status != "in_transit" && t.status != "partially_received" {
        return Err(invalid(&t.status, "received"));
    }
    let outstanding: HashMap<Uuid, i64> = t
        .lines
        .iter()
        .map(|l| (l.product_id, l.outstanding()))
        .collect();
    let mut over = Vec::new();
    for (i, l) in input.lines.iter().enumerate() {
        match outstanding.get(&l.product_id) {
            None => {
                errs.add(format!("lines[{i}].product_id"), "is not on this transfer");
            }
            Some(&o) if l.received + l.damaged > o => over.push(json!({
                "product_id": l.product_id, "outstanding": o,
                "received": l.received, "damaged": l.damaged,
            })),
            Some(_) => {}
        }
    }
    if !errs.is_empty() {
        return Err(LocationError::Validation(errs));
    }
    if !over.is_empty() {
        return Err(LocationError::OverReceipt {
            lines: Value::Array(over),
        });
    }
    let ids: Vec<Uuid> = input.lines.iter().map(|l| l.product_id).collect();
    ledger::lock_products(tx, &ids).await?;
    let note = format!("transfer {}", t.number);
    let ctx = |reason| LedgerContext {
        location_id: t.to_location_id,
        reason,
        user_id: Some(by),
        transfer_id: Some(t.id),
        count_id: None,
        note: Some(&note),
    };
    let arrived: Vec<(Uuid, i64)> = input
        .lines
        .iter()
        .map(|l| (l.product_id, l.received + l.damaged))
        .collect();
    ledger::write(tx, &ctx(MovementReason::TransferIn), &arrived).await?;
    let written_off: Vec<(Uuid, i64)> = input
        .lines
        .iter()
        .map(|l| (l.product_id, -l.damaged))
        .collect();
    ledger::write(tx, &ctx(MovementReason::Damage), &written_off).await?;
    let lines: Vec<(Uuid, i64, i64)> = input
        .lines
        .iter()
        .map(|l| (l.product_id, l.received, l.damaged))
        .collect();
    let receipt = transfers::add_receipt(tx, id, by, &lines).await?;
    let left: i64 = t
        .lines
        .iter()
        .map(|l| {
            let got = input
                .lines
                .iter()
                .find(|r| r.product_id == l.product_id)
                .map_or(0, |r| r.received + r.damaged);
            l.outstanding() - got
        })
        .sum();
    let status = if left == 0 {
        "received"
    } else {
        "partially_received"
    };
    transfers::set_status(tx, id, status, by).await?;
    let t = load(tx, id).await?;
    record(tx, actor, "transfer.receive", &t, receipt.clone()).await?;
    let answer = run.finish::<LocationError>(render(&receipt, &t)).await?;
    app.after_commit(true);
    Ok(answer)
}

/// Cancels a transfer: a draft is dropped; one in transit returns exactly its outstanding units
/// to the source (`transfer_return`). Received or cancelled → 409 `invalid_transition` (with
/// `key`, a retry of a cancel that went through gets its first answer instead).
pub async fn cancel(
    app: &App,
    actor: &Actor,
    by: Uuid,
    id: Uuid,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&Transfer) -> Answer,
) -> Result<Answer, LocationError> {
    let mut run = match idempotency::begin::<LocationError>(app, by, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    let t = transfers::lock(tx, id)
        .await?
        .ok_or(LocationError::NotFound)?;
    let returned: Vec<(Uuid, i64)> = match t.status.as_str() {
        "draft" => Vec::new(),
        "in_transit" | "partially_received" => t
            .lines
            .iter()
            .map(|l| (l.product_id, l.outstanding()))
            .filter(|l| l.1 > 0)
            .collect(),
        other => return Err(invalid(other, "cancelled")),
    };
    if !returned.is_empty() {
        let ids: Vec<Uuid> = returned.iter().map(|r| r.0).collect();
        ledger::lock_products(tx, &ids).await?;
        let note = format!("transfer {}", t.number);
        ledger::write(
            tx,
            &LedgerContext {
                location_id: t.from_location_id,
                reason: MovementReason::TransferReturn,
                user_id: Some(by),
                transfer_id: Some(t.id),
                count_id: None,
                note: Some(&note),
            },
            &returned,
        )
        .await?;
    }
    transfers::set_status(tx, id, "cancelled", by).await?;
    let t = load(tx, id).await?;
    let units: i64 = returned.iter().map(|r| r.1).sum();
    record(
        tx,
        actor,
        "transfer.cancel",
        &t,
        json!({"returned_units": units}),
    )
    .await?;
    let answer = run.finish::<LocationError>(render(&t)).await?;
    app.after_commit(units > 0);
    Ok(answer)
}

/// One transfer.
pub async fn get(app: &App, id: Uuid) -> Result<Transfer, LocationError> {
    let mut conn = app.db.write.acquire().await.map_err(DbError::from)?;
    load(&mut conn, id).await
}
