//! Webhook delivery, run by `till worker` beside its job loops.
//!
//! - The fan-out loop turns newly published events into deliveries (one worker at a time, by
//!   row lock on the cursor; see `till_db::webhooks::fan_out`).
//! - `WEBHOOK_CONCURRENCY` delivery loops each lease one endpoint's due deliveries, POST them
//!   side by side, and record every attempt. A slow endpoint holds one loop, never the others;
//!   a worker killed mid-delivery loses its leases, and another worker sends the same events
//!   (same id, same body) once they run out.
//! - Targets are re-checked at every delivery: in production, a name that now resolves to a
//!   loopback, private, link-local or metadata address is refused by the client's resolver, so
//!   the check and the connection use the same addresses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use rand::Rng;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use till_app::config::WebhookConfig;
use till_app::webhooks::{event_body, private_targets_allowed, public_ip, signature_header};
use till_app::App;
use till_db::outbox::{self, EventRow};
use till_db::webhooks::{self, Claimed, EndpointRow, Outcome};
use tokio::sync::{watch, Notify};

/// Events turned into deliveries per fan-out round.
const FAN_OUT_BATCH: i64 = 1000;
/// Deliveries of one endpoint leased and sent together.
const SEND_BATCH: i64 = 32;
/// How often an idle loop looks for work (a fan-out that queued deliveries wakes them at once).
const POLL: Duration = Duration::from_millis(50);
/// How much of an answer is read (the rest is dropped) and how much of it is kept in the log.
const READ_CAP: usize = 64 * 1024;
const EXCERPT_CHARS: usize = 500;
/// Longest wait between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(6 * 3600);

pub struct Dispatcher {
    app: App,
    config: WebhookConfig,
    id: String,
    client: reqwest::Client,
    allow_private: bool,
    wake: Notify,
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
            .pool_max_idle_per_host(SEND_BATCH as usize);
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
        })
    }

    /// Fans out and delivers until `stop` turns true; a batch being sent is finished first
    /// (it takes at most `WEBHOOK_TIMEOUT_SECONDS`).
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let me = Arc::new(self);
        let mut loops = vec![tokio::spawn(me.clone().fan_out_loop(stop.clone()))];
        for _ in 0..me.config.concurrency {
            loops.push(tokio::spawn(me.clone().delivery_loop(stop.clone())));
        }
        for l in loops {
            let _ = l.await;
        }
    }

    async fn fan_out_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let pool = &self.app.db.write;
        while !*stop.borrow() {
            let round = webhooks::fan_out(pool, FAN_OUT_BATCH, self.config.max_attempts).await;
            let pause = match round {
                Ok(Some((events, deliveries))) => {
                    if deliveries > 0 {
                        self.wake.notify_waiters();
                    }
                    if events == FAN_OUT_BATCH {
                        continue;
                    }
                    POLL
                }
                Ok(None) => POLL,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook fan-out failed; will retry");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn delivery_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let lease_ms = (self.config.timeout + Duration::from_secs(5)).as_millis() as i64;
        while !*stop.borrow() {
            let claimed = webhooks::claim(&self.app.db.write, &self.id, SEND_BATCH, lease_ms).await;
            match claimed {
                Ok(batch) if !batch.is_empty() => {
                    if let Err(e) = self.deliver(batch).await {
                        tracing::warn!(error = %e, "recording webhook attempts failed");
                    }
                }
                Ok(_) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(POLL) => {}
                        _ = stop.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming webhook deliveries failed");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        }
    }

    /// Sends one endpoint's batch side by side and records every attempt.
    async fn deliver(&self, batch: Vec<Claimed>) -> anyhow::Result<()> {
        let pool = &self.app.db.write;
        let endpoint = webhooks::get(pool, batch[0].endpoint_id).await?;
        let seqs: Vec<i64> = batch.iter().map(|c| c.event_seq).collect();
        let events = outbox::by_seqs(pool, &seqs).await?;
        let sends = batch.iter().map(|c| {
            let event = events.iter().find(|e| e.seq == c.event_seq);
            self.attempt(&endpoint, c, event)
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
            gone.then_some("the endpoint answered 410 Gone"),
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
        c: &Claimed,
        event: Option<&EventRow>,
    ) -> (Outcome, bool) {
        let started_at = Utc::now();
        let clock = Instant::now();
        let mut outcome = Outcome {
            delivery_id: c.id,
            attempt: c.attempts,
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
        let body = event_body(event);
        let t = started_at.timestamp();
        let signature = signature_header(&endpoint.signing_secrets(started_at), t, &body);
        let sent = async {
            let resp = self
                .client
                .post(&endpoint.url)
                .header("content-type", "application/json")
                .header("till-event-id", event.event_id.to_string())
                .header("till-event-type", &event.topic)
                .header("till-delivery-attempt", c.attempts.to_string())
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
        if retry && c.attempts < c.max_attempts {
            outcome.status = "pending";
            outcome.retry_at = Some(Utc::now() + backoff(self.config.retry_base, c.attempts));
        }
        (outcome, gone)
    }
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
