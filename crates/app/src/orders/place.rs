//! Placing an order: a `pos` order by a cashier or above, an `online` order by a customer for
//! their own record. Customers order for `pickup` or `delivery` only (there is no counter
//! online), may not give discounts, and may hold at most `ONLINE_OPEN_ORDERS_PER_CUSTOMER`
//! pending, not fully paid online orders (checked in the write, under a per-customer lock). Prices, names and tax rates are copied from the
//! catalog now; stock of every tracked line is taken in the same transaction, all or nothing,
//! together with the idempotency key's answer, the live event and the audit entries.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::json;
use till_db::audit::Actor;
use till_db::checkout::{self, AuditEntry, PlaceError, Placement};
use till_db::orders::{Line, Order, ProductForOrder, StatusChange};
use till_db::DbError;
use till_domain::{
    discount_needs_manager, price_order, Channel, Discount, FieldErrors, Fulfilment, LineInput,
    MovementReason, OrderStatus, Role,
};
use uuid::Uuid;

use super::{event_envelope, order_json, Caller, OrderError};
use crate::idempotency::{self, Answer, IdempotencyError, IdempotencyKey};
use crate::App;

const MAX_LINES: usize = 100;
const MAX_NOTE: usize = 1000;
const MAX_ADDRESS: usize = 500;

/// An order as asked for.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceInput {
    pub fulfilment: Fulfilment,
    /// Staff may name any customer (or none); a customer only themselves.
    pub customer_id: Option<Uuid>,
    pub lines: Vec<LineInputBody>,
    pub discount: Option<Discount>,
    pub note: Option<String>,
    pub delivery_address: Option<String>,
    /// Where the stock is taken: for a customer's pickup order, the pickup store chosen (a
    /// pickup-enabled location); staff may name any active location. Absent: the register's
    /// location for a till order, else the default location.
    pub location_id: Option<Uuid>,
    /// The till's register (POS orders). Absent: the register of the open shift the caller is
    /// on, if any.
    pub register_id: Option<Uuid>,
}

/// One line as asked for.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OrderLineInput)]
pub struct LineInputBody {
    pub product_id: Uuid,
    pub quantity: i64,
}

/// Places `input` for `caller` under idempotency `key`. The answer (201, the order, and the
/// `headers` given for it) is written in the same statement as the order (and replayed for
/// retries).
pub async fn place(
    app: &App,
    caller: &Caller,
    actor: &Actor,
    input: &PlaceInput,
    key: &IdempotencyKey,
    headers: impl FnOnce(&Order) -> Vec<(String, String)>,
) -> Result<Answer, OrderError> {
    let body = input;
    let channel = match caller.role {
        Role::Customer => Channel::Online,
        r if r.is_cashier_or_above() => Channel::Pos,
        _ => return Err(OrderError::Forbidden(None)),
    };
    let customer_id = customer_of(caller, body.customer_id)?;
    if channel == Channel::Online && body.discount.is_some() {
        return Err(OrderError::Forbidden(Some(
            "Customers cannot give discounts.",
        )));
    }
    let (note, address) = check_body(body, channel)?;

    // Both round trips on one connection: the pool tests every connection given back with a
    // round trip of its own (sqlx's `return_to_pool`), so taking one connection instead of two
    // saves PostgreSQL an exchange per order and the next order a hand-over. No transaction
    // stays open between the two; pricing in between is microseconds of CPU.
    let mut conn = app.db.write.acquire().await.map_err(DbError::from)?;

    // Round trip 1: the key's stored answer, the products, the order number and the clock.
    let scope = idempotency::scope(caller.user_id);
    let ids: Vec<Uuid> = body.lines.iter().map(|l| l.product_id).collect();
    let named_customer = customer_id.filter(|_| channel == Channel::Pos);
    let prep = checkout::prepare(&mut conn, &scope, &key.key, &ids, named_customer).await?;
    if let Some(stored) = prep.stored {
        return Ok(idempotency::answer_stored(stored, key)?);
    }
    if prep.customer_exists == Some(false) {
        return Err(OrderError::field("customer_id", "no such customer"));
    }
    let (lines, priced) = priced_lines(&prep.products, body, caller.role)?;

    // The whole order, its answer, event and audit entries are known before anything is
    // written, so round trip 2 writes them all in one statement.
    let order = Order {
        id: Uuid::now_v7(),
        number: prep.number,
        channel,
        status: OrderStatus::Pending,
        fulfilment: body.fulfilment,
        customer_id,
        created_by: Some(caller.user_id),
        subtotal_cents: priced.subtotal_cents,
        discount_cents: priced.discount_cents,
        tax_cents: priced.tax_cents,
        total_cents: priced.total_cents,
        paid_cents: 0,
        refunded_cents: 0,
        discount: body.discount.map(|d| json!(d)),
        note: note.map(str::to_owned),
        delivery_address: address.map(str::to_owned),
        currency: app.config.shop.currency.clone(),
        location_id: body.location_id,
        register_id: body.register_id,
        shift_id: None,
        version: 1,
        created_at: prep.now,
        updated_at: prep.now,
        lines,
        payments: Vec::new(),
        refunds: Vec::new(),
        status_history: vec![StatusChange {
            status: OrderStatus::Pending,
            at: prep.now,
            by: Some(caller.user_id),
        }],
        receipt_count: 0,
    };
    // The answer is the order as `GET` returns it; the function stores it and makes it the
    // event's `data` too (after adding the location, register and shift it resolves).
    let mut answer = Answer::new(201, order_json(&order), headers(&order));
    let placed = checkout::place(
        &mut conn,
        Placement {
            order: &order,
            movement_reason: MovementReason::Sale.as_str(),
            actor,
            audit: &audit_entries(&order, body.discount.as_ref()),
            event_topic: "order.created",
            event: &event_envelope("order.created", &order, &answer.body),
            idem_scope: &scope,
            idem_key: &key.key,
            idem_hash: &key.request_hash,
            answer_status: answer.status,
            answer_body: &answer.body,
            answer_headers: &answer.headers_json(),
            open_orders_cap: (channel == Channel::Online)
                .then_some(app.config.shop.online_open_orders_per_customer),
            pickup_location_only: channel == Channel::Online,
        },
    )
    .await;
    // Back to the pool before anything else may want one (a taken key reads its answer).
    drop(conn);
    match placed {
        Ok(placed) => {
            app.after_commit(true);
            // The function resolved the location, register and shift and stored them in its
            // answer.
            if let Some(body) = answer.body.as_object_mut() {
                body.insert("location_id".into(), json!(placed.location_id));
                body.insert("register_id".into(), json!(placed.register_id));
                body.insert("shift_id".into(), json!(placed.shift_id));
            }
            Ok(answer)
        }
        Err(PlaceError::Insufficient(mut lines)) => {
            // Named once, beside the lines (which keep their old shape).
            let location_id = lines.first().and_then(|l| l.location_id);
            lines.iter_mut().for_each(|l| l.location_id = None);
            Err(OrderError::InsufficientStock { lines, location_id })
        }
        Err(PlaceError::UnknownLocation) => Err(OrderError::field(
            "location_id",
            if channel == Channel::Online {
                "no such pickup location, or it is closed"
            } else {
                "no such location, or it is inactive"
            },
        )),
        Err(PlaceError::KeyInUse) => Err(IdempotencyError::InUse.into()),
        Err(PlaceError::OpenOrdersCap) => Err(OrderError::OpenOrdersCap {
            limit: app.config.shop.online_open_orders_per_customer,
        }),
        Err(PlaceError::UnknownRegister) => Err(OrderError::field(
            "register_id",
            "no such register, or it is inactive",
        )),
        Err(PlaceError::KeyTaken) => idempotency::answer_taken(app, caller.user_id, key).await,
        Err(PlaceError::Db(e)) => Err(e.into()),
    }
}

