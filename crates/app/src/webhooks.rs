//! Webhook endpoints (admin): their rules, secrets and signatures, and the target guard that
//! keeps a webhook from reaching into the deployment's own network.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_json::json;
use sha2::Sha256;
use till_db::audit::{self, Actor};
use till_db::outbox::WireEvent;
use till_db::webhooks::{self, EndpointPatch, EndpointRow, NewEndpoint};
use till_db::DbError;
use till_domain::FieldErrors;
use uuid::Uuid;

use crate::idempotency::{self, Answer, Begun, IdempotencyError, IdempotencyKey};
use crate::{App, Precondition};

/// Every event type an endpoint may subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "order.created",
    "order.updated",
    "order.paid",
    "order.refunded",
    "order.cancelled",
    "stock.low",
    "inventory.adjusted",
    "transfer.updated",
    "shift.opened",
    "shift.closed",
    "product.updated",
    "ping",
];

/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_GRACE: chrono::Duration = chrono::Duration::hours(24);
const MAX_URL_LEN: usize = 2000;
const MAX_DESCRIPTION_LEN: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("invalid webhook: {0}")]
    Validation(FieldErrors),
    #[error("the endpoint changed since it was read")]
    VersionMismatch,
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Db(#[from] DbError),
}

fn invalid(field: &str, msg: &str) -> WebhookError {
    let mut e = FieldErrors::default();
    e.add(field, msg);
    WebhookError::Validation(e)
}

/// A fresh endpoint secret: `whsec_` and 32 random bytes in hex.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("whsec_{}", hex::encode(bytes))
}

/// `Till-Signature`: `t=<unix>` and one `v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` per secret.
pub fn signature_header(secrets: &[&str], t: i64, body: &[u8]) -> String {
    let mut header = format!("t={t}");
    for s in secrets {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(s.as_bytes()).expect("HMAC takes keys of any length");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        header.push_str(",v1=");
        header.push_str(&hex::encode(mac.finalize().into_bytes()));
    }
    header
}

/// Whether webhooks may reach `ip`: never loopback, private, link-local (which holds the cloud
/// metadata service, 169.254.169.254), unspecified, multicast, shared (CGNAT) or documentation
/// ranges, nor the IPv6 forms of them (mapped, unique-local, link-local).
pub fn public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public_ip(IpAddr::V4(v4));
            }
            let seg0 = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local
                || (seg0 & 0xffc0) == 0xfe80 // link-local
                || seg0 == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || seg0 == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 of anything
        }
    }
}

/// Whether private targets are allowed: always in development, in production only with
/// `WEBHOOK_ALLOW_PRIVATE=true`.
pub fn private_targets_allowed(app: &App) -> bool {
    app.config.webhooks.allow_private
        || app.config.runtime.app_env == crate::config::AppEnv::Development
}

/// Checks a webhook URL: absolute http(s) without credentials, `https` and a public target
/// (after DNS resolution) unless private targets are allowed. The delivery re-checks the
/// resolved addresses every time (DNS may change after this check).
pub async fn check_url(raw: &str, allow_private: bool) -> Result<url::Url, String> {
    if raw.len() > MAX_URL_LEN {
        return Err(format!("must be at most {MAX_URL_LEN} characters"));
    }
    let url = url::Url::parse(raw).map_err(|_| "must be an absolute URL".to_string())?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("must be an https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; use the signature to authenticate".into());
    }
    let Some(host) = url.host_str() else {
        return Err("must name a host".into());
    };
    if allow_private {
        return Ok(url);
    }
    if url.scheme() != "https" {
        return Err("must be an https URL".into());
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs = resolve(host, port).await?;
    if let Some(bad) = addrs.iter().find(|ip| !public_ip(**ip)) {
        return Err(format!(
            "must not point at a loopback, private, link-local or metadata address ({bad})"
        ));
    }
    Ok(url)
}

/// The addresses `host` resolves to (an IP literal is itself).
pub async fn resolve(host: &str, port: u16) -> Result<Vec<IpAddr>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let addrs: Vec<IpAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|_| "host does not resolve".to_string())?
        .map(|a| a.ip())
        .collect();
    if addrs.is_empty() {
        return Err("host does not resolve".into());
    }
    Ok(addrs)
}

fn check_events(events: &[String]) -> Result<(), WebhookError> {
    if events.is_empty() {
        return Err(invalid("events", "must name at least one event type"));
    }
    if events.len() > EVENT_TYPES.len() {
        return Err(invalid("events", "names an event type twice"));
    }
    for (i, e) in events.iter().enumerate() {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(invalid(
                &format!("events[{i}]"),
                &format!("unknown event type; one of {}", EVENT_TYPES.join(", ")),
            ));
        }
        if events[..i].contains(e) {
            return Err(invalid(&format!("events[{i}]"), "named twice"));
        }
    }
    Ok(())
}

