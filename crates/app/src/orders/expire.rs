//! The worker's job: cancel online orders left pending, and not fully paid, for too long.
//!
//! An expired order with money on it (`paid − refunded > 0`, e.g. half paid by card) is not
//! cancelled: a cancelled order must not silently keep a customer's money, and whether to
//! refund and cancel or to wait for the rest is a manager's call (as at any till). The worker
//! skips such orders and logs them (a warning naming each order) on every run until a manager
//! has dealt with them; everything else past `ORDER_UNPAID_TTL_MINUTES` is cancelled and its
//! stock returned.

use till_db::orders;
use till_db::stock::{self, MovementContext};
use till_db::{DbError, PgConnection};
use till_domain::{MovementReason, OrderStatus};
use uuid::Uuid;

use super::record_event;
use crate::App;

/// Cancels `online` orders still `pending` and not fully paid after `ORDER_UNPAID_TTL_MINUTES`,
/// returning their stock; those with money on them are reported instead (see the module
/// comment). Each order is its own transaction that re-checks the order under lock, so a rerun
/// (after a crash) or a payment arriving meanwhile never cancels twice or cancels an order
/// holding money. Returns how many were cancelled.
pub async fn cancel_expired_unpaid(app: &App) -> Result<usize, DbError> {
    let ttl = app.config.shop.order_unpaid_ttl.as_secs() as i64;
    let mut cancelled = 0;
    loop {
        let ids = orders::expired_open(&app.db.write, ttl, 100).await?;
        if ids.is_empty() {
            break;
        }
        let mut progressed = false;
        for id in ids {
            let mut tx = app.db.write.begin().await?;
            let head = orders::lock(&mut tx, id).await?;
            let still_open = head.status()? == OrderStatus::Pending
                && head.paid_cents < head.total_cents
                && head.paid_cents == head.refunded_cents;
            if !still_open {
                continue;
            }
            return_stock(&mut tx, id, None).await?;
            orders::set_status(&mut tx, id, OrderStatus::Cancelled, None).await?;
            let order = orders::get(&mut tx, id).await?;
            record_event(&mut tx, "order.cancelled", &order).await?;
            tx.commit().await?;
            app.after_commit(false);
            cancelled += 1;
            progressed = true;
        }
        if !progressed {
            break;
        }
    }
    if cancelled > 0 {
        app.invalidate_catalog().await;
    }
    let kept = orders::expired_with_money(&app.db.write, ttl, 100).await?;
    if !kept.is_empty() {
        tracing::warn!(
            orders = ?kept,
            "expired online orders hold money and were not cancelled; a manager must refund them (then cancel) or take the rest"
        );
    }
    Ok(cancelled)
}

/// Puts back, per tracked product, what the order sold minus what already came back.
pub(super) async fn return_stock(
    conn: &mut PgConnection,
    order_id: Uuid,
    by: Option<Uuid>,
) -> Result<(), DbError> {
    let back: Vec<(Uuid, i64)> = orders::returnable(conn, order_id)
        .await?
        .into_iter()
        .filter(|r| r.track_stock && r.sold > r.returned)
        .map(|r| (r.product_id, r.sold - r.returned))
        .collect();
    let ctx = MovementContext {
        reason: MovementReason::Cancel,
        order_id: Some(order_id),
        user_id: by,
    };
    stock::put(conn, &back, ctx).await?;
    Ok(())
}
