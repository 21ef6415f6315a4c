use std::collections::HashMap;
use std::io::IoSlice;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};

use slab::Slab;
use tokio::sync::watch;
use uuid::Uuid;

use super::link::Link;
use super::{Audience, Event};

/// The per-instance fan-out point. Staff-side connections are spread over a few shards, each
/// served by its own thread that writes every event to its connections' sockets (so the work of
/// one event is split across the cores, and the async runtime is never held up by it). Each
/// customer's connections are listed under that customer and written to directly: an event
/// reaches the staff and the one customer it is about, never every connection on the instance.
pub struct Hub {
    shards: Vec<Shard>,
    next_shard: AtomicUsize,
    customers: Mutex<HashMap<Uuid, Vec<Arc<Link>>>>,
    /// Highest `seq` dispatched; events at or below it are duplicates.
    last_seq: AtomicI64,
    connections: AtomicUsize,
    per_user: Mutex<HashMap<Uuid, usize>>,
    /// Flipped on shutdown: connections send a close frame and end.
    shutdown: watch::Sender<bool>,
}

struct Shard {
    members: Arc<Mutex<Members>>,
    jobs: mpsc::Sender<Job>,
    /// How many connections the shard has: an instance with no boards open (most checkouts)
    /// does not wake its fan-out threads for every order. Sequentially consistent with
    /// `last_seq`: a connection that joins either is counted by a dispatch or sees its `seq` in
    /// `last_seq` (and gets the event through its welcome).
    live: AtomicUsize,
}

#[derive(Default)]
struct Members {
    links: Slab<Arc<Link>>,
    /// Bumped by every join and leave, so the thread knows to refresh its copy of `links`.
    version: u64,
}

enum Job {
    Event(Arc<Event>),
    /// A connection left: drop the copy of the list (it holds the connection's socket open).
    Forget,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Events a shard's thread writes to each connection at once, at most.
const MAX_BATCH: usize = 64;

/// A shard's thread: for each event, one non-blocking write per connection (see `Link::events`);
/// events that queued up meanwhile go out together, one write per connection for the lot, so a
/// burst (or a busy machine) costs fewer system calls instead of building a backlog.
/// It works from a copy of the member list, taken again after any change (checked under the
/// lock for each batch, so a connection that joined before an event was dispatched gets it), and
/// joining or leaving never waits for a pass over thousands of sockets.
fn fan_out(members: Arc<Mutex<Members>>, jobs: mpsc::Receiver<Job>) {
    let mut copy: Vec<Arc<Link>> = Vec::new();
    let mut seen = None;
    let mut batch: Vec<Arc<Event>> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = jobs.recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Forget => {
                    copy.clear();
                    seen = None;
                }
                Job::Event(ev) => batch.push(ev),
            }
            if batch.len() < MAX_BATCH {
                next = jobs.try_recv().ok();
            }
        }
        if batch.is_empty() {
            continue;
        }
        {
            let m = lock(&members);
            if seen != Some(m.version) {
                copy.clear();
                copy.extend(m.links.iter().map(|(_, l)| l.clone()));
                seen = Some(m.version);
            }
        }
        let wires: Vec<IoSlice<'_>> = batch.iter().map(|e| IoSlice::new(e.wire())).collect();
        for link in &copy {
            link.events(&batch, &wires);
        }
        drop(wires);
        batch.clear();
    }
}

impl Default for Hub {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        let shards = (0..threads)
            .map(|i| {
                let members = Arc::new(Mutex::new(Members::default()));
                let (jobs, rx) = mpsc::channel();
                let m = members.clone();
                std::thread::Builder::new()
                    .name(format!("till-fanout-{i}"))
                    .spawn(move || fan_out(m, rx))
                    .expect("start-up: spawning a fan-out thread");
                Shard {
                    members,
                    jobs,
                    live: AtomicUsize::new(0),
                }
            })
            .collect();
        Hub {
            shards,
            next_shard: AtomicUsize::new(0),
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
        if self.last_seq.fetch_max(ev.seq, Ordering::SeqCst) >= ev.seq {
            return;
        }
        let ev = Arc::new(ev);
        if let Audience::StaffAndCustomer(Some(c)) = ev.audience {
            for link in lock(&self.customers).get(&c).into_iter().flatten() {
                link.event(&ev);
            }
        }
        for shard in &self.shards {
            if shard.live.load(Ordering::SeqCst) > 0 {
                let _ = shard.jobs.send(Job::Event(ev.clone()));
            }
        }
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

    /// Starts delivering events to `link`: every event for staff-side roles, a customer's own
    /// events for a customer, nothing for a customer login without a customer record. Read
    /// [`Hub::last_seq`] after joining: every event above it reaches the link.
    pub fn join(
        &self,
        link: &Arc<Link>,
        staff_side: bool,
        customer: Option<Uuid>,
    ) -> Membership<'_> {
        let place = match (staff_side, customer) {
            (true, _) => {
                let shard = self.next_shard.fetch_add(1, Ordering::Relaxed) % self.shards.len();
                let mut m = lock(&self.shards[shard].members);
                let key = m.links.insert(link.clone());
                m.version += 1;
                self.shards[shard].live.fetch_add(1, Ordering::SeqCst);
                Place::Staff { shard, key }
            }
            (false, Some(c)) => {
                lock(&self.customers)
                    .entry(c)
                    .or_default()
                    .push(link.clone());
                Place::Customer(c)
            }
            (false, None) => Place::Nowhere,
        };
        Membership {
            hub: self,
            link: link.clone(),
            place,
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

/// A connection's place in the hub; dropping it stops delivery and forgets the connection (and
/// a customer's entry, with their last connection).
pub struct Membership<'h> {
    hub: &'h Hub,
    link: Arc<Link>,
    place: Place,
}

enum Place {
    Staff { shard: usize, key: usize },
    Customer(Uuid),
    Nowhere,
}

impl Drop for Membership<'_> {
    fn drop(&mut self) {
        self.link.kill();
        match self.place {
            Place::Staff { shard, key } => {
                let shard = &self.hub.shards[shard];
                {
                    let mut m = lock(&shard.members);
                    m.links.try_remove(key);
                    m.version += 1;
                    shard.live.fetch_sub(1, Ordering::SeqCst);
                }
                let _ = shard.jobs.send(Job::Forget);
            }
            Place::Customer(c) => {
                let mut map = lock(&self.hub.customers);
                if let Some(links) = map.get_mut(&c) {
                    links.retain(|l| !Arc::ptr_eq(l, &self.link));
                    if links.is_empty() {
                        map.remove(&c);
                    }
                }
            }
            Place::Nowhere => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A link over a real loopback socket, joined to `hub`, and the client's end.
    async fn connected<'h>(
        hub: &'h Hub,
        listener: &TcpListener,
        staff_side: bool,
        customer: Option<Uuid>,
    ) -> (Membership<'h>, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let link = Arc::new(Link::new(server));
        let member = hub.join(&link, staff_side, customer);
        link.release(hub.last_seq());
        (member, client)
    }

    /// The `seq` of every text frame the client gets within a short wait.
    async fn seqs(client: &mut TcpStream) -> Vec<i64> {
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(300), client.read(&mut chunk)).await
        {
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&chunk[..n]);
        }
        let mut out = Vec::new();
        let mut rest = &bytes[..];
        while rest.len() >= 2 {
            assert_eq!(rest[0], 0x81, "a final, unmasked text frame");
            let len = usize::from(rest[1]);
            assert!(len < 126, "short test frames");
            let v: serde_json::Value = serde_json::from_slice(&rest[2..2 + len]).unwrap();
            out.push(v["seq"].as_i64().unwrap());
            rest = &rest[2 + len..];
        }
        assert!(rest.is_empty(), "no partial frame");
        out
    }

