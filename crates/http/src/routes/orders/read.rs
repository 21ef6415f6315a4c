//! Reading orders: the filtered list, one order, and a customer's orders. Customers only ever
//! see their own; anything else is a 404, so existence never leaks.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde::Deserialize;
use till_db::cursor::Page;
use till_db::orders::{self, Filter, Order};
use till_db::DbError;
use till_domain::{limits, Channel, FieldErrors, OrderStatus, ValueError};
use uuid::Uuid;

use super::{can_see, etag, order_json, OrderView};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AnyUser, Authed, Json, PageQuery, Query};
use crate::openapi::schemas::{ErrorBody, PageParams};
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    #[param(value_type = Option<OrderStatus>)]
    status: Option<String>,
    #[param(value_type = Option<Channel>)]
    channel: Option<String>,
    #[param(value_type = Option<Uuid>)]
    customer_id: Option<String>,
    /// An RFC 3339 time, or `YYYY-MM-DD` (a day in `STORE_TIMEZONE`).
    created_from: Option<String>,
    /// An RFC 3339 time, or `YYYY-MM-DD` (that whole day included).
    created_to: Option<String>,
}

/// Orders, newest first; customers see only their own.
#[utoipa::path(
    get,
    path = "/orders",
    tag = "orders",
    security(("bearer" = [])),
    params(ListParams, PageParams),
    responses((status = 200, description = "A page of orders", body = Page<OrderView>))
)]
pub async fn list(
    State(state): State<AppState>,
    who: Authed<AnyUser>,
    Query(params): Query<ListParams>,
    page: PageQuery,
) -> ApiResult<impl IntoResponse> {
    let mut filter = parse_filter(&params, state.config.shop.store_timezone)?;
    if !who.role.is_staff_side() {
        // Another customer's id simply matches nothing.
        match (filter.customer_id, who.customer_id) {
            (Some(asked), Some(own)) if asked != own => return Ok(Json(empty())),
            (_, None) => return Ok(Json(empty())),
            (_, own) => filter.customer_id = own,
        }
    }
    let after = page.decode(orders::decode_cursor)?;
    let rows = orders::list(&state.db.write, &filter, after, page.limit).await?;
    Ok(Json(page_json(state.cursors.sign_page(rows))))
}

/// One order with its `ETag` (another customer's is 404).
#[utoipa::path(
    get,
    path = "/orders/{id}",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = OrderView,
            headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 404, description = "`not_found`", body = ErrorBody),
    )
)]
pub async fn read(
    State(state): State<AppState>,
    who: Authed<AnyUser>,
    Path(id): Path<Uuid>,
) -> ApiResult<impl IntoResponse> {
    let mut conn = state.db.write.acquire().await.map_err(DbError::from)?;
    let order = orders::get(&mut conn, id).await?;
    if !can_see(&who, order.customer_id) {
        return Err(ApiError::not_found());
    }
    Ok(([etag(order.version)], Json(order_json(&order))))
}

/// `GET /customers/{id}/orders`: staff for any existing customer, a customer for themselves.
#[utoipa::path(
    get,
    path = "/customers/{id}/orders",
    tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Customer id"), PageParams),
    responses(
        (status = 200, description = "A page of the customer's orders, newest first", body = Page<OrderView>),
        (status = 404, description = "`not_found` (also another customer's)", body = ErrorBody),
    )
)]
pub async fn customer_orders(
    State(state): State<AppState>,
    who: Authed<AnyUser>,
    Path(id): Path<Uuid>,
    page: PageQuery,
) -> ApiResult<impl IntoResponse> {
    if !can_see(&who, Some(id)) {
        return Err(ApiError::not_found());
    }
    let after = page.decode(orders::decode_cursor)?;
    let mut conn = state.db.write.acquire().await.map_err(DbError::from)?;
    if !orders::customer_exists(&mut conn, id).await? {
        return Err(ApiError::not_found());
    }
    drop(conn);
    let filter = Filter {
        customer_id: Some(id),
        ..Filter::default()
    };
    let rows = orders::list(&state.db.write, &filter, after, page.limit).await?;
    Ok(Json(page_json(state.cursors.sign_page(rows))))
}

fn empty() -> serde_json::Value {
    serde_json::json!({"items": [], "next_cursor": null})
}

fn page_json(p: Page<Order>) -> serde_json::Value {
    let items: Vec<OrderView> = p.items.iter().map(OrderView::from).collect();
    serde_json::json!({"items": items, "next_cursor": p.next_cursor})
}

/// Every bad value is a 422 naming its parameter. Dates may be RFC 3339 instants or plain
/// `YYYY-MM-DD` days in the store's time zone (`created_to` then includes that whole day).
fn parse_filter(p: &ListParams, tz: chrono_tz::Tz) -> ApiResult<Filter> {
    let mut errs = FieldErrors::new();
    let status = given(&p.status).and_then(|s| errs.check("status", s.parse::<OrderStatus>()));
    let channel = given(&p.channel).and_then(|s| errs.check("channel", s.parse::<Channel>()));
    let customer_id = given(&p.customer_id).and_then(|s| {
        s.parse::<Uuid>()
            .map_err(|_| errs.add("customer_id", "must be a UUID"))
            .ok()
    });
    let mut when = |name: &str, v: &Option<String>, end: bool| {
        let t = given(v).map(|s| instant(s, tz, end))?;
        errs.check(name, t)
    };
    let created_from = when("created_from", &p.created_from, false);
    let created_before = when("created_to", &p.created_to, true);
    if let (Some(a), Some(b)) = (created_from, created_before) {
        if a >= b {
            errs.add("created_to", "must be after created_from");
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    Ok(Filter {
        status,
        channel,
        customer_id,
        created_from,
        created_before,
    })
}

/// A lower bound (`end = false`) or an exclusive upper bound (`end = true`) for `s`, which must
/// name a time in the years 2000..=9999.
pub(crate) fn instant(s: &str, tz: chrono_tz::Tz, end: bool) -> Result<DateTime<Utc>, ValueError> {
    const SHAPE: ValueError = ValueError("must be an RFC 3339 time or YYYY-MM-DD");
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        let t = limits::check_timestamp(t.with_timezone(&Utc))?;
        // Inclusive `created_to`: timestamps are stored to the microsecond.
        return Ok(if end {
            t + Duration::microseconds(1)
        } else {
            t
        });
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| SHAPE)?;
    let day = limits::check_date(day)?;
    let day = if end {
        day.succ_opt().ok_or(SHAPE)?
    } else {
        day
    };
    Ok(local_midnight(tz, day))
}

/// The instant a local day starts (if midnight falls in a DST gap, the first instant after it).
pub fn local_midnight(tz: chrono_tz::Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    (0..=3)
        .find_map(|h| {
            tz.from_local_datetime(&(midnight + Duration::hours(h)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}
