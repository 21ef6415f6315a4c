//! Webhook delivery, run by `till worker` beside its job loops.
//!
//! - `WEBHOOK_CONCURRENCY` delivery loops each lease one endpoint that is behind, read the
//!   published events after its cursor, POST those it subscribed to side by side, and record
//!   them and move the cursor in one statement. A slow endpoint holds one loop, never the
//!   others; a worker killed mid-batch loses its lease, and the next worker sends the same events
//!   (same id, same body) from the same cursor.
//! - The events come from a feed shared by the loops: each published event is read from
//!   PostgreSQL and its body built once, however many endpoints it goes to.
//! - The same loops retry first attempts that failed, from their delivery rows, with backoff.
//! - A `LISTEN` on the publisher's channel wakes idle loops as soon as events are published;
//!   without it (the listener reconnecting) they poll.
//! - Its bookkeeping (leases, delivery rows, cursors) goes through a pool of its own whose
//!   commits do not wait for their WAL flush. Waiting cost checkout, whose commits queue on the
//!   same flushes, several percent of its speed with five endpoints (the webhook benchmark in
//!   `loadtests/checkout.sh`). What it risks is bounded and already handled: a database crash
//!   can forget the last fraction of a second of it, and those events are then sent again with
//!   the same id and body (deliveries are at least once; receivers dedupe by id).
//! - Targets are re-checked at every delivery ([`crate::webhook_client`]).
//! - The dispatcher runs on a thread of its own with a one-thread runtime (see
//!   [`Dispatcher::spawn`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use futures::StreamExt;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use rand::Rng;
use till_app::config::WebhookConfig;
use till_app::webhooks::{event_body, private_targets_allowed, signature_header};
use till_app::App;
use till_db::outbox::{self, WireEvent};
use till_db::webhooks::{self, Claimed, EndpointRow, Outcome, Sent};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

use crate::webhook_client::{Target, WebhookClient};

/// Published events read after an endpoint's cursor per batch.
const SCAN_BATCH: i64 = 256;
/// Database connections of one worker's delivery loops at most.
const DB_CONNECTIONS: u32 = 4;
/// Requests in flight to one endpoint at most.
const IN_FLIGHT: usize = 64;
/// Retries of one endpoint leased and sent together.
const RETRY_BATCH: i64 = 32;
/// How often an idle loop looks for work when no notification comes.
const POLL: Duration = Duration::from_millis(250);
/// Longest wait between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(6 * 3600);
/// After a batch shorter than [`SCAN_BATCH`] the endpoint is left alone this long, so events
/// published meanwhile go out together. Without it, at checkout speed every few orders cost
/// each endpoint a lease, a read and a record of their own, and checkout lost a third of its
/// speed with deliveries on (0.64 of it paused; 0.75 with this and the changes below, same
/// benchmark); with it a batch carries the events of the last `LINGER`, which the delivery lag
/// pays at most once.
const LINGER: Duration = Duration::from_millis(50);
/// How often one loop asks for due retries (the shortest backoff is far longer).
const RETRY_SCAN: Duration = Duration::from_millis(250);
/// Events kept in the shared feed: a few seconds of checkout at full speed, so an endpoint a
/// little behind the others is still sent from memory (one further back reads its own).
const FEED_CAP: usize = 8192;
/// A feed read this recently is not read again for an endpoint it already has events for;
/// those published since go in that endpoint's next batch.
const FEED_FRESH: Duration = Duration::from_millis(10);

pub struct Dispatcher {
    /// `synchronous_commit = off` (see the module comment); reads go through it too.
    pool: sqlx::PgPool,
    config: WebhookConfig,
    id: String,
    client: WebhookClient,
    wake: Notify,
    feed: Mutex<Feed>,
    /// One loop reads the feed's next events at a time; the others then find them in memory.
    feed_reader: tokio::sync::Mutex<()>,
}

/// An event ready to send: its body built once for every endpoint and every attempt.
struct Prepared {
    seq: i64,
    topic: String,
    created_at: DateTime<Utc>,
    event_id: Uuid,
    id_header: HeaderValue,
    type_header: HeaderValue,
    ping_endpoint: Option<String>,
    body: bytes::Bytes,
}

impl Prepared {
    fn new(e: WireEvent) -> Prepared {
        let body = bytes::Bytes::from(event_body(&e));
        Prepared {
            id_header: HeaderValue::from_str(&e.event_id.to_string())
                .expect("a uuid is a header value"),
            type_header: HeaderValue::from_str(&e.topic)
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            seq: e.seq,
            topic: e.topic,
            created_at: e.created_at,
            event_id: e.event_id,
            ping_endpoint: e.ping_endpoint,
            body,
        }
    }
}

