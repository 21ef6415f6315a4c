use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch, Notify};
use uuid::Uuid;

use super::Event;

/// Buffered events per instance; a connection further behind than this is told to resync.
const BUFFER: usize = 4096;

/// The per-instance fan-out point.
pub struct Hub {
    tx: broadcast::Sender<Arc<Event>>,
    /// Highest `seq` dispatched; events at or below it are duplicates.
    last_seq: AtomicI64,
    /// Wakes the publisher right after a commit that wrote events.
    kick: Notify,
    connections: AtomicUsize,
    per_user: Mutex<HashMap<Uuid, usize>>,
    /// Flipped on shutdown: connections send a close frame and end.
    shutdown: watch::Sender<bool>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            tx: broadcast::channel(BUFFER).0,
            last_seq: AtomicI64::new(-1),
            kick: Notify::new(),
            connections: AtomicUsize::new(0),
            per_user: Mutex::new(HashMap::new()),
            shutdown: watch::channel(false).0,
        }
    }
}

impl Hub {
    /// Hands an event to every local connection, once.
    pub fn dispatch(&self, ev: Event) {
        if self.last_seq.fetch_max(ev.seq, Ordering::AcqRel) >= ev.seq {
            return;
        }
        let _ = self.tx.send(Arc::new(ev));
    }

    pub fn last_seq(&self) -> i64 {
        self.last_seq.load(Ordering::Acquire)
    }

    /// Sets the starting point once (at start-up, from the database).
    pub fn init_seq(&self, seq: i64) {
        let _ = self
            .last_seq
            .compare_exchange(-1, seq, Ordering::AcqRel, Ordering::Acquire);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Call after committing a transaction that wrote outbox rows.
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    pub(super) async fn kicked(&self) {
        self.kick.notified().await
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn begin_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Reserves a connection slot; `Err(true)` when the instance is full, `Err(false)` when
    /// this user already has `per_user` connections here.
    pub fn try_admit(&self, user: Uuid, max_total: usize, per_user: usize) -> Result<(), bool> {
        let mut map = self.per_user.lock().unwrap_or_else(|e| e.into_inner());
        if self.connections.load(Ordering::Relaxed) >= max_total {
            return Err(true);
        }
        let n = map.entry(user).or_default();
        if *n >= per_user {
            return Err(false);
        }
        *n += 1;
        self.connections.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub fn release(&self, user: Uuid) {
        let mut map = self.per_user.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&user);
            }
        }
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicates_and_stale_events_are_dropped() {
        let hub = Hub::default();
        hub.init_seq(10);
        let mut rx = hub.subscribe();
        hub.dispatch(Event::from_parts(9, &json!({})));
        hub.dispatch(Event::from_parts(11, &json!({})));
        hub.dispatch(Event::from_parts(11, &json!({})));
        assert_eq!(rx.try_recv().unwrap().seq, 11);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn admission_limits() {
        let hub = Hub::default();
        let u = Uuid::now_v7();
        assert!(hub.try_admit(u, 3, 2).is_ok());
        assert!(hub.try_admit(u, 3, 2).is_ok());
        assert_eq!(hub.try_admit(u, 3, 2), Err(false));
        assert!(hub.try_admit(Uuid::now_v7(), 3, 2).is_ok());
        assert_eq!(hub.try_admit(Uuid::now_v7(), 3, 2), Err(true));
        hub.release(u);
        assert!(hub.try_admit(u, 4, 2).is_ok());
    }
}
