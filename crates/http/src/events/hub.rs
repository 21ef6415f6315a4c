//! The per-instance fan-out point: one broadcast channel carrying every event to the staff-side
//! connections, and one channel per customer with connections here, carrying that customer's
//! events only. An event wakes the staff and the one customer it is about, never every connection
//! on the instance (with 100 boards and 9,900 customers connected, an order wakes ~100, not 10,000).
//! The hub also owns the instance's connection limits, the publisher's wake-up and the shutdown
//! signal the connections watch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use uuid::Uuid;

use super::{Audience, Event};

/// Events held for the staff-side connections. A connection this far behind (its socket full, its
/// write buffer full) is told to resync. Larger than any burst the publisher or a catch-up hands
/// over at once (500 and 1,000 events), so a reading client never lags behind a burst; the ring
/// costs ~40 bytes a slot, once per instance.
const STAFF_BUFFER: usize = 2048;
/// Events held per customer: they see only their own orders', a few at a time. Kept small because
/// there is one ring per customer with a connection here (thousands of them).
const CUSTOMER_BUFFER: usize = 32;

type Sender = broadcast::Sender<Arc<Event>>;

pub struct Hub {
    staff: Sender,
    customers: Mutex<HashMap<Uuid, Sender>>,
    /// Highest `seq` dispatched; events at or below it are duplicates.
    last_seq: AtomicI64,
    connections: AtomicUsize,
    per_user: Mutex<HashMap<Uuid, usize>>,
    /// Flipped on shutdown: connections send a close frame and end.
    shutdown: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            staff: broadcast::channel(STAFF_BUFFER).0,
            customers: Mutex::new(HashMap::new()),
            last_seq: AtomicI64::new(-1),
            connections: AtomicUsize::new(0),
            per_user: Mutex::new(HashMap::new()),
            shutdown: watch::channel(false).0,
        }
    }
}

impl Hub {
    /// Hands an event to every local connection that may see it, once.
    pub fn dispatch(&self, ev: Event) {
        // SeqCst with `subscribe` + `last_seq` (see `Feed`): an event either is in a new feed or
        // is covered by the `last_seq` that feed's connection reads after subscribing.
        if self.last_seq.fetch_max(ev.seq, Ordering::SeqCst) >= ev.seq {
            return;
        }
        if ev.audience == Audience::Nobody {
            return;
        }
        let ev = Arc::new(ev);
        if let Audience::StaffAndCustomer(Some(c)) = ev.audience {
            if let Some(tx) = lock(&self.customers).get(&c) {
                let _ = tx.send(ev.clone());
            }
        }
        // No staff connection here: `send` returns at once without touching the ring.
        let _ = self.staff.send(ev);
    }

    pub fn last_seq(&self) -> i64 {
        self.last_seq.load(Ordering::SeqCst)
    }

    /// Sets the starting point once (at start-up, from the database).
    pub fn init_seq(&self, seq: i64) {
        let _ = self
            .last_seq
            .compare_exchange(-1, seq, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The feed of a connection: every event for staff-side roles, a customer's own events for a
    /// customer, nothing for a customer login without a customer record. Read
    /// [`Hub::last_seq`] after subscribing: every event above it comes through the feed.
    pub fn subscribe(&self, staff_side: bool, customer: Option<Uuid>) -> Feed<'_> {
        let (rx, customer) = match (staff_side, customer) {
            (true, _) => (Some(self.staff.subscribe()), None),
            (false, Some(c)) => {
                let rx = lock(&self.customers)
                    .entry(c)
                    .or_insert_with(|| broadcast::channel(CUSTOMER_BUFFER).0)
                    .subscribe();
                (Some(rx), Some(c))
            }
            (false, None) => (None, None),
        };
        Feed {
            hub: self,
            rx,
            customer,
        }
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
        let mut map = lock(&self.per_user);
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
        let mut map = lock(&self.per_user);
        if let Some(n) = map.get_mut(&user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&user);
            }
        }
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a [`Feed`] has next.
#[derive(Debug)]
pub enum Next {
    Event(Arc<Event>),
    /// Events were dropped for this connection (it fell behind): the feed now continues from the
    /// newest event; the connection owes its client a `resync`.
    Lagged,
}

/// A connection's events. Dropping a customer's last feed forgets that customer's channel.
pub struct Feed<'h> {
    hub: &'h Hub,
    /// `None`: a connection that never gets events.
    rx: Option<broadcast::Receiver<Arc<Event>>>,
    customer: Option<Uuid>,
}