    fn order(seq: i64, owner: Uuid) -> Event {
        Event::from_parts(seq, &json!({"type": "order.created", "customer_id": owner}))
    }

    #[tokio::test]
    async fn duplicates_and_stale_events_are_dropped() {
        let hub = Hub::default();
        hub.init_seq(10);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (_m, mut client) = connected(&hub, &listener, true, None).await;
        hub.dispatch(Event::from_parts(9, &json!({})));
        hub.dispatch(Event::from_parts(11, &json!({})));
        hub.dispatch(Event::from_parts(11, &json!({})));
        assert_eq!(seqs(&mut client).await, [11]);
    }

    #[tokio::test]
    async fn a_burst_reaches_every_connection_complete_and_in_order() {
        let hub = Hub::default();
        hub.init_seq(0);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut staff = Vec::new();
        for _ in 0..5 {
            staff.push(connected(&hub, &listener, true, None).await);
        }
        // Dispatched faster than written one by one: the shards write them in batches.
        for seq in 1..=500 {
            hub.dispatch(Event::from_parts(seq, &json!({})));
        }
        for (_, client) in &mut staff {
            assert_eq!(seqs(client).await, (1..=500).collect::<Vec<_>>());
        }
    }

    #[tokio::test]
    async fn customers_get_only_their_own_events_and_leaving_forgets_them() {
        let hub = Hub::default();
        hub.init_seq(0);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        // More staff connections than shards, so every shard has some.
        let mut staff = Vec::new();
        for _ in 0..6 {
            staff.push(connected(&hub, &listener, true, None).await);
        }
        let (a1, mut a1c) = connected(&hub, &listener, false, Some(alice)).await;
        let (a2, mut a2c) = connected(&hub, &listener, false, Some(alice)).await;
        let (b, mut bc) = connected(&hub, &listener, false, Some(bob)).await;
        let (_nobody, mut nc) = connected(&hub, &listener, false, None).await;
        hub.dispatch(order(1, alice));
        hub.dispatch(Event::from_parts(
            2,
            &json!({"type": "stock.low", "audience": "staff"}),
        ));
        hub.dispatch(order(3, bob));
        for (_, client) in &mut staff {
            assert_eq!(seqs(client).await, [1, 2, 3]);
        }
        assert_eq!(seqs(&mut a1c).await, [1]);
        assert_eq!(seqs(&mut a2c).await, [1]);
        assert_eq!(seqs(&mut bc).await, [3]);
        assert!(seqs(&mut nc).await.is_empty());

        drop(a1);
        assert!(lock(&hub.customers).contains_key(&alice));
        drop((a2, b));
        assert!(lock(&hub.customers).is_empty());
        // A staff connection that left gets nothing more, and its socket is closed.
        let (gone, mut gone_client) = staff.pop().unwrap();
        drop(gone);
        hub.dispatch(order(4, alice));
        assert_eq!(seqs(&mut staff[0].1).await, [4]);
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), gone_client.read(&mut byte));
        assert_eq!(read.await.expect("closed in time").unwrap(), 0);
    }

    #[tokio::test]
    async fn events_during_the_welcome_wait_and_follow_in_order() {
        let hub = Hub::default();
        hub.init_seq(5);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let link = Arc::new(Link::new(server));
        let _m = hub.join(&link, true, None);
        hub.dispatch(Event::from_parts(6, &json!({})));
        hub.dispatch(Event::from_parts(7, &json!({})));
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The connection replays up to 6 itself (welcome and catch-up) before releasing.
        link.send(Event::from_parts(6, &json!({})).wire());
        link.release(6);
        let mut client = client;
        assert_eq!(seqs(&mut client).await, [6, 7]);
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
