//! `GET /orders/board` (staff side): the open orders per status column, oldest first, and the
//! most recently finished ones. Three statements whatever the number of orders.

use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::{json, Map, Value};
use till_db::orders;

use super::OrderView;
use crate::error::ApiResult;
use crate::extract::{Authed, Json, StaffSide};
use crate::openapi::schemas::{Board, ErrorBody};
use crate::state::AppState;

const PER_COLUMN: i64 = 100;
const RECENT_DONE: i64 = 50;

#[utoipa::path(
    get,
    path = "/orders/board",
    tag = "orders",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Open orders per status column, and the latest finished ones", body = Board),
        (status = 403, description = "`forbidden`: staff only", body = ErrorBody),
    )
)]
pub async fn board(
    State(state): State<AppState>,
    _: Authed<StaffSide>,
) -> ApiResult<impl IntoResponse> {
    let b = orders::board(&state.db.write, PER_COLUMN, RECENT_DONE).await?;
    let mut columns = Map::new();
    for (status, count) in &b.counts {
        let list: Vec<OrderView> = b
            .columns
            .iter()
            .filter(|o| o.status == *status)
            .map(OrderView::from)
            .collect();
        columns.insert(
            status.as_str().to_owned(),
            json!({"count": count, "orders": list}),
        );
    }
    let done: Vec<OrderView> = b.recent_done.iter().map(OrderView::from).collect();
    Ok(Json(
        json!({"columns": Value::Object(columns), "recent_done": done}),
    ))
}
