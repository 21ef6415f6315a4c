//! Schemas of the JSON that handlers build by hand (`json!`), and of the error envelope. These
//! types are for the document only; the fuzzer run (`scripts/test.d/60-fuzz.sh`) checks every
//! answer against them, so a handler that changes its JSON without them fails there.

#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use till_app::orders::OrderView;
use till_db::categories::CategoryRow;
use till_db::inventory::MovementRow;
use till_db::orders::{Payment, Refund};
use till_db::products::ProductRow;
use till_db::reports::{DayRow, TopProduct};
use utoipa::{IntoParams, ToSchema};

use crate::routes::users::User;

/// Every error: `{"error": {code, message, details?, request_id}}`.
#[derive(ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`validation_failed`, `not_found`, `insufficient_stock`…).
    pub code: String,
    /// For people; never internals.
    pub message: String,
    /// Structured context: `fields` for `validation_failed` (`{field: [message…]}`), the short
    /// lines for `insufficient_stock`, `from`/`to`/`allowed` for `invalid_transition`…
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
    /// The request's id, as in `X-Request-Id`.
    pub request_id: Option<String>,
}

/// `?limit=&cursor=` of every list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1..100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page (opaque).
    pub cursor: Option<String>,
}

#[derive(ToSchema)]
pub struct UserEnvelope {
    pub user: User,
}

#[derive(ToSchema)]
pub struct Me {
    pub user: User,
    /// Present when signed in by cookie: the token unsafe requests must send as `X-CSRF-Token`.
    pub csrf_token: Option<String>,
}

#[derive(ToSchema)]
pub struct LoginResult {
    /// A JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the token is valid.
    pub expires_in: u64,
    /// The session's CSRF token (for cookie-signed-in unsafe requests).
    pub csrf_token: String,
    pub user: User,
}

#[derive(ToSchema)]
pub struct CategoryList {
    pub items: Vec<CategoryRow>,
}

#[derive(ToSchema)]
pub struct LocationList {
    pub items: Vec<till_db::locations::LocationRow>,
}

#[derive(ToSchema)]
pub struct AvailabilityList {
    pub items: Vec<till_db::locations::LocationStock>,
}

/// One transfer receipt: the units it recorded.
#[derive(ToSchema)]
pub struct TransferReceipt {
    pub id: uuid::Uuid,
    pub transfer_id: uuid::Uuid,
    pub lines: Vec<ReceiptLine>,
    pub created_by: uuid::Uuid,
    pub created_at: DateTime<Utc>,
}

#[derive(ToSchema)]
pub struct ReceiptLine {
    pub product_id: uuid::Uuid,
    pub received: i64,
    pub damaged: i64,
}

#[derive(ToSchema)]
pub struct ReceiptResult {
    pub receipt: TransferReceipt,
    pub transfer: till_db::transfers::Transfer,
}

#[derive(ToSchema)]
pub struct AdjustmentResult {
    pub movement: MovementRow,
    pub product: ProductRow,
}

#[derive(ToSchema)]
pub struct PaymentResult {
    pub payment: Payment,
    pub order: OrderView<'static>,
}

#[derive(ToSchema)]
pub struct RefundResult {
    pub refund: Refund,
    pub order: OrderView<'static>,
}

#[derive(ToSchema)]
pub struct BoardColumn {
    /// Orders in this status (all of them, not only those listed).
    pub count: i64,
    /// At most 100, oldest first.
    pub orders: Vec<OrderView<'static>>,
}

/// The staff board: one column per open status.
#[derive(ToSchema)]
pub struct Board {
    /// Keyed by status: `pending`, `confirmed`, `preparing`, `ready`, `out_for_delivery`.
    pub columns: BTreeMap<String, BoardColumn>,
    /// At most 50 completed or delivered orders, newest first.
    pub recent_done: Vec<OrderView<'static>>,
}

#[derive(ToSchema)]
pub struct SalesTotals {
    pub orders: i64,
    pub gross_cents: i64,
    pub discount_cents: i64,
    pub tax_cents: i64,
    pub refunds_cents: i64,
    pub net_cents: i64,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[derive(ToSchema)]
pub struct SalesReport {
    /// One per day of the range, zero days included.
    pub days: Vec<DayRow>,
    pub totals: SalesTotals,
    /// Cents taken per payment method (`cash`, `card`, `other`).
    pub by_payment_method: BTreeMap<String, i64>,
    pub top_products: Vec<TopProduct>,
    /// `STORE_TIMEZONE`, in which the days are counted.
    pub timezone: String,
}

// ---------------------------------------------------------------------------------- health

#[derive(ToSchema)]
pub struct DependencyStatus {
    /// `up` or `down`.
    pub status: String,
    pub response_time_ms: Option<f64>,
    /// `redis` or `in_process` (cache only).
    pub backend: Option<String>,
}

#[derive(ToSchema)]
pub struct Health {
    /// `healthy`, `degraded` (Redis down) or `unhealthy` (database down, with 503).
    pub status: String,
    pub timestamp: DateTime<Utc>,
    pub version: String,
    pub environment: String,
    pub instance: String,
    pub uptime_seconds: u64,
    pub database: DependencyStatus,
    pub cache: DependencyStatus,
}

#[derive(ToSchema)]
pub struct Status {
    /// `alive`, `ready` or `not_ready`.
    pub status: String,
    /// Why not ready: `draining`, `database unreachable`, `migrations pending`.
    pub reason: Option<String>,
}

#[derive(ToSchema)]
pub struct LbMetrics {
    pub active_connections: i64,
    pub requests_per_minute: u64,
    pub error_rate: f64,
    pub p95_ms: f64,
}

/// Instance internals for operators (admin or `HEALTH_TOKEN`).
#[derive(ToSchema)]
pub struct Detailed {
    pub instance: String,
    pub uptime_seconds: u64,
    /// `database` {size, idle, max} and `redis` {mode, established} (null without Redis).
    #[schema(value_type = Object)]
    pub pools: Value,
    /// `total`, `5xx`, `in_flight`.
    #[schema(value_type = Object)]
    pub requests: Value,
    /// `p50`, `p95`, `p99`.
    #[schema(value_type = Object)]
    pub latency_ms: Value,
    /// `hit_rate`.
    #[schema(value_type = Object)]
    pub cache: Value,
    /// `connections`.
    #[schema(value_type = Object)]
    pub websocket: Value,
    /// `rss_bytes`, `peak_rss_bytes`.
    #[schema(value_type = Object)]
    pub memory: Value,
    /// `backlog` (null if the database did not answer).
    #[schema(value_type = Object)]
    pub jobs: Value,
}

/// A payment intent as created: the order's balance due, awaiting the provider.
#[derive(ToSchema)]
pub struct IntentCreated {
    pub id: uuid::Uuid,
    pub order_id: uuid::Uuid,
    pub amount_cents: i64,
    /// `requires_confirmation` when created.
    pub status: till_db::payment_intents::IntentStatus,
    pub created_at: chrono::DateTime<chrono::Utc>,
}
