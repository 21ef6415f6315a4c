//! Database failures, classified so the HTTP layer can answer 404/409/503 without seeing SQL,
//! and the one table of the schema's named constraints: which kind each is and which field of
//! the API it guards. A test (`crates/db/tests/schema.rs`) checks the table against the
//! migrated schema, so a new constraint cannot be missed here.

use thiserror::Error;

/// What a violated constraint enforces (its SQLSTATE class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    /// Primary keys, UNIQUE constraints and unique indexes (SQLSTATE 23505).
    Unique,
    /// CHECK constraints (23514).
    Check,
    /// Foreign keys (23503).
    ForeignKey,
}

/// One named constraint (or unique index) of the schema.
#[derive(Debug, PartialEq, Eq)]
pub struct Constraint {
    pub name: &'static str,
    pub kind: ConstraintKind,
    /// The API field it guards: what a 409 names in `details.field`.
    pub field: &'static str,
}

const fn c(name: &'static str, kind: ConstraintKind, field: &'static str) -> Constraint {
    Constraint { name, kind, field }
}

use ConstraintKind::{Check, ForeignKey, Unique};

/// Every constraint and unique index of the migrated schema, by table.
pub const CONSTRAINTS: &[Constraint] = &[
    c("audit_log_pkey", Unique, "id"),
    c("categories_pkey", Unique, "id"),
    c("categories_slug_key", Unique, "slug"),
    c("customers_pkey", Unique, "id"),
    c("customers_phone_key", Unique, "phone"),
    c("idempotency_keys_pkey", Unique, "key"),
    c("sessions_pkey", Unique, "handle"),
    c("sessions_user_id_fkey", ForeignKey, "user_id"),
    c("inventory_movements_pkey", Unique, "id"),
    c(
        "inventory_movements_balance_after_check",
        Check,
        "balance_after",
    ),
    c("inventory_movements_delta_check", Check, "delta"),
    c("inventory_movements_reason_check", Check, "reason"),
    c("inventory_movements_order_id_fkey", ForeignKey, "order_id"),
    c(
        "inventory_movements_product_id_fkey",
        ForeignKey,
        "product_id",
    ),
    c("jobs_pkey", Unique, "id"),
    c("jobs_dedupe_idx", Unique, "dedupe_key"),
    c("jobs_status_check", Check, "status"),
    c("order_lines_pkey", Unique, "line_no"),
    c("order_lines_quantity_check", Check, "quantity"),
    c("order_lines_order_id_fkey", ForeignKey, "order_id"),
    c("order_lines_product_id_fkey", ForeignKey, "product_id"),
    c("order_status_history_pkey", Unique, "seq"),
    c("order_status_history_order_id_fkey", ForeignKey, "order_id"),
    c("orders_pkey", Unique, "id"),
    c("product_images_pkey", Unique, "id"),
    c("product_images_product_id_fkey", ForeignKey, "product_id"),
    c("product_images_position_check", Check, "position"),
    c("product_images_file_key_check", Check, "file_key"),
    c("product_images_width_check", Check, "width"),
    c("product_images_height_check", Check, "height"),
    c("orders_number_key", Unique, "number"),
    c("orders_channel_check", Check, "channel"),
    c("orders_status_check", Check, "status"),
    c("orders_fulfilment_check", Check, "fulfilment"),
    c("orders_subtotal_cents_check", Check, "subtotal_cents"),
    c("orders_discount_cents_check", Check, "discount_cents"),
    c("orders_tax_cents_check", Check, "tax_cents"),
    c("orders_total_cents_check", Check, "total_cents"),
    c("orders_paid_cents_check", Check, "paid_cents"),
    // refunded_cents >= 0 AND <= paid_cents (an unnamed column CHECK, named by PostgreSQL).
    c("orders_check", Check, "refunded_cents"),
    c("orders_paid_le_total", Check, "paid_cents"),
    c("orders_customer_id_fkey", ForeignKey, "customer_id"),
    c("orders_created_by_fkey", ForeignKey, "created_by"),
    c("outbox_pkey", Unique, "id"),
    c("outbox_seq_idx", Unique, "seq"),
    c("outbox_event_id_key", Unique, "event_id"),
    c("outbox_counter_pkey", Unique, "id"),
    c("outbox_counter_id_check", Check, "id"),
    c("webhook_endpoints_pkey", Unique, "id"),
    c("webhook_deliveries_pkey", Unique, "id"),
    c(
        "webhook_deliveries_endpoint_id_event_seq_key",
        Unique,
        "event_seq",
    ),
    c("webhook_deliveries_status_check", Check, "status"),
    c("webhook_attempts_pkey", Unique, "attempt"),
    c(
        "webhook_attempts_delivery_id_fkey",
        ForeignKey,
        "delivery_id",
    ),
    c("payment_intents_pkey", Unique, "id"),
    c("payment_intents_amount_cents_check", Check, "amount_cents"),
    c("payment_intents_status_check", Check, "status"),
    c("payment_intents_order_id_fkey", ForeignKey, "order_id"),
    c("payments_pkey", Unique, "id"),
    c("payments_intent_id_key", Unique, "intent_id"),
    c("payments_intent_id_fkey", ForeignKey, "intent_id"),
    c("payments_amount_cents_check", Check, "amount_cents"),
    c("payments_method_check", Check, "method"),
    c("payments_order_id_fkey", ForeignKey, "order_id"),
    c("locations_code_key", Unique, "code"),
    c("locations_default_active", Check, "active"),
    c("locations_kind_check", Check, "kind"),
    c("locations_one_default", Unique, "is_default"),
    c("locations_pkey", Unique, "id"),
    c("stock_count_lines_count_id_fkey", ForeignKey, "count_id"),
    c("stock_count_lines_counted_check", Check, "counted"),
    c("stock_count_lines_pkey", Unique, "product_id"),
    c(
        "stock_count_lines_product_id_fkey",
        ForeignKey,
        "product_id",
    ),
    c("stock_counts_applied_by_fkey", ForeignKey, "applied_by"),
    c("stock_counts_created_by_fkey", ForeignKey, "created_by"),
    c("stock_counts_location_id_fkey", ForeignKey, "location_id"),
    c("stock_counts_pkey", Unique, "id"),
    c("stock_counts_status_check", Check, "status"),
    c("stock_levels_location_id_fkey", ForeignKey, "location_id"),
    c("stock_levels_pkey", Unique, "location_id"),
    c("stock_levels_product_id_fkey", ForeignKey, "product_id"),
    c("transfer_lines_damaged_check", Check, "damaged"),
    c("transfer_lines_pkey", Unique, "line_no"),
    c("transfer_lines_product_id_fkey", ForeignKey, "product_id"),
    c("transfer_lines_product_key", Unique, "product_id"),
    c("transfer_lines_quantity_check", Check, "quantity"),
    c("transfer_lines_received_check", Check, "received"),
    c("transfer_lines_transfer_id_fkey", ForeignKey, "transfer_id"),
    c(
        "transfer_receipts_created_by_fkey",
        ForeignKey,
        "created_by",
    ),
    c("transfer_receipts_pkey", Unique, "id"),
    c(
        "transfer_receipts_transfer_id_fkey",
        ForeignKey,
        "transfer_id",
    ),
    c("transfers_created_by_fkey", ForeignKey, "created_by"),
    c("transfers_distinct_locations", Check, "to_location_id"),
    c(
        "transfers_from_location_id_fkey",
        ForeignKey,
        "from_location_id",
    ),
    c("transfers_number_key", Unique, "number"),
    c("transfers_pkey", Unique, "id"),
    c("transfers_status_check", Check, "status"),
    c(
        "transfers_to_location_id_fkey",
        ForeignKey,
        "to_location_id",
    ),
    c("registers_location_id_fkey", ForeignKey, "location_id"),
    c("stock_levels_on_hand_check", Check, "stock_on_hand"),
    c("transfer_lines_not_over", Check, "lines"),
    c("products_pkey", Unique, "id"),
    c("products_sku_key", Unique, "sku"),
    c("products_barcode_key", Unique, "barcode"),
    c("products_price_cents_check", Check, "price_cents"),
    c("products_tax_rate_bp_check", Check, "tax_rate_bp"),
    c("products_stock_on_hand_check", Check, "stock_on_hand"),
    c(
        "products_low_stock_threshold_check",
        Check,
        "low_stock_threshold",
    ),
    c("products_category_id_fkey", ForeignKey, "category_id"),
    c("refunds_pkey", Unique, "id"),
    c("refunds_amount_cents_check", Check, "amount_cents"),
    c("refunds_order_id_fkey", ForeignKey, "order_id"),
    c("registers_pkey", Unique, "id"),
    c("registers_name_check", Check, "name"),
    c("registers_name_key", Unique, "name"),
    c("shifts_pkey", Unique, "id"),
    c("shifts_number_key", Unique, "number"),
    c("shifts_status_check", Check, "status"),
    c("shifts_closed_check", Check, "status"),
    c(
        "shifts_opening_float_cents_check",
        Check,
        "opening_float_cents",
    ),
    c("shifts_paid_in_cents_check", Check, "paid_in_cents"),
    c("shifts_paid_out_cents_check", Check, "paid_out_cents"),
    c(
        "shifts_counted_cash_cents_check",
        Check,
        "counted_cash_cents",
    ),
    c("shifts_deposit_cents_check", Check, "deposit_cents"),
    c("shifts_register_id_fkey", ForeignKey, "register_id"),
    c("shifts_opened_by_fkey", ForeignKey, "opened_by"),
    c("shifts_closed_by_fkey", ForeignKey, "closed_by"),
    // One open shift per register, one open shift per user: the answer names the open one.
    c("shifts_one_open_per_register", Unique, "register_id"),
    c("shift_users_pkey", Unique, "user_id"),
    c("shift_users_one_open_per_user", Unique, "user_id"),
    c("shift_users_shift_id_fkey", ForeignKey, "shift_id"),
    c("shift_users_user_id_fkey", ForeignKey, "user_id"),
    c("shift_cash_movements_pkey", Unique, "id"),
    c("shift_cash_movements_type_check", Check, "type"),
    c(
        "shift_cash_movements_amount_cents_check",
        Check,
        "amount_cents",
    ),
    c("shift_cash_movements_shift_id_fkey", ForeignKey, "shift_id"),
    c(
        "shift_cash_movements_created_by_fkey",
        ForeignKey,
        "created_by",
    ),
    c("orders_register_id_fkey", ForeignKey, "register_id"),
    c("orders_shift_id_fkey", ForeignKey, "shift_id"),
    c("payments_shift_id_fkey", ForeignKey, "shift_id"),
    c("refunds_shift_id_fkey", ForeignKey, "shift_id"),
    c("refunds_method_check", Check, "method"),
    c("users_pkey", Unique, "id"),
    c("users_email_key", Unique, "email"),
    c("users_role_check", Check, "role"),
    c("users_customer_id_fkey", ForeignKey, "customer_id"),
    // A customer record has at most one login; only registration can collide on it, through the
    // phone that matched the record.
    c("users_customer_id_key", Unique, "phone"),
];

