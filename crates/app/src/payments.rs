//! The payment provider's callbacks: `payment_intent.succeeded` / `payment_intent.failed`,
//! signed with `PAYMENT_WEBHOOK_SECRET`.
//!
//! - [`verify`] checks `Till-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`
//!   over the raw body, in constant time (`hmac`'s `verify_slice`), and refuses a timestamp
//!   more than [`TOLERANCE_SECS`] away from now (old replays, or a clock far ahead).
//! - [`settle`] applies an event exactly once: the intent row is locked, so concurrent
//!   deliveries (any instance) queue; the first `succeeded` records one `card` payment through
//!   [`crate::orders::record_payment`] (the same ledger, event and report figures as a staff
//!   payment), later ones find the intent settled and answer with the same payment. A unique
//!   index on `payments.intent_id` backs this up.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use till_db::orders::{self, NewPayment, Payment};
use till_db::payment_intents::{self, Intent, IntentStatus};
use till_db::{DbError, PgConnection};
use till_domain::{FieldErrors, PaymentMethod};
use uuid::Uuid;

use crate::orders::{record_payment, OrderError};
use crate::App;

/// How far (seconds) a signature's timestamp may be from now, either way.
pub const TOLERANCE_SECS: i64 = 300;
/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "till-signature";
const MAX_REFERENCE: usize = 200;

/// Why a callback's signature was refused (all answered 401, never saying which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Till-Signature header")]
    Missing,
    #[error("the Till-Signature header is malformed")]
    Malformed,
    #[error("the signature's timestamp is too old or too far in the future")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

