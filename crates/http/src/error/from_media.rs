//! Answers for the catalog media, CSV and receipt use cases.

use axum::http::StatusCode;
use serde_json::json;
use till_app::media::MediaError;
use till_app::product_csv::{FileError, ImportError};
use till_app::receipts::ReceiptError;

use super::ApiError;

impl ApiError {
    /// 413 `payload_too_large` (a body over its route's limit).
    pub fn payload_too_large() -> Self {
        Self::from_status(StatusCode::PAYLOAD_TOO_LARGE)
    }
}

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::Rejected(why) => ApiError::field("file", &why.to_string()),
            MediaError::NoFile => {
                ApiError::field("file", "is required: send the image in a part named `file`")
            }
            MediaError::Storage(e) => ApiError::internal(format!("media storage: {e}")),
            MediaError::Idempotency(e) => e.into(),
            MediaError::Db(e) => e.into(),
        }
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::File(FileError::Columns(errs)) => ApiError::validation(errs),
            ImportError::File(FileError::Malformed(msg)) => {
                ApiError::validation(till_domain::FieldErrors::default().add("file", msg).clone())
            }
            ImportError::File(FileError::TooLarge) => ApiError::payload_too_large(),
            ImportError::File(FileError::Io(e)) => {
                ApiError::bad_request("The request body could not be read.")
                    .with_details(json!({ "reason": e.to_string() }))
            }
            ImportError::Idempotency(e) => e.into(),
            ImportError::Db(e) => e.into(),
        }
    }
}

impl From<ReceiptError> for ApiError {
    fn from(e: ReceiptError) -> Self {
        match e {
            ReceiptError::NotFound => ApiError::not_found(),
            ReceiptError::Forbidden => ApiError::forbidden_msg(
                "Receipts are printed by cashiers, managers and admins, or read by the order's customer.",
            ),
            ReceiptError::Db(e) => e.into(),
        }
    }
}
