//! The one place till-app's errors become HTTP answers: each variant's status, code, message
//! and details.

use serde_json::json;
use till_app::accounts::AccountError;
use till_app::categories::CategoryError;
use till_app::customers::CustomerError;
use till_app::idempotency::IdempotencyError;
use till_app::orders::OrderError;
use till_app::password::HashError;
use till_app::payments::SignatureError;
use till_app::products::ProductError;
use till_app::shifts::ShiftError;
use till_app::stock::StockError;
use till_app::webhooks::WebhookError;

use super::ApiError;

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::NotFound => ApiError::not_found(),
            OrderError::Forbidden(None) => ApiError::forbidden(),
            OrderError::Forbidden(Some(msg)) => ApiError::forbidden_msg(msg),
            OrderError::InvalidTransition(t) => {
                ApiError::conflict("invalid_transition", t.to_string()).with_details(json!(t))
            }
            OrderError::PreconditionFailed => ApiError::precondition_failed(),
            OrderError::Overpayment {
                balance_due_cents,
                amount_cents,
            } => ApiError::unprocessable(
                "overpayment",
                format!("The amount is more than the balance due ({balance_due_cents})."),
            )
            .with_details(
                json!({"balance_due_cents": balance_due_cents, "amount_cents": amount_cents}),
            ),
            OrderError::OverRefund {
                refundable_cents,
                amount_cents,
            } => ApiError::unprocessable(
                "over_refund",
                format!("At most {refundable_cents} can be refunded on this order."),
            )
            .with_details(
                json!({"refundable_cents": refundable_cents, "amount_cents": amount_cents}),
            ),
            OrderError::InsufficientStock { lines, location_id } => ApiError::conflict(
                "insufficient_stock",
                "Not enough stock for some lines; nothing was ordered.",
            )
            .with_details(json!({ "lines": lines, "location_id": location_id })),
            OrderError::Conflict(msg) => ApiError::conflict("conflict", msg),
            OrderError::MoneyOnOrder { refundable_cents } => ApiError::conflict(
                "conflict",
                "This order still holds money; a manager must refund it before it can be cancelled.",
            )
            .with_details(json!({ "refundable_cents": refundable_cents })),
            OrderError::OpenOrdersCap { limit } => ApiError::conflict(
                "conflict",
                format!(
                    "You already have {limit} orders waiting for payment; pay or cancel one first."
                ),
            )
            .with_details(json!({ "limit": limit })),
            OrderError::NoOpenShift => ApiError::conflict(
                "no_open_shift",
                "Cash needs an open register shift: open one (or join one) first.",
            ),
            OrderError::Validation(errs) => ApiError::validation(errs),
            OrderError::Idempotency(e) => e.into(),
            OrderError::Db(e) => e.into(),
        }
    }
}

/// Every refused signature is the same 401: the caller learns nothing about which part failed.
impl From<SignatureError> for ApiError {
    fn from(e: SignatureError) -> Self {
        tracing::warn!(reason = %e, "payment provider callback refused");
        ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing, invalid or expired Till-Signature.",
        )
    }
}

impl From<IdempotencyError> for ApiError {
    fn from(e: IdempotencyError) -> Self {
        match e {
            IdempotencyError::InUse => ApiError::conflict(
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still being processed; retry shortly.",
            ),
            IdempotencyError::Reused => ApiError::unprocessable(
                "idempotency_key_reused",
                "This Idempotency-Key was already used for a different request.",
            ),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Validation(errs) => ApiError::validation(errs),
            AccountError::AlreadyExists { field, message } => {
                ApiError::already_exists(message).with_details(json!({ "field": field }))
            }
            AccountError::Hash(e) => e.into(),
            AccountError::Idempotency(e) => e.into(),
            AccountError::Db(e) => e.into(),
        }
    }
}

impl From<StockError> for ApiError {
    fn from(e: StockError) -> Self {
        match e {
            StockError::Validation(errs) => ApiError::validation(errs),
            StockError::Insufficient(short) => ApiError::conflict(
                "insufficient_stock",
                format!(
                    "Only {} in stock; {} requested.",
                    short.available, short.requested
                ),
            )
            .with_details(json!(short)),
            StockError::Idempotency(e) => e.into(),
            StockError::Db(e) => e.into(),
        }
    }
}

impl From<CategoryError> for ApiError {
    fn from(e: CategoryError) -> Self {
        match e {
            CategoryError::Validation(errs) => ApiError::validation(errs),
            CategoryError::SlugTaken { slug } => ApiError::already_exists(format!(
                "A category with the slug \"{slug}\" already exists."
            ))
            .with_details(json!({ "field": "name", "slug": slug })),
            CategoryError::Idempotency(e) => e.into(),
            CategoryError::Db(e) => e.into(),
        }
    }
}