/// The latest published events, consecutive by `seq` (the sequence is gap-free), oldest first.
#[derive(Default)]
struct Feed {
    events: VecDeque<Arc<Prepared>>,
    read_at: Option<Instant>,
}

impl Feed {
    /// Up to `limit` events after `cursor`, if the feed holds the one right after it.
    fn after(&self, cursor: i64, limit: usize) -> Option<Vec<Arc<Prepared>>> {
        let first = self.events.front()?.seq;
        let last = self.events.back()?.seq;
        if cursor + 1 < first || cursor >= last {
            return None;
        }
        let skip = (cursor + 1 - first) as usize;
        Some(self.events.iter().skip(skip).take(limit).cloned().collect())
    }

    fn fresh(&self) -> bool {
        self.read_at.is_some_and(|t| t.elapsed() < FEED_FRESH)
    }

    /// Appends events read after the last one; anything not following on starts the feed
    /// afresh, so it never holds a hole an endpoint's cursor could skip.
    fn extend(&mut self, events: &[Arc<Prepared>]) {
        for e in events {
            if self.events.back().is_some_and(|b| b.seq + 1 != e.seq) {
                self.events.clear();
            }
            self.events.push_back(e.clone());
        }
        while self.events.len() > FEED_CAP {
            self.events.pop_front();
        }
        self.read_at = Some(Instant::now());
    }
}

impl Dispatcher {
    pub fn new(app: App, id: &str) -> anyhow::Result<Dispatcher> {
        let config = app.config.webhooks.clone();
        let client = WebhookClient::new(config.timeout, IN_FLIGHT, !private_targets_allowed(&app));
        // Loops hold a connection only for a statement, never while sending; the listener
        // holds one more for good.
        let pool = app.db.unflushed_pool(
            (config.concurrency as u32).clamp(1, DB_CONNECTIONS) + 1,
            "till-webhooks",
        );
        Ok(Dispatcher {
            pool,
            config,
            id: format!("{id}-webhooks"),
            client,
            wake: Notify::new(),
            feed: Mutex::new(Feed::default()),
            feed_reader: tokio::sync::Mutex::new(()),
        })
    }

    /// Starts delivering on a thread of its own with a one-thread runtime, until `stop` turns
    /// true (the thread ends once the batches in hand are recorded). Everything the dispatcher
    /// does (its HTTP and database connections, its loops) lives on that thread: a delivery's
    /// wake-ups never hop between threads, which on the two-core benchmark machine cost about a
    /// tenth of the worker's CPU per delivery under a multi-thread runtime, and the job loops'
    /// work never delays a delivery, nor the other way round. One thread sends tens of
    /// thousands of deliveries a second, far beyond what a shop raises.
    pub fn spawn(
        app: App,
        id: &str,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
        let id = id.to_owned();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(std::thread::Builder::new()
            .name("till-webhooks".into())
            .spawn(move || {
                runtime.block_on(async move {
                    Dispatcher::new(app, &id)?.run(stop).await;
                    Ok(())
                })
            })?)
    }

