//! Receipts: what an order's receipt says ([`Receipt`], built from the order and the store's
//! settings) and the act of issuing one, which counts it (`orders.receipt_count`), so every
//! receipt after the first says COPY.

pub mod render;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;
use till_db::audit::{self, Actor};
use till_db::orders::{self, Order};
use till_db::DbError;
use uuid::Uuid;

use crate::{App, Caller};

#[derive(Debug, Clone)]
pub struct ReceiptLine {
    pub name: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub subtotal_cents: i64,
}

#[derive(Debug, Clone)]
pub struct ReceiptPayment {
    pub method: String,
    pub amount_cents: i64,
    pub tendered_cents: Option<i64>,
    pub change_cents: i64,
}

#[derive(Debug, Clone)]
pub struct ReceiptRefund {
    pub amount_cents: i64,
    pub reason: String,
}

/// Everything a receipt shows.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub store_name: String,
    pub store_address: Vec<String>,
    pub store_tax_id: Option<String>,
    pub number: String,
    /// The order's time in `STORE_TIMEZONE`.
    pub time: String,
    pub copy: bool,
    pub currency: String,
    pub lines: Vec<ReceiptLine>,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    /// `(tax_rate_bp, tax_cents)`, lowest rate first.
    pub tax_by_rate: Vec<(i64, i64)>,
    pub total_cents: i64,
    pub payments: Vec<ReceiptPayment>,
    pub refunds: Vec<ReceiptRefund>,
    pub balance_due_cents: i64,
}

impl Receipt {
    /// The receipt of `order` as the store configured in `app` prints it.
    pub fn of(app: &App, order: &Order, copy: bool) -> Receipt {
        let shop = &app.config.shop;
        let mut tax_by_rate: BTreeMap<i64, i64> = BTreeMap::new();
        for l in &order.lines {
            *tax_by_rate.entry(l.tax_rate_bp).or_default() += l.tax_cents;
        }
        Receipt {
            store_name: shop.store_name.clone(),
            store_address: shop
                .store_address
                .split('|')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            store_tax_id: shop.store_tax_id.clone(),
            number: order.number.to_string(),
            time: local_time(order.created_at, shop.store_timezone),
            copy,
            currency: order.currency.clone(),
            lines: order
                .lines
                .iter()
                .map(|l| ReceiptLine {
                    name: l.name.clone(),
                    quantity: l.quantity,
                    unit_price_cents: l.unit_price_cents,
                    subtotal_cents: l.subtotal_cents,
                })
                .collect(),
            subtotal_cents: order.subtotal_cents,
            discount_cents: order.discount_cents,
            tax_by_rate: tax_by_rate.into_iter().collect(),
            total_cents: order.total_cents,
            payments: order
                .payments
                .iter()
                .map(|p| ReceiptPayment {
                    method: method_name(p.method.as_str()),
                    amount_cents: p.amount_cents,
                    tendered_cents: p.tendered_cents,
                    change_cents: p.change_cents,
                })
                .collect(),
            refunds: order
                .refunds
                .iter()
                .map(|r| ReceiptRefund {
                    amount_cents: r.amount_cents,
                    reason: r.reason.clone(),
                })
                .collect(),
            balance_due_cents: (order.total_cents - order.paid_cents).max(0),
        }
    }
}

fn method_name(m: &str) -> String {
    let mut c = m.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// `2026-11-30 09:15` in the store's zone.
pub fn local_time(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// Missing, or another customer's order.
    #[error("order not found")]
    NotFound,
    /// Signed in, but neither cashier+ nor a customer.
    #[error("receipts are printed by cashiers, managers and admins")]
    Forbidden,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Issues a receipt for the order: counts it and answers what to print (a copy when one was
/// issued before). Cashier+ for any order; a customer for their own (others: not found).
pub async fn issue(
    app: &App,
    actor: &Actor,
    caller: &Caller,
    order_id: Uuid,
) -> Result<Receipt, ReceiptError> {
    if caller.role.is_staff_side() && !caller.role.is_cashier_or_above() {
        return Err(ReceiptError::Forbidden);
    }
    let mut tx = app.db.write.begin().await.map_err(DbError::from)?;
    let order = match orders::get(&mut tx, order_id).await {
        Err(DbError::NotFound) => return Err(ReceiptError::NotFound),
        other => other?,
    };
    let allowed = caller.role.is_cashier_or_above()
        || (caller.customer_id.is_some() && caller.customer_id == order.customer_id);
    if !allowed {
        return Err(ReceiptError::NotFound);
    }
    let count = orders::count_receipt(&mut tx, order_id).await?;
    audit::record(
        &mut tx,
        actor,
        "order.receipt",
        "order",
        order_id,
        json!({"receipt_count": count}),
    )
    .await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(Receipt::of(app, &order, count > 1))
}