impl Feed<'_> {
    /// Waits for the next event (forever, for a feed without events).
    pub async fn recv(&mut self) -> Next {
        let Some(rx) = self.rx.as_mut() else {
            return std::future::pending().await;
        };
        match rx.recv().await {
            Ok(ev) => Next::Event(ev),
            Err(RecvError::Lagged(_)) => self.lagged(),
            // The sender lives as long as the hub, or as this customer's last feed.
            Err(RecvError::Closed) => std::future::pending().await,
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Next> {
        use broadcast::error::TryRecvError;
        match self.rx.as_mut()?.try_recv() {
            Ok(ev) => Some(Next::Event(ev)),
            Err(TryRecvError::Lagged(_)) => Some(self.lagged()),
            Err(TryRecvError::Empty | TryRecvError::Closed) => None,
        }
    }

    /// Skips what is left of the backlog: the client reloads its state anyway, and whatever is
    /// still queued is as stale as what was dropped.
    fn lagged(&mut self) -> Next {
        if let Some(rx) = self.rx.as_mut() {
            *rx = rx.resubscribe();
        }
        Next::Lagged
    }
}

impl Drop for Feed<'_> {
    fn drop(&mut self) {
        let Some(c) = self.customer else { return };
        let mut map = lock(&self.hub.customers);
        // Under the map's lock, so no feed subscribes in between: if ours was the last receiver,
        // the channel goes.
        drop(self.rx.take());
        if map.get(&c).is_some_and(|tx| tx.receiver_count() == 0) {
            map.remove(&c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seqs(feed: &mut Feed<'_>) -> Vec<i64> {
        std::iter::from_fn(|| match feed.try_recv()? {
            Next::Event(e) => Some(e.seq),
            Next::Lagged => Some(-1),
        })
        .collect()
    }

    fn order(seq: i64, owner: Uuid) -> Event {
        Event::from_parts(seq, &json!({"type": "order.created", "customer_id": owner}))
    }

    #[test]
    fn duplicates_and_stale_events_are_dropped() {
        let hub = Hub::default();
        hub.init_seq(10);
        let mut feed = hub.subscribe(true, None);
        hub.dispatch(Event::from_parts(9, &json!({})));
        hub.dispatch(Event::from_parts(11, &json!({})));
        hub.dispatch(Event::from_parts(11, &json!({})));
        assert_eq!(seqs(&mut feed), [11]);
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
        hub.dispatch(order(1, alice));
        hub.dispatch(Event::from_parts(
            2,
            &json!({"type": "stock.low", "audience": "staff"}),
        ));
        hub.dispatch(order(3, bob));
        assert_eq!(seqs(&mut staff), [1, 2, 3]);
        assert_eq!(seqs(&mut a1), [1]);
        assert_eq!(seqs(&mut a2), [1]);
        assert_eq!(seqs(&mut b), [3]);
        assert!(seqs(&mut nobody).is_empty());

        drop(a1);
        assert!(lock(&hub.customers).contains_key(&alice));
        drop((a2, b));
        assert!(lock(&hub.customers).is_empty());
    }

    #[test]
    fn a_feed_that_falls_behind_lags_once_then_continues_from_the_newest_event() {
        let hub = Hub::default();
        hub.init_seq(0);
        let owner = Uuid::now_v7();
        let mut customer = hub.subscribe(false, Some(owner));
        let n = CUSTOMER_BUFFER as i64 + 10;
        for seq in 1..=n {
            hub.dispatch(order(seq, owner));
        }
        assert!(matches!(customer.try_recv(), Some(Next::Lagged)));
        assert!(customer.try_recv().is_none(), "the backlog is skipped");
        hub.dispatch(order(n + 1, owner));
        assert_eq!(seqs(&mut customer), [n + 1]);
        // Still the customer's only receiver: leaving forgets the channel.
        drop(customer);
        assert!(lock(&hub.customers).is_empty());
    }

    #[tokio::test]
    async fn a_feed_without_events_waits() {
        let hub = Hub::default();
        let mut nobody = hub.subscribe(false, None);
        hub.dispatch(Event::from_parts(1, &json!({})));
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), nobody.recv()).await;
        assert!(waited.is_err());
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