/// `t=<unix>,v1=<hex>` for `body` signed at `t`: what the provider sends (and what the
/// development simulator sends through the same handler).
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    let tag = mac(secret, t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(tag))
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks the `Till-Signature` header of a callback with raw body `body` at time `now` (unix
/// seconds). Several `v1=` entries are allowed (secret rotation): one matching is enough.
pub fn verify(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match k {
            "t" => t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            "v1" => sigs.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {} // other schemes: ignored, as providers add them over time
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(t) > TOLERANCE_SECS as u64 {
        return Err(SignatureError::Stale);
    }
    let ok = sigs
        .iter()
        .any(|sig| mac(secret, t, body).verify_slice(sig).is_ok());
    if ok {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// What the provider reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventKind {
    #[serde(rename = "payment_intent.succeeded")]
    Succeeded,
    #[serde(rename = "payment_intent.failed")]
    Failed,
}

/// A callback's body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderEvent {
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub intent_id: Uuid,
    pub amount_cents: i64,
    /// The provider's id for the charge; kept on the intent and the payment.
    #[serde(default)]
    pub reference: Option<String>,
}

/// The intent after the event, and its payment (succeeded intents only).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Settled {
    pub intent: Intent,
    pub payment: Option<Payment>,
}

/// Applies a verified event exactly once (see the module comment). Unknown intent → 404; an
/// amount other than the intent's → 422 naming `amount_cents`; `failed` after `succeeded` →
/// 409; the order cancelled or paid meanwhile → 409 / 422 `overpayment`, nothing recorded.
pub async fn settle(app: &App, ev: &ProviderEvent) -> Result<Settled, OrderError> {
    let reference = check(ev)?;
    let mut tx = app.db.write.begin().await.map_err(DbError::from)?;
    match apply(&mut tx, ev, reference).await {
        Ok((settled, true)) => {
            tx.commit().await.map_err(DbError::from)?;
            app.after_commit(false);
            Ok(settled)
        }
        outcome => {
            // Nothing to keep: release the intent's lock now, not when the pool next touches
            // the connection, so the next delivery of this callback does not wait for it.
            let _ = tx.rollback().await;
            outcome.map(|(settled, _)| settled)
        }
    }
}

/// The event's effect in `conn`'s transaction; `true` when something was written.
async fn apply(
    conn: &mut PgConnection,
    ev: &ProviderEvent,
    reference: Option<&str>,
) -> Result<(Settled, bool), OrderError> {
    let (intent, created_by) =
        payment_intents::lock(conn, ev.intent_id)
            .await
            .map_err(|e| match e {
                DbError::NotFound => OrderError::NotFound,
                e => e.into(),
            })?;
    if ev.amount_cents != intent.amount_cents {
        let mut errs = FieldErrors::new();
        errs.add(
            "amount_cents",
            format!("must equal the intent's amount ({})", intent.amount_cents),
        );
        return Err(OrderError::Validation(errs));
    }
    match (ev.kind, intent.status) {
        // Replays: the same answer, nothing written.
        (EventKind::Succeeded, IntentStatus::Succeeded) => {
            let payment = payment_intents::payment_of(conn, intent.id).await?;
            Ok((Settled { intent, payment }, false))
        }
        (EventKind::Failed, IntentStatus::Failed) => Ok((
            Settled {
                intent,
                payment: None,
            },
            false,
        )),
        (EventKind::Failed, IntentStatus::Succeeded) => Err(OrderError::Conflict(
            "This payment intent has already succeeded.",
        )),
        (EventKind::Failed, IntentStatus::RequiresConfirmation) => {
            let intent =
                payment_intents::settle(conn, intent.id, IntentStatus::Failed, reference).await?;
            Ok((
                Settled {
                    intent,
                    payment: None,
                },
                true,
            ))
        }
        // A retried charge may succeed after a failure.
        (EventKind::Succeeded, IntentStatus::RequiresConfirmation | IntentStatus::Failed) => {
            let head = orders::lock(conn, intent.order_id).await?;
            let (payment, _order) = record_payment(
                conn,
                &head,
                NewPayment {
                    method: PaymentMethod::Card,
                    amount_cents: intent.amount_cents,
                    tendered_cents: None,
                    change_cents: 0,
                    reference,
                    created_by,
                    intent_id: Some(intent.id),
                    // Online card payments confirmed by the provider belong to no register.
                    shift_id: None,
                },
            )
            .await?;
            let intent =
                payment_intents::settle(conn, intent.id, IntentStatus::Succeeded, reference)
                    .await?;
            Ok((
                Settled {
                    intent,
                    payment: Some(payment),
                },
                true,
            ))
        }
    }
}

/// The trimmed reference (at most 200 characters, no control characters).
fn check(ev: &ProviderEvent) -> Result<Option<&str>, OrderError> {
    let reference = ev
        .reference
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let mut errs = FieldErrors::new();
    if let Some(r) = reference {
        if r.chars().count() > MAX_REFERENCE || r.chars().any(char::is_control) {
            errs.add(
                "reference",
                format!("must be at most {MAX_REFERENCE} characters, without control characters"),
            );
        }
    }
    if ev.amount_cents <= 0 {
        errs.add("amount_cents", "must be more than 0");
    }
    if errs.is_empty() {
        Ok(reference)
    } else {
        Err(OrderError::Validation(errs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";

    #[test]
    fn a_signature_verifies_only_for_its_body_secret_and_time() {
        let body = br#"{"type":"payment_intent.succeeded"}"#;
        let now = 1_800_000_000;
        let header = sign(SECRET, now, body);
        // The same HMAC computed independently (Python's hmac module).
        assert_eq!(
            header,
            "t=1800000000,v1=901d285da126fb41a8f684c42daa44c65508dda5a20f76772ef932bd54996424"
        );
        assert_eq!(verify(SECRET, Some(&header), body, now), Ok(()));
        assert_eq!(verify(SECRET, Some(&header), body, now + 300), Ok(()));
        assert_eq!(
            verify(SECRET, Some(&header), body, now + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(SECRET, Some(&header), body, now - 301),
            Err(SignatureError::Stale),
            "a timestamp far in the future is refused too"
        );
        assert_eq!(
            verify(SECRET, Some(&header), b"{}", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", Some(&header), body, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, None, body, now),
            Err(SignatureError::Missing)
        );
        for bad in ["", "t=1", "v1=ab", "t=x,v1=ab", "t=1,v1=zz", "garbage"] {
            assert_eq!(
                verify(SECRET, Some(bad), body, 1),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        // Rotation: any one matching v1 is enough.
        let sig = header.split("v1=").nth(1).unwrap();
        let two = format!("t={now},v1={},v1={sig}", "00".repeat(32));
        assert_eq!(verify(SECRET, Some(&two), body, now), Ok(()));
    }

    #[test]
    fn events_read_the_providers_type_names() {
        let ev: ProviderEvent = serde_json::from_str(
            r#"{"type": "payment_intent.failed", "intent_id": "0190a0b0-0000-7000-8000-000000000000", "amount_cents": 5, "reference": "ch_1"}"#,
        )
        .unwrap();
        assert_eq!(ev.kind, EventKind::Failed);
        assert!(serde_json::from_str::<ProviderEvent>(
            r#"{"type": "charge.refunded", "intent_id": "0190a0b0-0000-7000-8000-000000000000", "amount_cents": 5}"#
        )
        .is_err());
    }
}
