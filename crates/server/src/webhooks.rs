//! Webhook delivery, run by `till worker` beside its job loops.
//!
//! - `WEBHOOK_CONCURRENCY` delivery loops each lease one endpoint that is behind, read the
//!   published events after its cursor, POST those it subscribed to side by side, and record
//!   them and move the cursor in one statement. A slow endpoint holds one loop, never the
//!   others; a worker killed mid-batch loses its lease, and the next worker sends the same events
//!   (same id, same body) from the same cursor.
//! - The same loops retry first attempts that failed, from their delivery rows, with backoff.
//! - A `LISTEN` on the publisher's channel wakes idle loops as soon as events are published;
//!   without it (the listener reconnecting) they poll.
//! - Targets are re-checked at every delivery: in production, a name that now resolves to a
//!   loopback, private, link-local or metadata address is refused by the client's resolver, so
//!   the check and the connection use the same addresses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use futures::StreamExt;
use rand::Rng;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use till_app::config::WebhookConfig;
use till_app::webhooks::{event_body, private_targets_allowed, public_ip, signature_header};
use till_app::App;
use till_db::outbox::{self, EventRow};
use till_db::webhooks::{self, Claimed, EndpointRow, Outcome, Sent};
use tokio::sync::{watch, Notify};
use uuid::Uuid;

/// Published events read after an endpoint's cursor per batch.
const SCAN_BATCH: i64 = 256;
/// Requests in flight to one endpoint at most.
const IN_FLIGHT: usize = 64;
/// Retries of one endpoint leased and sent together.
const RETRY_BATCH: i64 = 32;
/// How often an idle loop looks for work when no notification comes.
const POLL: Duration = Duration::from_millis(250);
/// How much of an answer is read (the rest is dropped) and how much of it is kept in the log.
const READ_CAP: usize = 64 * 1024;
const EXCERPT_CHARS: usize = 500;
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
/// Serialised event bodies kept for the other endpoints sending the same events.
const BODY_CACHE: u64 = 4096;

pub struct Dispatcher {
    app: App,
    config: WebhookConfig,
    id: String,
    client: reqwest::Client,
    allow_private: bool,
    wake: Notify,
    /// Event bodies by sequence: every endpoint sends the same bytes for an event, serialised
    /// once.
    bodies: moka::sync::Cache<i64, bytes::Bytes>,
}

impl Dispatcher {
    pub fn new(app: App, id: &str) -> anyhow::Result<Dispatcher> {
        let config = app.config.webhooks.clone();
        let allow_private = private_targets_allowed(&app);
        let mut client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // A redirect could lead anywhere, past the target check: not followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Till-Webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(IN_FLIGHT);
        if !allow_private {
            client = client.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(Dispatcher {
            app,
            config,
            id: format!("{id}-webhooks"),
            client: client.build()?,
            allow_private,
            wake: Notify::new(),
            bodies: moka::sync::Cache::builder()
                .max_capacity(BODY_CACHE)
                .time_to_idle(Duration::from_secs(60))
                .build(),
        })
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
            let mut listener =
                match sqlx::postgres::PgListener::connect_with(&self.app.db.write).await {
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
        let pool = &self.app.db.write;
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

    /// Sends the events after `endpoint`'s cursor that it subscribed to, then records them and
    /// moves the cursor.
    async fn send_new(&self, endpoint: &EndpointRow) -> anyhow::Result<()> {
        let pool = &self.app.db.write;
        let events = outbox::published_after(pool, endpoint.cursor_seq, None, SCAN_BATCH).await?;
        let Some(scanned_to) = events.last().map(|e| e.seq) else {
            webhooks::release_endpoint(pool, &self.id, endpoint.id).await?;
            return Ok(());
        };
        // Futures built first and then run IN_FLIGHT at a time (a stream of plain futures keeps
        // the spawned loop's future `Send`).
        let sends: Vec<_> = events
            .iter()
            .filter(|e| subscribed(endpoint, e))
            .map(|e| self.first_attempt(endpoint, e))
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

    async fn first_attempt(&self, endpoint: &EndpointRow, e: &EventRow) -> (Sent, bool) {
        let (outcome, gone) = self
            .attempt(
                endpoint,
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
        let pool = &self.app.db.write;
        let endpoint = webhooks::get(pool, batch[0].endpoint_id).await?;
        let seqs: Vec<i64> = batch.iter().map(|c| c.event_seq).collect();
        let events = outbox::by_seqs(pool, &seqs).await?;
        let sends = batch.iter().map(|c| {
            let event = events.iter().find(|e| e.seq == c.event_seq);
            self.attempt(&endpoint, c.id, c.attempts, c.max_attempts, event)
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
        delivery_id: Uuid,
        attempt: i32,
        max_attempts: i32,
        event: Option<&EventRow>,
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
        // The resolver guards names; an address written in the URL never reaches it.
        if !self.allow_private && !literal_target_allowed(&endpoint.url) {
            outcome.error = Some(format!("could not connect: {REFUSED_TARGET}"));
            return (outcome, false);
        }
        let body = self
            .bodies
            .get_with(event.seq, || bytes::Bytes::from(event_body(event)));
        let t = started_at.timestamp();
        let signature = signature_header(&endpoint.signing_secrets(started_at), t, &body);
        let sent = async {
            let resp = self
                .client
                .post(&endpoint.url)
                .header("content-type", "application/json")
                .header("till-event-id", event.event_id.to_string())
                .header("till-event-type", &event.topic)
                .header("till-delivery-attempt", attempt.to_string())
                .header("till-signature", signature)
                .body(body)
                .send()
                .await?;
            let status = resp.status().as_u16();
            let excerpt = read_capped(resp).await;
            Ok::<_, reqwest::Error>((status, excerpt))
        };
        let (retry, gone) = match sent.await {
            Ok((status, excerpt)) => {
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
            Err(e) => {
                outcome.error = Some(describe(&e));
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

/// Whether `endpoint` receives `e`: a type it subscribed to, or a ping addressed to it.
fn subscribed(endpoint: &EndpointRow, e: &EventRow) -> bool {
    if e.topic == "ping" {
        return e.payload.get("endpoint_id").and_then(|v| v.as_str())
            == Some(endpoint.id.to_string().as_str());
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

/// Reads at most [`READ_CAP`] bytes of the answer and keeps an excerpt as text (no NULs:
/// PostgreSQL text cannot hold them).
async fn read_capped(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < READ_CAP {
        match resp.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf)
        .chars()
        .filter(|c| *c != '\0')
        .take(EXCERPT_CHARS)
        .collect()
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        let mut msg = "could not connect".to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            if s.to_string().contains(REFUSED_TARGET) {
                msg = format!("could not connect: {REFUSED_TARGET}");
            }
            src = s.source();
        }
        msg
    } else {
        "the request failed".into()
    }
}

/// False when the URL's host is an IP address that is not public.
fn literal_target_allowed(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    match u.host() {
        Some(url::Host::Ipv4(ip)) => public_ip(ip.into()),
        Some(url::Host::Ipv6(ip)) => public_ip(ip.into()),
        Some(url::Host::Domain(_)) => true,
        None => false,
    }
}

const REFUSED_TARGET: &str = "the host resolves to a non-public address";

/// The production resolver: a name resolving to any non-public address is refused.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if addrs.is_empty() || addrs.iter().any(|a| !public_ip(a.ip())) {
                return Err(REFUSED_TARGET.into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
