//! Answers for the location, transfer and stock-count use cases.

use serde_json::json;
use till_app::locations::LocationError;

use super::ApiError;

impl From<LocationError> for ApiError {
    fn from(e: LocationError) -> Self {
        match e {
            LocationError::Validation(errs) => ApiError::validation(errs),
            LocationError::NotFound => ApiError::not_found(),
            LocationError::PreconditionFailed => ApiError::precondition_failed(),
            LocationError::AlreadyExists { field, message } => {
                ApiError::already_exists(message).with_details(json!({ "field": field }))
            }
            LocationError::Conflict { message, details } => {
                ApiError::conflict("conflict", message).with_details(details)
            }
            LocationError::InvalidTransition { from, to, allowed } => ApiError::conflict(
                "invalid_transition",
                format!("Cannot go from {from} to {to}."),
            )
            .with_details(json!({"from": from, "to": to, "allowed": allowed})),
            LocationError::InsufficientStock { location_id, lines } => ApiError::conflict(
                "insufficient_stock",
                "Not enough stock at the location for some lines; nothing moved.",
            )
            .with_details(json!({"location_id": location_id, "lines": lines})),
            LocationError::OverReceipt { lines } => ApiError::unprocessable(
                "over_receipt",
                "More received than is outstanding on some lines; nothing was recorded.",
            )
            .with_details(json!({ "lines": lines })),
            LocationError::Idempotency(e) => e.into(),
            LocationError::Db(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_location_error_has_its_status_and_code() {
        let code = |e: LocationError| {
            let a = ApiError::from(e);
            (a.status.as_u16(), a.code)
        };
        assert_eq!(code(LocationError::NotFound), (404, "not_found"));
        assert_eq!(
            code(LocationError::OverReceipt { lines: json!([]) }),
            (422, "over_receipt")
        );
        assert_eq!(
            code(LocationError::InsufficientStock {
                location_id: uuid::Uuid::nil(),
                lines: Vec::new()
            }),
            (409, "insufficient_stock")
        );
        assert_eq!(
            code(LocationError::InvalidTransition {
                from: "received".into(),
                to: "cancelled".into(),
                allowed: Vec::new()
            }),
            (409, "invalid_transition")
        );
    }
}
