//! Extractors that turn requests into typed inputs, answering in our error shape.

mod auth;
pub mod idempotency;
mod if_match;
mod json;
mod meta;
mod pagination;

pub use auth::{
    Admin, AnyUser, Authed, CashierPlus, Credentials, ManagerOrStaff, ManagerPlus, MaybeUser,
    Principal, RolePolicy, StaffSide,
};
pub use idempotency::{IdempotencyKey, Idempotent, MaybeIdempotent};
pub use if_match::IfMatch;
pub use json::{parse as parse_json, Json};
pub use meta::RequestMeta;
pub use pagination::{check_query_text, CursorKey, PageQuery, Query};
