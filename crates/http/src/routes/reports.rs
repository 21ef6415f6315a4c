//! `GET /reports/sales?from=YYYY-MM-DD&to=YYYY-MM-DD` (manager+), days in `STORE_TIMEZONE`,
//! read from the replica pool. What each figure means is documented in till-db `reports`;
//! in short `gross = Σ subtotal` and `net = gross − discount + tax − refunds`.

use axum::extract::State;
use axum::response::IntoResponse;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use till_db::reports::{self, DayRow};
use till_domain::{limits, FieldErrors, PaymentMethod};

use crate::error::{ApiError, ApiResult};
use crate::extract::{Authed, Json, ManagerPlus, Query};
use crate::openapi::schemas::{ErrorBody, SalesReport};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Longest range one report may cover, in days (a leap year).
const MAX_DAYS: i64 = 366;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sales))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Params {
    /// First day, `YYYY-MM-DD`.
    #[param(required = true, value_type = chrono::NaiveDate)]
    from: Option<String>,
    /// Last day (inclusive), `YYYY-MM-DD`; at most 366 days after `from`.
    #[param(required = true, value_type = chrono::NaiveDate)]
    to: Option<String>,
}

/// Sales per day over non-cancelled orders, days in `STORE_TIMEZONE`.
#[utoipa::path(
    get,
    path = "/reports/sales",
    tag = "reports",
    security(("bearer" = [])),
    params(Params),
    responses(
        (status = 200, description = "The report", body = SalesReport),
        (status = 403, description = "`forbidden`: managers and admins only", body = ErrorBody),
    )
)]
async fn sales(
    State(state): State<AppState>,
    _: Authed<ManagerPlus>,
    Query(p): Query<Params>,
) -> ApiResult<impl IntoResponse> {
    let (from, to) = parse_range(&p)?;
    let tz = state.config.shop.store_timezone.name();
    let r = reports::sales(&state.db.read, from, to, tz).await?;
    let mut totals = DayRow::default();
    for d in &r.days {
        totals.orders += d.orders;
        totals.gross_cents += d.gross_cents;
        totals.discount_cents += d.discount_cents;
        totals.tax_cents += d.tax_cents;
        totals.refunds_cents += d.refunds_cents;
        totals.net_cents += d.net_cents;
    }
    let mut totals = serde_json::to_value(&totals).unwrap_or(Value::Null);
    if let Some(t) = totals.as_object_mut() {
        t.remove("date");
        t.insert("from".into(), json!(from));
        t.insert("to".into(), json!(to));
    }
    let mut methods = Map::new();
    for m in PaymentMethod::ALL {
        let cents = r
            .by_payment_method
            .iter()
            .find(|(name, _)| name == m.as_str())
            .map_or(0, |x| x.1);
        methods.insert(m.as_str().to_owned(), json!(cents));
    }
    Ok(Json(json!({
        "days": r.days,
        "totals": totals,
        "by_payment_method": methods,
        "top_products": r.top_products,
        "timezone": tz,
    })))
}

fn parse_range(p: &Params) -> ApiResult<(NaiveDate, NaiveDate)> {
    let mut errs = FieldErrors::new();
    let mut date = |name: &str, v: &Option<String>| match v.as_deref() {
        None | Some("") => {
            errs.add(name, "is required (YYYY-MM-DD)");
            None
        }
        Some(s) => match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) => errs.check(name, limits::check_date(d)),
            Err(_) => {
                errs.add(name, "must be a date as YYYY-MM-DD");
                None
            }
        },
    };
    let from = date("from", &p.from);
    let to = date("to", &p.to);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            errs.add("to", "must not be before from");
        } else if (t - f).num_days() + 1 > MAX_DAYS {
            errs.add("to", format!("the range may cover at most {MAX_DAYS} days"));
        }
    }
    match (from, to) {
        (Some(f), Some(t)) if errs.is_empty() => Ok((f, t)),
        _ => Err(ApiError::validation(errs)),
    }
}