/// The table's entry for a constraint name.
pub fn constraint(name: &str) -> Option<&'static Constraint> {
    CONSTRAINTS.iter().find(|c| c.name == name)
}

/// A violated constraint: its name, the field it guards, and the database's error for the log.
#[derive(Debug, Error)]
#[error("field {field}")]
pub struct Violation {
    pub constraint: &'static str,
    pub field: &'static str,
    /// `None` when the violation was found by Rust code rather than reported by PostgreSQL.
    #[source]
    pub source: Option<sqlx::Error>,
}

/// Compares the constraint's name: `DbError::Unique(v) if v == idempotency::PKEY`.
impl PartialEq<&str> for Violation {
    fn eq(&self, name: &&str) -> bool {
        self.constraint == *name
    }
}

#[derive(Debug, Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    /// A primary key, UNIQUE constraint or unique index was violated (e.g. `products_sku_key`).
    #[error("unique violation on {}", .0.constraint)]
    Unique(#[source] Violation),
    /// A CHECK constraint was violated (e.g. stock would go negative).
    #[error("check violation on {}", .0.constraint)]
    Check(#[source] Violation),
    /// A referenced row does not exist, or a referencing one still does.
    #[error("foreign key violation on {}", .0.constraint)]
    ForeignKey(#[source] Violation),
    /// Serialization failure or deadlock: safe to retry the whole transaction.
    #[error("transaction conflict")]
    Retryable,
    /// No connection, a lost one, or PostgreSQL refusing work (a 503); the text says which, for
    /// the log.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// PostgreSQL refused a value (SQLSTATE class 22, data exception: a NUL character in text, a
    /// number or date out of range, …). Input that got past validation, not a server fault.
    #[error("data exception: {0}")]
    InvalidData(#[source] sqlx::Error),
    #[error(transparent)]
    Other(sqlx::Error),
}

impl DbError {
    /// A CHECK violation found by Rust code (e.g. a guarded update that wrote fewer rows), named
    /// like the constraint that would have caught it.
    pub fn check(name: &'static str) -> Self {
        DbError::Check(Violation {
            constraint: name,
            field: constraint(name).map_or("", |c| c.field),
            source: None,
        })
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        let kind =
            match &e {
                sqlx::Error::RowNotFound => return DbError::NotFound,
                sqlx::Error::PoolTimedOut => return DbError::Unavailable(
                    "no pooled connection within DATABASE_ACQUIRE_TIMEOUT_MS (the pool is busy or \
                     PostgreSQL is unreachable)"
                        .into(),
                ),
                sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                    return DbError::Unavailable(e.to_string())
                }
                sqlx::Error::Database(db) => match db.code().as_deref() {
                    Some("40001") | Some("40P01") => return DbError::Retryable,
                    // Connection exceptions (08), insufficient resources such as too many
                    // connections (53), and operator intervention (57: statement_timeout, admin
                    // shutdown, "the database system is starting up"): the database, not the input.
                    Some(code)
                        if code.starts_with("08")
                            || code.starts_with("53")
                            || code.starts_with("57") =>
                    {
                        return DbError::Unavailable(e.to_string())
                    }
                    Some("23505") => Unique,
                    Some("23514") => Check,
                    Some("23503") => ForeignKey,
                    Some(code) if code.starts_with("22") => return DbError::InvalidData(e),
                    _ => return DbError::Other(e),
                },
                _ => return DbError::Other(e),
            };
        // A constraint missing from the table (the schema test prevents it) stays unclassified:
        // logged whole as a 500 rather than answered with a guessed field.
        let found = match &e {
            sqlx::Error::Database(db) => db
                .constraint()
                .and_then(constraint)
                .filter(|c| c.kind == kind),
            _ => None,
        };
        let Some(c) = found else {
            return DbError::Other(e);
        };
        let v = Violation {
            constraint: c.name,
            field: c.field,
            source: Some(e),
        };
        match kind {
            Unique => DbError::Unique(v),
            Check => DbError::Check(v),
            ForeignKey => DbError::ForeignKey(v),
        }
    }
}