impl From<CustomerError> for ApiError {
    fn from(e: CustomerError) -> Self {
        match e {
            CustomerError::Validation(errs) => ApiError::validation(errs),
            CustomerError::PhoneTaken => {
                ApiError::already_exists("A customer with this phone number already exists.")
                    .with_details(json!({ "field": "phone" }))
            }
            CustomerError::Idempotency(e) => e.into(),
            CustomerError::Db(e) => e.into(),
        }
    }
}

impl From<ProductError> for ApiError {
    fn from(e: ProductError) -> Self {
        match e {
            ProductError::Validation(errs) => ApiError::validation(errs),
            ProductError::PreconditionFailed { current_version } => ApiError::precondition_failed()
                .with_details(json!({ "current_version": current_version })),
            ProductError::Idempotency(e) => e.into(),
            ProductError::Db(e) => e.into(),
        }
    }
}

impl From<ShiftError> for ApiError {
    fn from(e: ShiftError) -> Self {
        match e {
            ShiftError::NotFound => ApiError::not_found(),
            ShiftError::Forbidden(None) => ApiError::forbidden(),
            ShiftError::Forbidden(Some(msg)) => ApiError::forbidden_msg(msg),
            ShiftError::DifferenceNeedsManager { difference_cents } => ApiError::forbidden_msg(
                "The counted cash differs from the expected by more than a cashier may close with; a manager must close this shift.",
            )
            .with_details(json!({ "difference_cents": difference_cents })),
            ShiftError::Conflict {
                message,
                open_shift_id,
            } => ApiError::conflict("conflict", message)
                .with_details(json!({ "open_shift_id": open_shift_id })),
            ShiftError::Closed => ApiError::conflict(
                "invalid_transition",
                "This shift is closed; it can no longer change.",
            )
            .with_details(json!({"from": "closed"})),
            ShiftError::NotEnoughCash {
                expected_cash_cents,
            } => {
                let e = ApiError::conflict(
                    "conflict",
                    "The drawer does not hold that much cash.",
                );
                match expected_cash_cents {
                    Some(c) => e.with_details(json!({ "expected_cash_cents": c })),
                    None => e,
                }
            }
            ShiftError::PreconditionFailed { current_version } => ApiError::precondition_failed()
                .with_details(json!({ "current_version": current_version })),
            ShiftError::Validation(errs) => ApiError::validation(errs),
            ShiftError::Idempotency(e) => e.into(),
            ShiftError::Db(e) => e.into(),
        }
    }
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        ApiError::internal(e)
    }
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Validation(errs) => ApiError::validation(errs),
            WebhookError::VersionMismatch => ApiError::precondition_failed(),
            WebhookError::Idempotency(e) => e.into(),
            WebhookError::Db(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use till_db::DbError;
    use till_domain::{FieldErrors, Fulfilment, OrderStatus};

    use super::*;

    fn answer(e: impl Into<ApiError>) -> (u16, &'static str) {
        let e = e.into();
        (e.status.as_u16(), e.code)
    }

    #[test]
    fn every_order_error_has_its_status_and_code() {
        let transition = till_domain::check_transition(
            OrderStatus::Completed,
            OrderStatus::Pending,
            Fulfilment::InStore,
        )
        .unwrap_err();
        let table: Vec<(OrderError, (u16, &str))> = vec![
            (OrderError::NotFound, (404, "not_found")),
            (OrderError::Forbidden(None), (403, "forbidden")),
            (OrderError::Forbidden(Some("no")), (403, "forbidden")),
            (
                OrderError::InvalidTransition(transition),
                (409, "invalid_transition"),
            ),
            (OrderError::PreconditionFailed, (412, "precondition_failed")),
            (
                OrderError::Overpayment {
                    balance_due_cents: 1,
                    amount_cents: 2,
                },
                (422, "overpayment"),
            ),
            (
                OrderError::OverRefund {
                    refundable_cents: 1,
                    amount_cents: 2,
                },
                (422, "over_refund"),
            ),
            (
                OrderError::InsufficientStock {
                    lines: Vec::new(),
                    location_id: None,
                },
                (409, "insufficient_stock"),
            ),
            (OrderError::Conflict("cancelled"), (409, "conflict")),
            (
                OrderError::MoneyOnOrder {
                    refundable_cents: 5,
                },
                (409, "conflict"),
            ),
            (OrderError::OpenOrdersCap { limit: 3 }, (409, "conflict")),
            (OrderError::NoOpenShift, (409, "no_open_shift")),
            (
                OrderError::Validation(FieldErrors::default()),
                (422, "validation_failed"),
            ),
            (
                OrderError::Idempotency(IdempotencyError::InUse),
                (409, "idempotency_key_in_use"),
            ),
            (
                OrderError::Idempotency(IdempotencyError::Reused),
                (422, "idempotency_key_reused"),
            ),
            (OrderError::Db(DbError::NotFound), (404, "not_found")),
            (
                OrderError::Db(DbError::Unavailable("pool".into())),
                (503, "service_unavailable"),
            ),
        ];
        for (e, want) in table {
            let shown = format!("{e:?}");
            assert_eq!(answer(e), want, "{shown}");
        }
    }

    #[test]
    fn money_errors_carry_their_details() {
        let e = ApiError::from(OrderError::MoneyOnOrder {
            refundable_cents: 1083,
        });
        assert_eq!(e.details.unwrap()["refundable_cents"], 1083);
        let e = ApiError::from(OrderError::OpenOrdersCap { limit: 3 });
        assert_eq!(e.details.unwrap()["limit"], 3);
        for s in [
            SignatureError::Missing,
            SignatureError::Malformed,
            SignatureError::Stale,
            SignatureError::Mismatch,
        ] {
            let e = ApiError::from(s);
            assert_eq!((e.status.as_u16(), e.code), (401, "unauthorized"));
            assert_eq!(e.message, "Missing, invalid or expired Till-Signature.");
        }
    }

    #[test]
    fn every_stock_error_has_its_status_and_code() {
        assert_eq!(
            answer(StockError::Validation(FieldErrors::default())),
            (422, "validation_failed")
        );
        let short = StockError::Insufficient(till_db::stock::Shortage {
            product_id: uuid::Uuid::nil(),
            requested: 5,
            available: 2,
            location_id: None,
        });
        assert_eq!(answer(short), (409, "insufficient_stock"));
        assert_eq!(
            answer(StockError::Db(DbError::NotFound)),
            (404, "not_found")
        );
    }

    #[test]
    fn every_shift_error_has_its_status_and_code() {
        let table: Vec<(ShiftError, (u16, &str))> = vec![
            (ShiftError::NotFound, (404, "not_found")),
            (ShiftError::Forbidden(None), (403, "forbidden")),
            (
                ShiftError::DifferenceNeedsManager {
                    difference_cents: -700,
                },
                (403, "forbidden"),
            ),
            (
                ShiftError::Conflict {
                    message: "open",
                    open_shift_id: None,
                },
                (409, "conflict"),
            ),
            (ShiftError::Closed, (409, "invalid_transition")),
            (
                ShiftError::NotEnoughCash {
                    expected_cash_cents: None,
                },
                (409, "conflict"),
            ),
            (
                ShiftError::PreconditionFailed { current_version: 2 },
                (412, "precondition_failed"),
            ),
            (
                ShiftError::Validation(FieldErrors::default()),
                (422, "validation_failed"),
            ),
        ];
        for (e, want) in table {
            let shown = format!("{e:?}");
            assert_eq!(answer(e), want, "{shown}");
        }
        let e = ApiError::from(ShiftError::DifferenceNeedsManager {
            difference_cents: -700,
        });
        assert_eq!(e.details.unwrap()["difference_cents"], -700);
    }

    #[test]
    fn every_category_error_has_its_status_and_code() {
        let taken = ApiError::from(CategoryError::SlugTaken { slug: "tea".into() });
        assert_eq!((taken.status.as_u16(), taken.code), (409, "already_exists"));
        assert_eq!(taken.details.unwrap()["slug"], "tea");
        assert_eq!(
            answer(CategoryError::Validation(FieldErrors::default())),
            (422, "validation_failed")
        );
    }

    #[test]
    fn every_customer_error_has_its_status_and_code() {
        assert_eq!(answer(CustomerError::PhoneTaken), (409, "already_exists"));
        assert_eq!(
            answer(CustomerError::Validation(FieldErrors::default())),
            (422, "validation_failed")
        );
        assert_eq!(
            answer(CustomerError::Db(DbError::NotFound)),
            (404, "not_found")
        );
    }

    #[test]
    fn every_product_error_has_its_status_and_code() {
        let stale = ApiError::from(ProductError::PreconditionFailed { current_version: 4 });
        assert_eq!(
            (stale.status.as_u16(), stale.code),
            (412, "precondition_failed")
        );
        assert_eq!(stale.details.unwrap()["current_version"], 4);
        assert_eq!(
            answer(ProductError::Validation(FieldErrors::default())),
            (422, "validation_failed")
        );
        assert_eq!(
            answer(ProductError::Db(DbError::NotFound)),
            (404, "not_found")
        );
    }

    #[test]
    fn every_account_error_has_its_status_and_code() {
        let exists = answer(AccountError::AlreadyExists {
            field: "phone",
            message: "taken",
        });
        assert_eq!(exists, (409, "already_exists"));
        assert_eq!(
            answer(AccountError::Validation(FieldErrors::default())),
            (422, "validation_failed")
        );
        assert_eq!(
            answer(AccountError::Db(DbError::Unique(till_db::Violation {
                constraint: "users_email_key",
                field: "email",
                source: None,
            }))),
            (409, "already_exists")
        );
        assert_eq!(
            ApiError::from(AccountError::Db(DbError::Retryable)).status,
            StatusCode::CONFLICT
        );
    }
}
