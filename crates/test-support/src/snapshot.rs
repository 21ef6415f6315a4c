//! Snapshot settings: the redactions that make a JSON answer comparable between runs (ids,
//! timestamps, request ids). Use through [`assert_json_snap!`](crate::assert_json_snap).

use insta::internals::Content;

/// Keys whose values differ on every run.
const VARYING: &[&str] = &[
    "id",
    "request_id",
    "product_id",
    "customer_id",
    "order_id",
    "user_id",
    "actor_id",
    "entity_id",
    "category_id",
    "location_id",
    "transfer_id",
    "count_id",
    "created_by",
    "by",
    "at",
    "created_at",
    "updated_at",
    "paid_at",
    "refunded_at",
    "next_cursor",
];

/// The current insta settings plus a redaction for every varying key, at any depth.
pub fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_sort_maps(true);
    for key in VARYING {
        // Keep nulls visible: a redacted `null` would hide a missing value.
        s.add_redaction(
            &format!(".**.{key}"),
            insta::dynamic_redaction(|v, _| match v {
                Content::Unit | Content::None => v,
                _ => Content::from("[varies]"),
            }),
        );
    }
    s
}

/// `insta::assert_json_snapshot!` under [`settings`]: `assert_json_snap!("name", value)`.
/// New or changed snapshots fail the test; with `CI=true` insta writes nothing.
#[macro_export]
macro_rules! assert_json_snap {
    ($name:expr, $value:expr) => {{
        let value = &$value;
        $crate::snapshot::settings().bind(|| {
            $crate::insta::assert_json_snapshot!($name, value);
        });
    }};
}