    /// Delivers until `stop` turns true; a batch being sent is finished first.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let me = Arc::new(self);
        let mut loops = vec![tokio::spawn(me.clone().listen(stop.clone()))];
        for _ in 0..me.config.concurrency {
            loops.push(tokio::spawn(me.clone().delivery_loop(stop.clone())));
        }
        for l in loops {
            let _ = l.await;
        }
    }

    /// Wakes idle loops when the publisher signals new events.
    async fn listen(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let mut listener = match sqlx::postgres::PgListener::connect_with(&self.pool).await {
                Ok(mut l) => match l.listen(outbox::PUBLISHED_CHANNEL).await {
                    Ok(()) => l,
                    Err(_) => continue,
                },
                Err(_) => {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = stop.changed() => return,
                    }
                }
            };
            loop {
                // One idle loop per notification: waking all of them for every publish round
                // had each ask PostgreSQL for work most of them could not get.
                tokio::select! {
                    n = listener.recv() => match n {
                        Ok(_) => self.wake.notify_one(),
                        Err(_) => break,
                    },
                    _ = stop.changed() => return,
                }
            }
        }
    }

    /// Time a batch may take: every round of requests may run to the timeout.
    fn lease_ms(&self, batch: i64) -> i64 {
        let rounds = (batch as u32).div_ceil(IN_FLIGHT as u32).max(1);
        (self.config.timeout * rounds + Duration::from_secs(5)).as_millis() as i64
    }

    async fn delivery_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let pool = &self.pool;
        let mut retries_asked: Option<Instant> = None;
        while !*stop.borrow() {
            let mut worked = false;
            match webhooks::lease_endpoint(pool, &self.id, self.lease_ms(SCAN_BATCH)).await {
                Ok(Some(endpoint)) => {
                    worked = true;
                    if let Err(e) = self.send_new(&endpoint).await {
                        tracing::warn!(error = %e, "webhook batch failed; will resend");
                        let _ = webhooks::release_endpoint(pool, &self.id, endpoint.id).await;
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "leasing a webhook endpoint failed"),
            }
            if retries_asked.is_none_or(|t| t.elapsed() >= RETRY_SCAN) {
                retries_asked = Some(Instant::now());
                match webhooks::claim(pool, &self.id, RETRY_BATCH, self.lease_ms(RETRY_BATCH)).await
                {
                    Ok(batch) if !batch.is_empty() => {
                        worked = true;
                        // A full batch: more may be due; ask again next round.
                        if batch.len() as i64 == RETRY_BATCH {
                            retries_asked = None;
                        }
                        if let Err(e) = self.retry(batch).await {
                            tracing::warn!(error = %e, "recording webhook retries failed");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "claiming webhook retries failed"),
                }
            }
            if !worked {
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// The events after `cursor` from a feed read within [`FEED_FRESH`].
    fn cached_after(&self, cursor: i64) -> Option<Vec<Arc<Prepared>>> {
        let feed = self.feed.lock().unwrap_or_else(|p| p.into_inner());
        if !feed.fresh() {
            return None;
        }
        feed.after(cursor, SCAN_BATCH as usize)
    }

    /// The published events after `cursor`: from the shared feed when it holds them (read
    /// from PostgreSQL at most once per [`FEED_FRESH`] for all loops), else read for this
    /// cursor alone when it is behind the feed.
    async fn events_after(&self, cursor: i64) -> anyhow::Result<Vec<Arc<Prepared>>> {
        if let Some(events) = self.cached_after(cursor) {
            return Ok(events);
        }
        let turn = self.feed_reader.lock().await;
        // Another loop may have read the feed while this one waited.
        if let Some(events) = self.cached_after(cursor) {
            return Ok(events);
        }
        let feed_from = {
            let feed = self.feed.lock().unwrap_or_else(|p| p.into_inner());
            match (feed.events.front(), feed.events.back()) {
                (Some(first), Some(last)) if first.seq <= cursor + 1 && cursor <= last.seq => {
                    Some(last.seq)
                }
                // Behind the feed: read on its own, the feed stays where the others are.
                (Some(first), _) if cursor + 1 < first.seq => None,
                // An empty feed, or one the cursor has passed (an endpoint re-enabled from the
                // latest event): the feed starts again from this cursor.
                _ => Some(cursor),
            }
        };
        let Some(from) = feed_from else {
            // The other loops need not wait for this read.
            drop(turn);
            return Ok(self.read_from(cursor).await?);
        };
        let read = self.read_from(from).await?;
        let mut feed = self.feed.lock().unwrap_or_else(|p| p.into_inner());
        feed.extend(&read);
        Ok(match feed.after(cursor, SCAN_BATCH as usize) {
            Some(events) => events,
            // Read from the cursor itself but not starting right after it (events purged
            // meanwhile): what is there, as a read of its own would give.
            None if from == cursor => read,
            // The feed started again after a hole: the next lease reads from the cursor.
            None => Vec::new(),
        })
    }

    async fn read_from(&self, seq: i64) -> Result<Vec<Arc<Prepared>>, till_db::DbError> {
        Ok(outbox::wire_after(&self.pool, seq, None, SCAN_BATCH)
            .await?
            .into_iter()
            .map(|e| Arc::new(Prepared::new(e)))
            .collect())
    }

    /// Sends the events after `endpoint`'s cursor that it subscribed to, then records them and
    /// moves the cursor.
    async fn send_new(&self, endpoint: &EndpointRow) -> anyhow::Result<()> {
        let pool = &self.pool;
        let events = self.events_after(endpoint.cursor_seq).await?;
        let Some(scanned_to) = events.last().map(|e| e.seq) else {
            webhooks::release_endpoint(pool, &self.id, endpoint.id).await?;
            return Ok(());
        };
        // Futures built first and then run IN_FLIGHT at a time (a stream of plain futures keeps
        // the spawned loop's future `Send`).
        let target = Target::parse(&endpoint.url);
        let sends: Vec<_> = events
            .iter()
            .filter(|e| subscribed(endpoint, e))
            .map(|e| self.first_attempt(endpoint, &target, e))
            .collect();
        let results: Vec<(Sent, bool)> = futures::stream::iter(sends)
            .buffered(IN_FLIGHT)
            .collect()
            .await;
        let gone = results.iter().any(|(_, g)| *g);
        let sent: Vec<Sent> = results.into_iter().map(|(s, _)| s).collect();
        for s in &sent {
            ::metrics::counter!("till_webhook_attempts_total", "outcome" => s.outcome.status)
                .increment(1);
        }
        let held = webhooks::record_batch(
            pool,
            &self.id,
            endpoint.id,
            scanned_to,
            &sent,
            self.config.max_attempts,
            self.config.disable_after,
            gone.then_some(GONE),
            if events.len() as i64 >= SCAN_BATCH {
                0
            } else {
                LINGER.as_millis() as i64
            },
        )
        .await?;
        if !held {
            tracing::warn!(endpoint = %endpoint.id, "lost a webhook lease mid-batch; another worker resends it");
        }
        Ok(())
    }

    async fn first_attempt(
        &self,
        endpoint: &EndpointRow,
        target: &Target,
        e: &Prepared,
    ) -> (Sent, bool) {
        let (outcome, gone) = self
            .attempt(
                endpoint,
                target,
                Uuid::now_v7(),
                1,
                self.config.max_attempts,
                Some(e),
            )
            .await;
        let sent = Sent {
            event_seq: e.seq,
            event_id: e.event_id,
            event_type: e.topic.clone(),
            outcome,
        };
        (sent, gone)
    }

    /// Sends one endpoint's due retries side by side and records every attempt.
    async fn retry(&self, batch: Vec<Claimed>) -> anyhow::Result<()> {
        let pool = &self.pool;
        let endpoint = webhooks::get(pool, batch[0].endpoint_id).await?;
        let seqs: Vec<i64> = batch.iter().map(|c| c.event_seq).collect();
        let events: Vec<Prepared> = outbox::wire_by_seqs(pool, &seqs)
            .await?
            .into_iter()
            .map(Prepared::new)
            .collect();
        let target = Target::parse(&endpoint.url);
        let sends = batch.iter().map(|c| {
            let event = events.iter().find(|e| e.seq == c.event_seq);
            self.attempt(&endpoint, &target, c.id, c.attempts, c.max_attempts, event)
        });
        let results = join_all(sends).await;
        let gone = results.iter().any(|(_, gone)| *gone);
        let outcomes: Vec<Outcome> = results.into_iter().map(|(o, _)| o).collect();
        for o in &outcomes {
            ::metrics::counter!("till_webhook_attempts_total", "outcome" => o.status).increment(1);
        }
        let disabled = webhooks::settle(
            pool,
            &self.id,
            endpoint.id,
            &outcomes,
            self.config.disable_after,
            gone.then_some(GONE),
        )
        .await?;
        if let Some(reason) = disabled {
            if endpoint.active {
                tracing::warn!(endpoint = %endpoint.id, reason, "webhook endpoint disabled");
            }
        }
        Ok(())
    }

    /// One attempt; the flag says the endpoint answered 410 Gone.
    async fn attempt(
        &self,
        endpoint: &EndpointRow,
        target: &Target,
        delivery_id: Uuid,
        attempt: i32,
        max_attempts: i32,
        event: Option<&Prepared>,
    ) -> (Outcome, bool) {
        let started_at = Utc::now();
        let clock = Instant::now();
        let mut outcome = Outcome {
            delivery_id,
            attempt,
            started_at,
            duration_ms: 0,
            status_code: None,
            error: None,
            excerpt: None,
            status: "failed",
            retry_at: None,
        };
        let Some(event) = event else {
            outcome.error = Some("the event is no longer kept (EVENT_RETENTION_DAYS)".into());
            return (outcome, false);
        };
        let t = started_at.timestamp();
        let signature = signature_header(&endpoint.signing_secrets(started_at), t, &event.body);
        let headers = [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (EVENT_ID, event.id_header.clone()),
            (EVENT_TYPE, event.type_header.clone()),
            (ATTEMPT, HeaderValue::from(attempt)),
            (
                SIGNATURE,
                HeaderValue::try_from(signature).expect("hex digits are a header value"),
            ),
        ];
        let sent = self.client.post(target, headers, event.body.clone()).await;
        let (retry, gone) = match sent {
            Ok(answer) => {
                let (status, excerpt) = (answer.status, answer.excerpt);
                outcome.status_code = Some(i32::from(status));
                outcome.excerpt = Some(excerpt);
                match status {
                    200..=299 => {
                        outcome.status = "succeeded";
                        lag_metric(event.created_at);
                        (false, false)
                    }
                    410 => {
                        outcome.error = Some("410 Gone: the endpoint was disabled".into());
                        (false, true)
                    }
                    408 | 429 | 300..=399 | 500..=599 => {
                        outcome.error = Some(format!("answered {status}"));
                        (true, false)
                    }
                    _ => {
                        outcome.error = Some(format!("answered {status}; not retried"));
                        (false, false)
                    }
                }
            }
            Err(error) => {
                outcome.error = Some(error);
                (true, false)
            }
        };
        outcome.duration_ms = clock.elapsed().as_millis().min(i32::MAX as u128) as i32;
        if retry && attempt < max_attempts {
            outcome.status = "pending";
            outcome.retry_at = Some(Utc::now() + backoff(self.config.retry_base, attempt));
        }
        (outcome, gone)
    }
}

const GONE: &str = "the endpoint answered 410 Gone";
const EVENT_ID: HeaderName = HeaderName::from_static("till-event-id");
const EVENT_TYPE: HeaderName = HeaderName::from_static("till-event-type");
const ATTEMPT: HeaderName = HeaderName::from_static("till-delivery-attempt");
const SIGNATURE: HeaderName = HeaderName::from_static("till-signature");

/// Whether `endpoint` receives `e`: a type it subscribed to, or a ping addressed to it.
fn subscribed(endpoint: &EndpointRow, e: &Prepared) -> bool {
    if e.topic == "ping" {
        return e.ping_endpoint.as_deref() == Some(endpoint.id.to_string().as_str());
    }
    endpoint.events.contains(&e.topic)
}

/// Delay before the attempt after `attempts`: base × 2^(attempts − 1), capped, ±20 % jitter so
/// a receiver coming back is not hit by every retry at once.
pub fn backoff(base: Duration, attempts: i32) -> chrono::Duration {
    let exp = (attempts.max(1) - 1).min(20) as u32;
    let d = base
        .saturating_mul(2u32.saturating_pow(exp))
        .min(BACKOFF_CAP);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    chrono::Duration::from_std(d.mul_f64(jitter)).unwrap_or(chrono::Duration::hours(6))
}

fn lag_metric(created: DateTime<Utc>) {
    let lag = (Utc::now() - created).num_milliseconds().max(0) as f64 / 1000.0;
    ::metrics::histogram!("till_webhook_delivery_lag_seconds").record(lag);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64) -> Arc<Prepared> {
        Arc::new(Prepared::new(WireEvent {
            seq,
            topic: "order.created".into(),
            created_at: Utc::now(),
            event_id: Uuid::now_v7(),
            data: "{}".into(),
            ping_endpoint: None,
        }))
    }

    fn seqs(events: &[Arc<Prepared>]) -> Vec<i64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn the_feed_serves_a_cursor_only_from_the_event_right_after_it() {
        let mut feed = Feed::default();
        assert!(feed.after(0, 10).is_none(), "empty");
        feed.extend(&(5..=9).map(event).collect::<Vec<_>>());
        assert_eq!(seqs(&feed.after(4, 10).unwrap()), [5, 6, 7, 8, 9]);
        assert_eq!(seqs(&feed.after(6, 2).unwrap()), [7, 8]);
        // Behind the feed (event 4 is not in it) or with nothing newer: not from memory.
        assert!(feed.after(3, 10).is_none());
        assert!(feed.after(9, 10).is_none());
        assert!(feed.after(12, 10).is_none());
    }

    #[test]
    fn the_feed_never_holds_a_hole() {
        let mut feed = Feed::default();
        feed.extend(&(1..=3).map(event).collect::<Vec<_>>());
        // 4 and 5 missing: the feed starts again at 6, so cursor 3 is not served 6 next.
        feed.extend(&(6..=7).map(event).collect::<Vec<_>>());
        assert!(feed.after(3, 10).is_none());
        assert_eq!(seqs(&feed.after(5, 10).unwrap()), [6, 7]);
    }

    #[test]
    fn the_feed_keeps_its_newest_events() {
        let mut feed = Feed::default();
        let n = FEED_CAP as i64 + 10;
        feed.extend(&(1..=n).map(event).collect::<Vec<_>>());
        assert_eq!(feed.events.len(), FEED_CAP);
        assert!(feed.after(5, 1).is_none());
        assert_eq!(seqs(&feed.after(n - 1, 10).unwrap()), [n]);
    }
}
