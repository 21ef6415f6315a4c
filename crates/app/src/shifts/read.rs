//! Reading shifts: one, the current one, a page, and the X/Z report, as the caller may see
//! them (blind while open for a cashier).

use serde_json::{json, Value};
use till_db::shifts::{self, Shift, ShiftRow};
use till_db::DbError;
use till_domain::Role;
use uuid::Uuid;

use super::{may_see, not_found, present, present_report, view, ShiftError};
use crate::{App, Caller};

/// One shift as the caller may see it (404 when they may not).
pub async fn get(app: &App, caller: &Caller, id: Uuid) -> Result<Shift, ShiftError> {
    let mut conn = app.db.write.acquire().await.map_err(DbError::from)?;
    let row = shifts::get(&mut conn, id).await.map_err(not_found)?;
    if !may_see(&mut conn, caller, &row).await? {
        return Err(ShiftError::NotFound);
    }
    Ok(present(view(&mut conn, &row).await?, caller))
}

/// The open shift of `register` (or, without one, the open shift the caller is on).
pub async fn current(
    app: &App,
    caller: &Caller,
    register: Option<Uuid>,
) -> Result<Shift, ShiftError> {
    let mut conn = app.db.write.acquire().await.map_err(DbError::from)?;
    let id = match register {
        Some(r) => shifts::open_of_register(&mut conn, r).await?,
        None => shifts::open_of_user(&mut conn, caller.user_id).await?,
    };
    let row = shifts::get(&mut conn, id.ok_or(ShiftError::NotFound)?)
        .await
        .map_err(not_found)?;
    Ok(present(view(&mut conn, &row).await?, caller))
}

/// The X report of an open shift (computed now) or the stored Z report of a closed one.
pub async fn report(app: &App, caller: &Caller, id: Uuid) -> Result<Value, ShiftError> {
    let mut conn = app.db.write.acquire().await.map_err(DbError::from)?;
    let row = shifts::get(&mut conn, id).await.map_err(not_found)?;
    if !may_see(&mut conn, caller, &row).await? {
        return Err(ShiftError::NotFound);
    }
    if !row.is_open() {
        if let Some(z) = shifts::stored_report(&mut conn, id).await? {
            return Ok(z);
        }
    }
    let x = shifts::report(&mut conn, &row).await?;
    Ok(json!(present_report(x, caller)))
}

/// Who may list: managers see every shift, cashiers only those they opened.
pub fn list_scope(caller: &Caller) -> Option<Uuid> {
    (caller.role == Role::Cashier).then_some(caller.user_id)
}

/// The Shifts of a page of rows, as the caller may see them.
pub async fn views(
    app: &App,
    caller: &Caller,
    rows: Vec<ShiftRow>,
) -> Result<Vec<Shift>, ShiftError> {
    let mut conn = app.db.write.acquire().await.map_err(DbError::from)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(present(view(&mut conn, row).await?, caller));
    }
    Ok(out)
}
