//! The test harness every integration test in the workspace shares: a fresh PostgreSQL database
//! per test (cloned from a migrated template), a Redis namespace per test, the real application
//! served on 127.0.0.1:0, typed clients that carry a caller's credentials, request builders for
//! products and orders, and snapshot settings.

pub mod app;
pub mod builders;
pub mod client;
pub mod db;
pub mod fixtures;
pub mod proxy;
pub mod redis;
pub mod snapshot;

pub use insta;

pub use app::*;
pub use builders::*;
pub use client::*;
pub use db::*;
pub use fixtures::*;
pub use proxy::{reroute, target_of, TcpProxy};
pub use redis::*;
