//! Orders: creation at the till and online, the lifecycle, payments, refunds, reading and the
//! staff board. One file per action; this module holds the router, the Order JSON shape and
//! the helpers they share (visibility, ETag).

mod board;
mod create;
mod payments;
pub(crate) mod read;
mod receipt;
mod refunds;
mod transitions;

use axum::http::{header, HeaderName, HeaderValue};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::extract::Principal;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create::create, read::list))
        .routes(routes!(board::board))
        .routes(routes!(read::read))
        .routes(routes!(transitions::transition))
        .routes(routes!(payments::pay))
        .routes(routes!(refunds::refund))
        .routes(routes!(read::customer_orders))
        .routes(routes!(receipt::receipt))
}

pub use till_app::orders::{event_payload, order_json, record_event, OrderView};

/// Staff see every order; a customer only orders of their own customer record.
pub fn can_see(p: &Principal, customer_id: Option<Uuid>) -> bool {
    caller(p).can_see(customer_id)
}

/// The principal as till-app's acting user.
pub fn caller(p: &Principal) -> till_app::Caller {
    till_app::Caller {
        user_id: p.user_id,
        role: p.role,
        customer_id: p.customer_id,
    }
}

/// `ETag: "<version>"`.
pub fn etag(version: i64) -> (HeaderName, HeaderValue) {
    (
        header::ETAG,
        HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("")),
    )
}
