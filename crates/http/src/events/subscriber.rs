use std::time::Duration;

use futures::StreamExt;
use till_db::outbox;

use super::{from_wire, Event, CHANNEL};
use crate::state::AppState;

/// Starts the hub at the newest published event, then (with Redis) keeps a subscription open,
/// catching up from the outbox after every (re)subscribe so an outage loses nothing.
pub async fn run_subscriber(state: AppState) {
    let mut shutdown = state.hub.shutdown_signal();
    let mut backoff = Duration::from_millis(100);
    while state.hub.last_seq() < 0 {
        match outbox::last_seq(&state.db.write).await {
            Ok(seq) => state.hub.init_seq(seq),
            Err(_) => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
    if !state.store.is_redis() {
        return; // the publisher dispatches to the hub directly
    }
    loop {
        match state.store.subscribe(CHANNEL).await {
            Ok(stream) => {
                backoff = Duration::from_millis(100);
                catch_up(&state).await;
                let mut stream = std::pin::pin!(stream);
                loop {
                    tokio::select! {
                        msg = stream.next() => match msg {
                            Some(bytes) => {
                                if let Some(ev) = from_wire(&bytes) {
                                    state.hub.dispatch(ev);
                                }
                            }
                            None => break,
                        },
                        _ = shutdown.changed() => return,
                    }
                }
                tracing::warn!("event subscription lost; resubscribing");
            }
            Err(e) => tracing::warn!(error = %e, "event subscription failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn catch_up(state: &AppState) {
    loop {
        match outbox::after(&state.db.write, state.hub.last_seq(), 1000).await {
            Ok(rows) if rows.is_empty() => return,
            Ok(rows) => {
                for r in &rows {
                    state.hub.dispatch(Event::from_row(r));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "event catch-up failed");
                return;
            }
        }
    }
}