fn check_description(d: &str) -> Result<(), WebhookError> {
    if d.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(invalid(
            "description",
            &format!("must be at most {MAX_DESCRIPTION_LEN} characters"),
        ));
    }
    Ok(())
}

pub struct NewWebhook<'a> {
    pub url: &'a str,
    pub events: &'a [String],
    pub description: &'a str,
}

/// Creates an endpoint; the answer is the only place its secret is shown.
pub async fn create(
    app: &App,
    actor: &Actor,
    caller: Uuid,
    w: NewWebhook<'_>,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&EndpointRow) -> Answer,
) -> Result<Answer, WebhookError> {
    let url = check_url(w.url.trim(), private_targets_allowed(app))
        .await
        .map_err(|m| invalid("url", &m))?;
    check_events(w.events)?;
    check_description(w.description)?;
    let secret = new_secret();
    let mut run = match idempotency::begin::<WebhookError>(app, caller, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    let row = webhooks::insert(
        tx,
        NewEndpoint {
            id: Uuid::now_v7(),
            url: url.as_str(),
            events: w.events,
            description: w.description.trim(),
            secret: &secret,
            created_by: caller,
        },
    )
    .await?;
    audit::record(
        tx,
        actor,
        "webhook.create",
        "webhook",
        row.id,
        json!({"url": row.url, "events": row.events}),
    )
    .await?;
    run.finish::<WebhookError>(render(&row)).await
}

pub struct WebhookPatch<'a> {
    pub url: Option<&'a str>,
    pub events: Option<&'a [String]>,
    pub description: Option<&'a str>,
    pub active: Option<bool>,
}

pub async fn update(
    app: &App,
    actor: &Actor,
    id: Uuid,
    pre: &Precondition,
    p: WebhookPatch<'_>,
) -> Result<EndpointRow, WebhookError> {
    let url = match p.url {
        Some(u) => Some(
            check_url(u.trim(), private_targets_allowed(app))
                .await
                .map_err(|m| invalid("url", &m))?,
        ),
        None => None,
    };
    if let Some(events) = p.events {
        check_events(events)?;
    }
    if let Some(d) = p.description {
        check_description(d)?;
    }
    let mut tx = app.db.write.begin().await.map_err(DbError::from)?;
    let before = webhooks::get_for_update(&mut tx, id).await?;
    if !pre.matches(before.version) {
        return Err(WebhookError::VersionMismatch);
    }
    let after = webhooks::update(
        &mut tx,
        id,
        EndpointPatch {
            url: url.as_ref().map(|u| u.as_str()),
            events: p.events,
            description: p.description.map(str::trim),
            active: p.active,
        },
    )
    .await?;
    audit::record(
        &mut tx,
        actor,
        "webhook.update",
        "webhook",
        id,
        json!({"url": url.as_ref().map(|u| u.as_str()), "events": p.events,
               "active": p.active, "version": after.version}),
    )
    .await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(after)
}

