//! Till's shared, cross-instance state: sessions, rate-limit counters, cached bytes and events.
//!
//! Every facility has two homes behind one type: Redis (when `REDIS_URL` is set, so any instance
//! can serve any request) and an in-process fallback used in single-instance mode. Callers never
//! branch on which one is in use.

mod bus;
mod fallback;
mod leases;
mod local;
mod store;
mod tiered;

pub use store::{Store, StoreError};
pub use tiered::{Source, TieredCache, TieredOptions};

/// Result of counting one hit against a fixed-window rate-limit bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    /// Hits in the current window, this one included.
    pub count: u64,
    /// Seconds until the window resets.
    pub reset_secs: u64,
    /// The same, in milliseconds.
    pub reset_ms: u64,
}
