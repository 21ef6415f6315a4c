//! Keeping the catalog cache (`App::catalog`, a two-tier `TieredCache`) true to the database.
//!
//! Every catalog or stock write invalidates after its commit; every instance then drops its
//! copies within milliseconds (Redis pub/sub), at most 1 s if a message is lost. Stock moved by
//! sales is coalesced (see [`App::invalidate_catalog_soon`]). How reads use the cache is the
//! HTTP layer's business (it caches whole response bodies).

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::App;

/// Longest a coalesced stock invalidation waits.
pub const STOCK_REFRESH: Duration = Duration::from_millis(250);

impl App {
    /// Drops every cached catalog answer on every instance. Call after a catalog or stock write
    /// commits. A failure is logged, not returned: the write has happened, and local copies
    /// expire within a second anyway.
    pub async fn invalidate_catalog(&self) {
        if let Err(e) = self.catalog.invalidate().await {
            tracing::warn!(error = %e, "catalog cache invalidation failed");
        }
    }

    /// Stock moved by a sale, cancel or return: invalidate within [`STOCK_REFRESH`] rather than
    /// at once, so a busy checkout invalidates a few times a second instead of once per order
    /// and the catalog cache keeps its hit rate under load; stock shown in listings is still
    /// at most 1 s old. Needs [`run_stock_refresher`] running in this process.
    pub fn invalidate_catalog_soon(&self) {
        self.catalog_stale.store(true, Ordering::Release);
    }
}

/// Runs the coalesced invalidations requested by [`App::invalidate_catalog_soon`] until `stop`
/// turns true (or its sender goes away).
pub async fn run_stock_refresher(app: App, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(STOCK_REFRESH) => {}
            r = stop.changed() => if r.is_err() || *stop.borrow() { return },
        }
        if app.catalog_stale.swap(false, Ordering::AcqRel) {
            app.invalidate_catalog().await;
        }
    }
}