/// A new secret; the previous one keeps signing for [`ROTATION_GRACE`].
pub async fn rotate_secret(
    app: &App,
    actor: &Actor,
    caller: Uuid,
    id: Uuid,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&EndpointRow, DateTime<Utc>) -> Answer,
) -> Result<Answer, WebhookError> {
    let until = Utc::now() + ROTATION_GRACE;
    let mut run = match idempotency::begin::<WebhookError>(app, caller, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    webhooks::get_for_update(tx, id).await?;
    let row = webhooks::rotate(tx, id, &new_secret(), until).await?;
    audit::record(
        tx,
        actor,
        "webhook.rotate_secret",
        "webhook",
        id,
        json!({"previous_valid_until": until}),
    )
    .await?;
    run.finish::<WebhookError>(render(&row, until)).await
}

pub async fn delete(app: &App, actor: &Actor, id: Uuid) -> Result<(), WebhookError> {
    let mut tx = app.db.write.begin().await.map_err(DbError::from)?;
    if !webhooks::delete(&mut tx, id).await? {
        return Err(DbError::NotFound.into());
    }
    audit::record(&mut tx, actor, "webhook.delete", "webhook", id, json!({})).await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(())
}

/// Queues a `ping` event for this endpoint only (it goes through the outbox like every event,
/// so it has a `sequence` and shows in `GET /events`).
pub async fn ping(
    app: &App,
    actor: &Actor,
    caller: Uuid,
    id: Uuid,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&EndpointRow) -> Answer,
) -> Result<Answer, WebhookError> {
    let mut run = match idempotency::begin::<WebhookError>(app, caller, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    let ep = webhooks::get_for_update(tx, id).await?;
    let payload = json!({
        "type": "ping",
        "at": Utc::now(),
        "audience": "none",
        "endpoint_id": ep.id,
        "data": {"endpoint_id": ep.id, "url": ep.url},
    });
    till_db::outbox::enqueue(tx, "ping", &payload).await?;
    audit::record(tx, actor, "webhook.ping", "webhook", id, json!({})).await?;
    let answer = run.finish::<WebhookError>(render(&ep)).await?;
    app.after_commit(false);
    Ok(answer)
}

/// Sends a delivery again now (one more attempt if it had used them all).
pub async fn retry(
    app: &App,
    actor: &Actor,
    caller: Uuid,
    delivery_id: Uuid,
    key: Option<&IdempotencyKey>,
    render: impl FnOnce(&webhooks::DeliveryRow) -> Answer,
) -> Result<Answer, WebhookError> {
    let mut run = match idempotency::begin::<WebhookError>(app, caller, key).await? {
        Begun::Replay(answer) => return Ok(answer),
        Begun::Fresh(run) => run,
    };
    let tx = &mut run.tx;
    let d = webhooks::retry(tx, delivery_id).await?;
    audit::record(
        tx,
        actor,
        "webhook.retry",
        "webhook_delivery",
        delivery_id,
        json!({"endpoint_id": d.endpoint_id, "event_id": d.event_id}),
    )
    .await?;
    run.finish::<WebhookError>(render(&d)).await
}

/// The POSTed body of an event, `{"created_at", "data", "id", "sequence", "type"}`: built from
/// the stored event only, so every attempt sends the same bytes.
///
/// Written around `data` as PostgreSQL returns it (JSON text) rather than through a
/// `serde_json::Value`: parsing and re-serialising every payload took about half the worker's
/// CPU at checkout speed (perf, `loadtests/checkout.sh` with `BASELINE=webhooks`).
pub fn event_body(e: &WireEvent) -> Vec<u8> {
    let mut b = Vec::with_capacity(e.data.len() + 160);
    b.extend_from_slice(b"{\"created_at\":");
    // Serialising a timestamp, a string or a number into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut b, &e.created_at);
    b.extend_from_slice(b",\"data\":");
    b.extend_from_slice(e.data.as_bytes());
    b.extend_from_slice(b",\"id\":");
    let _ = serde_json::to_writer(&mut b, &e.event_id);
    b.extend_from_slice(b",\"sequence\":");
    let _ = serde_json::to_writer(&mut b, &e.seq);
    b.extend_from_slice(b",\"type\":");
    let _ = serde_json::to_writer(&mut b, &e.topic);
    b.push(b'}');
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_inside_the_network_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!public_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(public_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_in_production_terms() {
        assert!(check_url("https://127.0.0.1/hook", false).await.is_err());
        assert!(check_url("https://localhost/hook", false).await.is_err());
        assert!(check_url("https://169.254.169.254/latest", false)
            .await
            .is_err());
        assert!(check_url("https://[::1]/hook", false).await.is_err());
        assert!(check_url("http://93.184.216.34/hook", false).await.is_err());
        assert!(check_url("https://u:p@93.184.216.34/hook", false)
            .await
            .is_err());
        assert!(check_url("ftp://93.184.216.34/", false).await.is_err());
        assert!(check_url("https://93.184.216.34/hook", false).await.is_ok());
        assert!(check_url("http://127.0.0.1:9/hook", true).await.is_ok());
    }

    #[test]
    fn the_body_carries_the_stored_data_verbatim() {
        let e = WireEvent {
            seq: 42,
            topic: "order.paid".into(),
            created_at: "2026-12-01T10:00:00.5Z".parse().unwrap(),
            event_id: Uuid::nil(),
            data: r#"{"id": "o1", "total_cents": 1083, "note": "a \"quoted\" word"}"#.into(),
            ping_endpoint: None,
        };
        let body = event_body(&e);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({
                "id": "00000000-0000-0000-0000-000000000000",
                "sequence": 42,
                "type": "order.paid",
                "created_at": "2026-12-01T10:00:00.500Z",
                "data": {"id": "o1", "total_cents": 1083, "note": "a \"quoted\" word"},
            })
        );
        assert_eq!(body, event_body(&e), "every attempt sends the same bytes");
    }

    #[test]
    fn signature_has_one_v1_per_secret() {
        let h = signature_header(&["whsec_a", "whsec_b"], 1_700_000_000, b"{}");
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(h.matches(",v1=").count(), 2);
    }
}
