//! `POST /orders/{id}/payments`: one tender (split tenders are several payments). The order row
//! is locked for the check-and-write, so concurrent tenders can never pay more than the total.
//! Cashier+ take any method; a customer pays their own order by `card` only; `staff` cannot.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use till_db::audit;
use till_db::orders::{self, NewPayment};
use till_domain::{
    balance_due, completes_on_full_payment, payment_status, FieldErrors, OrderStatus,
    PaymentMethod, Role,
};
use uuid::Uuid;

use super::{after_commit, can_see, etag, order_json, record_event};
use crate::error::{ApiError, ApiResult};
use crate::extract::{AnyUser, Authed, Idempotent, RequestMeta, Started};
use crate::state::AppState;

const MAX_REFERENCE: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentBody {
    method: PaymentMethod,
    amount_cents: i64,
    tendered_cents: Option<i64>,
    reference: Option<String>,
}

pub async fn pay(
    State(state): State<AppState>,
    who: Authed<AnyUser>,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    idem: Idempotent<PaymentBody>,
) -> ApiResult<Response> {
    let body = &idem.body;
    if who.role == Role::Staff {
        return Err(ApiError::forbidden());
    }
    if who.role == Role::Customer && body.method != PaymentMethod::Card {
        return Err(ApiError::forbidden_msg("Online payments are by card only."));
    }
    let (tendered, change, reference) = check_body(body)?;

    let mut run = match idem.key.begin(&state, who.user_id).await? {
        Started::Replay(resp) => return Ok(resp),
        Started::Fresh(run) => run,
    };
    let head = orders::lock(&mut run.tx, id).await?;
    if !can_see(&who, head.customer_id) {
        return Err(ApiError::not_found());
    }
    let status = head.status()?;
    if status == OrderStatus::Cancelled {
        return Err(ApiError::conflict(
            "conflict",
            "This order is cancelled; it cannot take payments.",
        ));
    }
    let due = balance_due(head.total_cents, head.paid_cents);
    if body.amount_cents > due {
        return Err(ApiError::unprocessable(
            "overpayment",
            format!("The amount is more than the balance due ({due})."),
        )
        .with_details(json!({"balance_due_cents": due, "amount_cents": body.amount_cents})));
    }
    let paid = head.paid_cents + body.amount_cents;
    let complete = completes_on_full_payment(
        status,
        head.fulfilment()?,
        payment_status(head.total_cents, paid, head.refunded_cents),
    );
    let payment = orders::add_payment(
        &mut run.tx,
        id,
        NewPayment {
            method: body.method,
            amount_cents: body.amount_cents,
            tendered_cents: tendered,
            change_cents: change,
            reference,
            created_by: who.user_id,
        },
        complete,
    )
    .await?;
    if who.role.is_staff_side() {
        let data = json!({"payment_id": payment.id, "method": body.method, "amount_cents": body.amount_cents});
        audit::record(
            &mut run.tx,
            &meta.actor(&who),
            "order.payment",
            "order",
            id,
            data,
        )
        .await?;
    }
    let order = orders::get(&mut run.tx, id).await?;
    record_event(&mut run.tx, "order.updated", &order).await?;
    let answer = json!({"payment": payment, "order": order_json(&order)});
    run.save(StatusCode::CREATED, answer, vec![etag(order.version)])
        .await?;
    let resp = run.commit().await?;
    after_commit(&state, false);
    Ok(resp)
}

/// Amount > 0; `tendered_cents` only for cash and at least the amount (absent: exact cash).
/// Returns (tendered, change, reference).
fn check_body(b: &PaymentBody) -> ApiResult<(Option<i64>, i64, Option<&str>)> {
    let mut errs = FieldErrors::new();
    if b.amount_cents <= 0 {
        errs.add("amount_cents", "must be more than 0");
    }
    let (tendered, change) = match (b.method, b.tendered_cents) {
        (PaymentMethod::Cash, None) => (Some(b.amount_cents), 0),
        (PaymentMethod::Cash, Some(t)) if t < b.amount_cents => {
            errs.add("tendered_cents", "must be at least amount_cents");
            (None, 0)
        }
        (PaymentMethod::Cash, Some(t)) => (Some(t), t - b.amount_cents),
        (_, Some(_)) => {
            errs.add("tendered_cents", "is only for cash payments");
            (None, 0)
        }
        (_, None) => (None, 0),
    };
    let reference = b
        .reference
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if reference.is_some_and(|r| r.chars().count() > MAX_REFERENCE) {
        errs.add(
            "reference",
            format!("must be at most {MAX_REFERENCE} characters"),
        );
    }
    if errs.is_empty() {
        Ok((tendered, change, reference))
    } else {
        Err(ApiError::validation(errs))
    }
}
