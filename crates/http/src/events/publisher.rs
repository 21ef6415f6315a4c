use std::time::Duration;

use till_db::{outbox, DbError};

use super::{wire, Event, CHANNEL};
use crate::state::AppState;

/// Events claimed per round.
const BATCH: i64 = 500;
/// Safety net: rows written by other processes (the worker) or left by a failed round.
const POLL: Duration = Duration::from_millis(250);
/// Shortest time between two publishing rounds of this instance (adds at most this much delay).
const MIN_ROUND: Duration = Duration::from_millis(5);

enum Round {
    Published(usize),
    /// Another instance holds the publisher lock.
    Busy,
}

/// Publishes outbox rows until shutdown.
pub async fn run_publisher(state: AppState) {
    let mut shutdown = state.hub.shutdown_signal();
    loop {
        tokio::select! {
            _ = state.outbox_written.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => return,
        }
        let started = tokio::time::Instant::now();
        let mut busy_retries = 0;
        loop {
            match round(&state).await {
                Ok(Round::Published(n)) if n as i64 == BATCH => continue,
                Ok(Round::Published(_)) => break,
                // The active publisher may already be past our rows; look again shortly.
                Ok(Round::Busy) if busy_retries < 5 => {
                    busy_retries += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Ok(Round::Busy) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "event publish failed; will retry");
                    break;
                }
            }
        }
        // Under a burst of orders every commit kicks; rounds at most every MIN_ROUND gather
        // many events per publisher transaction instead of running one transaction per order.
        tokio::time::sleep_until(started + MIN_ROUND).await;
    }
}

async fn round(state: &AppState) -> Result<Round, String> {
    let mut tx = state
        .db
        .write
        .begin()
        .await
        .map_err(|e| DbError::from(e).to_string())?;
    let Some(rows) = outbox::claim(&mut tx, BATCH)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(Round::Busy);
    };
    if rows.is_empty() {
        return Ok(Round::Published(0));
    }
    if state.store.is_redis() {
        let msgs: Vec<String> = rows.iter().map(wire).collect();
        // On failure the transaction rolls back and the rows stay unpublished.
        state
            .store
            .publish_all(CHANNEL, &msgs)
            .await
            .map_err(|e| e.to_string())?;
    }
    tx.commit()
        .await
        .map_err(|e| DbError::from(e).to_string())?;
    if !state.store.is_redis() {
        for r in &rows {
            state.hub.dispatch(Event::from_row(r));
        }
    }
    Ok(Round::Published(rows.len()))
}
