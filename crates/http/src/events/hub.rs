use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch, Notify};
use uuid::Uuid;

use super::{Audience, Event};

/// Buffered events per instance; a connection further behind than this is told to resync.
const BUFFER: usize = 4096;
/// Buffered events per customer (they see only their own orders').
const CUSTOMER_BUFFER: usize = 256;

type Sender = broadcast::Sender<Arc<Event>>;

/// The per-instance fan-out point. Staff-side connections share one channel that carries every
/// event; each customer's connections share a channel of that customer's events only, so an event
/// wakes the staff and the one customer it is about, not every connection on the instance (with
/// 9,900 customers and 100 boards connected, an order used to wake all 10,000).
pub struct Hub {
    staff: Sender,
    customers: Mutex<HashMap<Uuid, Sender>>,
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
            staff: broadcast::channel(BUFFER).0,
            customers: Mutex::new(HashMap::new()),
            last_seq: AtomicI64::new(-1),
            kick: Notify::new(),
            connections: AtomicUsize::new(0),
            per_user: Mutex::new(HashMap::new()),
            shutdown: watch::channel(false).0,
        }
    }
}

impl Hub {
    /// Hands an event to every local connection that may see it, once.
    pub fn dispatch(&self, ev: Event) {
        if self.last_seq.fetch_max(ev.seq, Ordering::AcqRel) >= ev.seq {
            return;
        }
        let ev = Arc::new(ev);
        if let Audience::StaffAndCustomer(Some(c)) = ev.audience {
            if let Some(tx) = self.customer_channels().get(&c) {
                let _ = tx.send(ev.clone());
            }
        }
        let _ = self.staff.send(ev);
    }

    fn customer_channels(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Sender>> {
        self.customers.lock().unwrap_or_else(|e| e.into_inner())
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

    /// The feed of a connection: every event for staff-side roles, a customer's own events for
    /// a customer, nothing for a customer login without a customer record.
    pub fn subscribe(&self, staff_side: bool, customer_id: Option<Uuid>) -> Feed<'_> {
        let (rx, keep) = match (staff_side, customer_id) {
            (true, _) => (self.staff.subscribe(), None),
            (false, Some(c)) => {
                let mut map = self.customer_channels();
                let tx = map
                    .entry(c)
                    .or_insert_with(|| broadcast::channel(CUSTOMER_BUFFER).0);
                (tx.subscribe(), None)
            }
            (false, None) => {
                let (tx, rx) = broadcast::channel(1);
                (rx, Some(tx))
            }
        };
        Feed {
            rx,
            hub: self,
            customer: customer_id.filter(|_| !staff_side),
            _keep_open: keep,
        }
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

/// A connection's events. Dropping the last feed of a customer forgets that customer's channel.
pub struct Feed<'h> {
    pub rx: broadcast::Receiver<Arc<Event>>,
    hub: &'h Hub,
    customer: Option<Uuid>,
    /// For a feed that never gets events: its sender, so `recv` waits instead of ending.
    _keep_open: Option<Sender>,
}

impl Drop for Feed<'_> {
    fn drop(&mut self) {
        let Some(c) = self.customer else { return };
        let mut map = self.hub.customer_channels();
        // Under the map's lock, so no new feed can subscribe in between: ours is the last one.
        if map.get(&c).is_some_and(|tx| tx.receiver_count() <= 1) {
            map.remove(&c);
        }
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
        let mut feed = hub.subscribe(true, None);
        let rx = &mut feed.rx;
        hub.dispatch(Event::from_parts(9, &json!({})));
        hub.dispatch(Event::from_parts(11, &json!({})));
        hub.dispatch(Event::from_parts(11, &json!({})));
        assert_eq!(rx.try_recv().unwrap().seq, 11);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn customers_get_only_their_own_events_and_idle_channels_are_dropped() {
        let hub = Hub::default();
        hub.init_seq(0);
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let mut staff = hub.subscribe(true, None);
        let mut a1 = hub.subscribe(false, Some(alice));
        let mut a2 = hub.subscribe(false, Some(alice));
        let mut b = hub.subscribe(false, Some(bob));
        let mut nobody = hub.subscribe(false, None);
        let order = |seq: i64, owner: Uuid| {
            Event::from_parts(seq, &json!({"type": "order.created", "customer_id": owner}))
        };
        hub.dispatch(order(1, alice));
        hub.dispatch(Event::from_parts(
            2,
            &json!({"type": "stock.low", "audience": "staff"}),
        ));
        hub.dispatch(order(3, bob));
        let seqs = |f: &mut Feed| {
            std::iter::from_fn(|| f.rx.try_recv().ok().map(|e| e.seq)).collect::<Vec<_>>()
        };
        assert_eq!(seqs(&mut staff), [1, 2, 3]);
        assert_eq!(seqs(&mut a1), [1]);
        assert_eq!(seqs(&mut a2), [1]);
        assert_eq!(seqs(&mut b), [3]);
        assert!(seqs(&mut nobody).is_empty());
        assert!(matches!(
            nobody.rx.try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ));
        drop(a1);
        assert!(hub.customer_channels().contains_key(&alice));
        drop(a2);
        drop(b);
        assert!(hub.customer_channels().is_empty());
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