/// Staff orders are audited: the sale, and any discount given with it.
fn audit_entries(order: &Order, discount: Option<&Discount>) -> Vec<AuditEntry> {
    if order.channel != Channel::Pos {
        return Vec::new();
    }
    let mut entries = vec![AuditEntry {
        action: "order.create",
        data: json!({"number": order.number.to_string(), "total_cents": order.total_cents}),
    }];
    if let Some(d) = discount {
        entries.push(AuditEntry {
            action: "order.discount",
            data: json!({"discount": d, "discount_cents": order.discount_cents}),
        });
    }
    entries
}

/// The order's customer: a customer orders for themselves (naming anyone else is a 403);
/// staff may name any customer or none.
fn customer_of(caller: &Caller, asked: Option<Uuid>) -> Result<Option<Uuid>, OrderError> {
    if caller.role != Role::Customer {
        return Ok(asked);
    }
    let own = caller.customer_id.ok_or(OrderError::Forbidden(Some(
        "This login has no customer record.",
    )))?;
    match asked {
        Some(c) if c != own => Err(OrderError::Forbidden(Some(
            "Customers can only order for themselves.",
        ))),
        _ => Ok(Some(own)),
    }
}

/// Checks everything that does not need the database; returns the trimmed note and address.
fn check_body(
    body: &PlaceInput,
    channel: Channel,
) -> Result<(Option<&str>, Option<&str>), OrderError> {
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
    if channel == Channel::Online
        && body.location_id.is_some()
        && body.fulfilment != Fulfilment::Pickup
    {
        errs.add("location_id", "is only for pickup orders");
    }
    if channel == Channel::Online && body.register_id.is_some() {
        errs.add("register_id", "is only for till (POS) orders");
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
        Some(Discount::Amount { amount_cents }) => {
            if let Err(e) = till_domain::limits::check_amount_cents(amount_cents) {
                errs.add("discount.amount_cents", e.message());
            }
        }
        _ => {}
    }
    if errs.is_empty() {
        Ok((note, address))
    } else {
        Err(OrderError::Validation(errs))
    }
}

/// Copies each line's product (unknown or inactive → 422 on that line), prices the order and
/// applies the discount rules (over 20 % needs manager+ → 403; over the subtotal → 422).
fn priced_lines(
    products: &[ProductForOrder],
    body: &PlaceInput,
    role: Role,
) -> Result<(Vec<Line>, till_domain::PricedOrder), OrderError> {
    let found: HashMap<Uuid, &ProductForOrder> = products.iter().map(|p| (p.id, p)).collect();
    let mut errs = FieldErrors::new();
    let mut products = Vec::with_capacity(body.lines.len());
    for (i, l) in body.lines.iter().enumerate() {
        match found.get(&l.product_id) {
            Some(p) if p.active => products.push(*p),
            _ => {
                errs.add(
                    format!("lines[{i}].product_id"),
                    "no such product, or it is no longer sold",
                );
            }
        }
    }
    if !errs.is_empty() {
        return Err(OrderError::Validation(errs));
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
        .map_err(|e| OrderError::Validation(e.to_field_errors()))?;
    if let Some(d) = &body.discount {
        if discount_needs_manager(d, priced.subtotal_cents) && !role.is_manager_or_above() {
            return Err(OrderError::Forbidden(Some(
                "Discounts above 20% need a manager.",
            )));
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
