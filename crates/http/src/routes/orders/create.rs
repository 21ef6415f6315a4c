//! `POST /orders`: a `pos` order by a cashier or above, an `online` order by a customer for
//! their own record. Customers order for `pickup` or `delivery` only (there is no counter
//! online) and may not give discounts. Prices, names and tax rates are copied from the
//! catalog now; stock of every tracked line is taken in the same transaction, all or nothing.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use till_db::orders::{self, Line, NewOrder, ProductForOrder};
use till_db::stock::{self, MovementContext, TakeError};
use till_db::{audit, PgConnection};
use till_domain::{
    discount_needs_manager, price_order, Channel, Discount, FieldErrors, Fulfilment, LineInput,
    MovementReason, Role,
};
use uuid::Uuid;

use super::{after_commit, etag, order_json, record_event};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AnyUser, Authed, Idempotent, RequestMeta, Started};
use crate::state::AppState;

const MAX_LINES: usize = 100;
const MAX_NOTE: usize = 1000;
const MAX_ADDRESS: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    fulfilment: Fulfilment,
    customer_id: Option<Uuid>,
    lines: Vec<LineBody>,
    discount: Option<Discount>,
    note: Option<String>,
    delivery_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineBody {
    product_id: Uuid,
    quantity: i64,
}

pub async fn create(
    State(state): State<AppState>,
    who: Authed<AnyUser>,
    meta: RequestMeta,
    idem: Idempotent<CreateBody>,
) -> ApiResult<Response> {
    let body = &idem.body;
    let channel = match who.role {
        Role::Customer => Channel::Online,
        r if r.is_cashier_or_above() => Channel::Pos,
        _ => return Err(ApiError::forbidden()),
    };
    let customer_id = customer_of(&who, body.customer_id)?;
    if channel == Channel::Online && body.discount.is_some() {
        return Err(ApiError::forbidden_msg("Customers cannot give discounts."));
    }
    let (note, address) = check_body(body, channel)?;

    let mut run = match idem.key.begin(&state, who.user_id).await? {
        Started::Replay(resp) => return Ok(resp),
        Started::Fresh(run) => run,
    };
    if channel == Channel::Pos {
        if let Some(c) = customer_id {
            if !orders::customer_exists(&mut run.tx, c).await? {
                return Err(ApiError::field("customer_id", "no such customer"));
            }
        }
    }
    let (lines, priced) = priced_lines(&mut run.tx, body, who.role).await?;
    let order = orders::insert(
        &mut run.tx,
        NewOrder {
            id: Uuid::now_v7(),
            channel,
            fulfilment: body.fulfilment,
            customer_id,
            created_by: who.user_id,
            subtotal_cents: priced.subtotal_cents,
            discount_cents: priced.discount_cents,
            tax_cents: priced.tax_cents,
            total_cents: priced.total_cents,
            discount: body.discount.map(|d| json!(d)),
            note,
            delivery_address: address,
            currency: &state.config.currency,
            lines,
        },
    )
    .await?;
    if channel == Channel::Pos {
        let actor = meta.actor(&who);
        let data = json!({"number": order.number.to_string(), "total_cents": order.total_cents});
        audit::record(&mut run.tx, &actor, "order.create", "order", order.id, data).await?;
        if let Some(d) = &body.discount {
            let data = json!({"discount": d, "discount_cents": order.discount_cents});
            audit::record(
                &mut run.tx,
                &actor,
                "order.discount",
                "order",
                order.id,
                data,
            )
            .await?;
        }
    }
    let location = HeaderValue::from_str(&format!("/api/v1/orders/{}", order.id))
        .map_err(ApiError::internal)?;
    let headers = vec![(header::LOCATION, location), etag(order.version)];
    run.save(StatusCode::CREATED, order_json(&order), headers)
        .await?;
    // Stock last: the product rows stay locked only for this statement pair and the commit.
    let wanted: Vec<(Uuid, i64)> = order
        .lines
        .iter()
        .filter(|l| l.track_stock)
        .map(|l| (l.product_id, l.quantity))
        .collect();
    let ctx = MovementContext {
        reason: MovementReason::Sale,
        order_id: Some(order.id),
        user_id: Some(who.user_id),
    };
    stock::take(&mut run.tx, &wanted, ctx)
        .await
        .map_err(|e| match e {
            TakeError::Insufficient(lines) => ApiError::conflict(
                "insufficient_stock",
                "Not enough stock for some lines; nothing was ordered.",
            )
            .with_details(json!({ "lines": lines })),
            TakeError::Db(e) => e.into(),
        })?;
    record_event(&mut run.tx, "order.created", &order).await?;
    let resp = run.commit().await?;
    after_commit(&state, true);
    Ok(resp)
}

