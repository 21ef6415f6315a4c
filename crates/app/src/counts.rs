//! Stock counts at one location, counted while the shop keeps selling. Each line is stamped
//! when it is recorded; applying sets each counted product's stock to `counted + Σ movements at
//! that location after the line's stamp` (till-db `counts` explains the arithmetic), as `count`
//! movements, all or nothing: a result below zero on any line → 409 and nothing is applied.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::json;
use till_db::audit::{self, Actor};
use till_db::counts::{self, StockCount};
use till_db::ledger::{self, LedgerContext};
use till_db::stock::Shortage;
use till_db::{DbError, PgConnection};
use till_domain::{FieldErrors, MovementReason};
use uuid::Uuid;

use crate::idempotency::{self, Answer, Begun, IdempotencyKey};
use crate::locations::{active, text, LocationError};
use crate::App;

const MAX_LINES: usize = 500;
const MAX_COUNTED: i64 = 1_000_000_000;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCountInput {
    pub location_id: Uuid,
    pub note: Option<String>,
}

/// Counted lines; a product counted again replaces its earlier line (and its stamp).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountLinesInput {
    pub lines: Vec<CountLineInput>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountLineInput {
    pub product_id: Uuid,
    /// Units found (≥ 0).
    pub counted: i64,
}

async fn load(conn: &mut PgConnection, id: Uuid) -> Result<StockCount, LocationError> {
    counts::get(conn, id).await?.ok_or(LocationError::NotFound)
}

async fn lock_open(
    conn: &mut PgConnection,
    id: Uuid,
    to: &str,
) -> Result<StockCount, LocationError> {
    let c = counts::lock(conn, id)
        .await?
        .ok_or(LocationError::NotFound)?;
    if c.status != "open" {
        return Err(LocationError::InvalidTransition {
            from: c.status,
            to: to.to_owned(),
            allowed: Vec::new(),
        });
    }
    Ok(c)
}

/// Opens a count at an active location.
pub async fn create(
    app: &App,
    actor: &Actor,
    by: Uuid,
    input: &NewCountInput,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&StockCount) -> Answer,
) -> Result<Answer, LocationError> {
    let mut errs = FieldErrors::default();
    let note = text(&mut errs, "note", input.note.as_deref(), 1000, true);
    if !errs.is_empty() {
        return Err(LocationError::Validation(errs));
    }
    let mut run = match idempotency::begin::<LocationError>(app, by, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    active(tx, "location_id", input.location_id).await?;
    let id = counts::insert(tx, input.location_id, note, by).await?;
    let c = load(tx, id).await?;
    audit::record(
        tx,
        actor,
        "count.create",
        "stock_count",
        id,
        json!({"location_id": c.location_id}),
    )
    .await?;
    run.finish::<LocationError>(render(&c)).await
}

/// Records counted lines, each stamped now.
pub async fn put_lines(
    app: &App,
    actor: &Actor,
    id: Uuid,
    input: &CountLinesInput,
) -> Result<StockCount, LocationError> {
    let mut errs = FieldErrors::default();
    if input.lines.is_empty() || input.lines.len() > MAX_LINES {
        errs.add("lines", format!("must have 1 to {MAX_LINES} lines"));
    }
    let mut seen = HashSet::new();
    for (i, l) in input.lines.iter().enumerate() {
        if !(0..=MAX_COUNTED).contains(&l.counted) {
            errs.add(
                format!("lines[{i}].counted"),
                "must be between 0 and 1000000000",
            );
        }
        if !seen.insert(l.product_id) {
            errs.add(
                format!("lines[{i}].product_id"),
                "appears on more than one line",
            );
        }
    }
    if !errs.is_empty() {
        return Err(LocationError::Validation(errs));
    }
    let mut tx = app.db.write.begin().await.map_err(DbError::from)?;
    let c = lock_open(&mut tx, id, "open").await?;
    let ids: Vec<Uuid> = input.lines.iter().map(|l| l.product_id).collect();
    let found: HashMap<Uuid, bool> = till_db::transfers::products(&mut tx, &ids)
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
        .map(|l| (l.product_id, l.counted))
        .collect();
    counts::put_lines(&mut tx, id, c.location_id, &lines).await?;
    audit::record(
        &mut tx,
        actor,
        "count.lines",
        "stock_count",
        id,
        json!({"lines": input.lines.iter().map(|l| json!({"product_id": l.product_id, "counted": l.counted})).collect::<Vec<_>>()}),
    )
    .await?;
    let c = load(&mut tx, id).await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(c)
}

/// Applies an open count: each line's `delta` is added to the stock now, as a `count` movement.
/// With `key`, a retry gets the first answer back instead of 409 `invalid_transition`.
pub async fn apply(
    app: &App,
    actor: &Actor,
    by: Uuid,
    id: Uuid,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&StockCount) -> Answer,
) -> Result<Answer, LocationError> {
    let mut run = match idempotency::begin::<LocationError>(app, by, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    let c = lock_open(tx, id, "applied").await?;
    let ids: Vec<Uuid> = c.lines.iter().map(|l| l.product_id).collect();
    ledger::lock_products(tx, &ids).await?;
    let now = ledger::on_hand_at(tx, c.location_id, &ids).await?;
    let short: Vec<Shortage> = c
        .lines
        .iter()
        .filter_map(|l| {
            let available = now.get(&l.product_id).copied().unwrap_or(0);
            (available + l.delta < 0).then_some(Shortage {
                product_id: l.product_id,
                requested: -l.delta,
                available,
                location_id: None,
            })
        })
        .collect();
    if !short.is_empty() {
        return Err(LocationError::InsufficientStock {
            location_id: c.location_id,
            lines: short,
        });
    }
    let moves: Vec<(Uuid, i64)> = c.lines.iter().map(|l| (l.product_id, l.delta)).collect();
    ledger::write(
        tx,
        &LedgerContext {
            location_id: c.location_id,
            reason: MovementReason::Count,
            user_id: Some(by),
            transfer_id: None,
            count_id: Some(id),
            note: Some("stock count"),
        },
        &moves,
    )
    .await?;
    counts::finish(tx, id, "applied", by).await?;
    let c = load(tx, id).await?;
    audit::record(
        tx,
        actor,
        "count.apply",
        "stock_count",
        id,
        json!({"location_id": c.location_id,
               "lines": c.lines.iter().map(|l| json!({"product_id": l.product_id, "delta": l.delta})).collect::<Vec<_>>()}),
    )
    .await?;
    let answer = run.finish::<LocationError>(render(&c)).await?;
    app.after_commit(true);
    Ok(answer)
}

/// Cancels an open count; nothing moves.
pub async fn cancel(
    app: &App,
    actor: &Actor,
    by: Uuid,
    id: Uuid,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&StockCount) -> Answer,
) -> Result<Answer, LocationError> {
    let mut run = match idempotency::begin::<LocationError>(app, by, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    lock_open(tx, id, "cancelled").await?;
    counts::finish(tx, id, "cancelled", by).await?;
    audit::record(tx, actor, "count.cancel", "stock_count", id, json!({})).await?;
    let c = load(tx, id).await?;
    run.finish::<LocationError>(render(&c)).await
}

/// One count.
pub async fn get(app: &App, id: Uuid) -> Result<StockCount, LocationError> {
    let mut conn = app.db.write.acquire().await.map_err(DbError::from)?;
    load(&mut conn, id).await
}