/// The order's customer: a customer orders for themselves (naming anyone else is a 403);
/// staff may name any customer or none.
fn customer_of(who: &Authed<AnyUser>, asked: Option<Uuid>) -> ApiResult<Option<Uuid>> {
    if who.role != Role::Customer {
        return Ok(asked);
    }
    let own = who
        .customer_id
        .ok_or_else(|| ApiError::forbidden_msg("This login has no customer record."))?;
    match asked {
        Some(c) if c != own => Err(ApiError::forbidden_msg(
            "Customers can only order for themselves.",
        )),
        _ => Ok(Some(own)),
    }
}

/// Checks everything that does not need the database; returns the trimmed note and address.
fn check_body(body: &CreateBody, channel: Channel) -> ApiResult<(Option<&str>, Option<&str>)> {
    let mut errs = FieldErrors::new();
    if body.lines.is_empty() || body.lines.len() > MAX_LINES {
        errs.add("lines", format!("must have 1 to {MAX_LINES} lines"));
    }
    let mut seen = HashSet::new();
    for (i, l) in body.lines.iter().enumerate() {
        if !(1..=till_domain::Quantity::MAX).contains(&l.quantity) {
            errs.add(format!("lines[{i}].quantity"), "must be between 1 and 1000");
        }
        if !seen.insert(l.product_id) {
            errs.add(
                format!("lines[{i}].product_id"),
                "appears on more than one line; use one line with the total quantity",
            );
        }
    }
    if channel == Channel::Online && body.fulfilment == Fulfilment::InStore {
        errs.add(
            "fulfilment",
            "online orders are for pickup or delivery, not in_store",
        );
    }
    let address = body
        .delivery_address
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty());
    match (body.fulfilment, address) {
        (Fulfilment::Delivery, None) => {
            errs.add("delivery_address", "is required for delivery orders");
        }
        (Fulfilment::Delivery, Some(a)) if a.chars().count() > MAX_ADDRESS => {
            errs.add(
                "delivery_address",
                format!("must be at most {MAX_ADDRESS} characters"),
            );
        }
        (Fulfilment::InStore | Fulfilment::Pickup, Some(_)) => {
            errs.add("delivery_address", "is only for delivery orders");
        }
        _ => {}
    }
    let note = body
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > MAX_NOTE) {
        errs.add("note", format!("must be at most {MAX_NOTE} characters"));
    }
    match body.discount {
        Some(Discount::Percent { value_bp }) if !(0..=10_000).contains(&value_bp) => {
            errs.add("discount.value_bp", "must be between 0 and 10000");
        }
        Some(Discount::Amount { amount_cents }) if amount_cents < 0 => {
            errs.add("discount.amount_cents", "must be 0 or more");
        }
        _ => {}
    }
    if errs.is_empty() {
        Ok((note, address))
    } else {
        Err(ApiError::validation(errs))
    }
}

/// Copies each line's product (unknown or inactive → 422 on that line), prices the order and
/// applies the discount rules (over 20 % needs manager+ → 403; over the subtotal → 422).
async fn priced_lines(
    conn: &mut PgConnection,
    body: &CreateBody,
    role: Role,
) -> ApiResult<(Vec<Line>, till_domain::PricedOrder)> {
    let ids: Vec<Uuid> = body.lines.iter().map(|l| l.product_id).collect();
    let found: HashMap<Uuid, ProductForOrder> = orders::products_for_order(conn, &ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let mut errs = FieldErrors::new();
    let mut products = Vec::with_capacity(body.lines.len());
    for (i, l) in body.lines.iter().enumerate() {
        match found.get(&l.product_id) {
            Some(p) if p.active => products.push(p),
            _ => {
                errs.add(
                    format!("lines[{i}].product_id"),
                    "no such product, or it is no longer sold",
                );
            }
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::validation(errs));
    }
    let inputs: Vec<LineInput> = body
        .lines
        .iter()
        .zip(&products)
        .map(|(l, p)| LineInput {
            unit_price_cents: p.price_cents,
            quantity: l.quantity,
            tax_rate_bp: i64::from(p.tax_rate_bp),
        })
        .collect();
    let priced = price_order(&inputs, body.discount.as_ref())
        .map_err(|e| ApiError::validation(e.to_field_errors()))?;
    if let Some(d) = &body.discount {
        if discount_needs_manager(d, priced.subtotal_cents) && !role.is_manager_or_above() {
            return Err(ApiError::forbidden_msg(
                "Discounts above 20% need a manager.",
            ));
        }
    }
    let lines = body
        .lines
        .iter()
        .zip(&products)
        .zip(&priced.lines)
        .map(|((l, p), pl)| Line {
            product_id: p.id,
            sku: p.sku.clone(),
            name: p.name.clone(),
            unit_price_cents: p.price_cents,
            quantity: l.quantity,
            tax_rate_bp: i64::from(p.tax_rate_bp),
            track_stock: p.track_stock,
            subtotal_cents: pl.subtotal_cents,
            discount_cents: pl.discount_cents,
            tax_cents: pl.tax_cents,
            total_cents: pl.total_cents,
        })
        .collect();
    Ok((lines, priced))
}
