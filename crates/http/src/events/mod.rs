//! Live events: the outbox publisher, the per-instance hub that fans events out to WebSocket
//! connections, and the subscriber that feeds the hub from Redis (or directly, in single-instance
//! mode).
//!
//! Flow: a write commits its change and an outbox row together → the instance's publisher (one at
//! a time across instances, by advisory lock) stamps `seq` and publishes to Redis → every
//! instance's subscriber hands the event to its hub → the hub passes it to the staff-side
//! connections and to those of the customer it is about (see [`Hub`]).
//! A subscriber that lost Redis catches up from the outbox by `seq`; so does a reconnecting
//! client that passes `?since=<seq>`.

mod hub;
mod publisher;
mod subscriber;
pub mod ws;

use axum::extract::ws::Utf8Bytes;
use serde_json::{json, Value};
use till_db::outbox::EventRow;
use uuid::Uuid;

pub use hub::{Feed, Hub, Next};
pub use publisher::run_publisher;
pub use subscriber::run_subscriber;

/// Redis channel (namespaced by the store) carrying published outbox rows.
pub const CHANNEL: &str = "events";

/// Who may see an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Staff-side roles only (e.g. `stock.low`).
    Staff,
    /// Staff-side roles, and the customer the event is about.
    StaffAndCustomer(Option<Uuid>),
    /// No live client: events only webhooks carry (`product.updated`, `ping`, …).
    Nobody,
}

/// One event as held by the hub: routing facts plus the JSON text sent to clients, encoded once
/// and shared (reference-counted, not copied) by every connection that sends it.
#[derive(Debug)]
pub struct Event {
    pub seq: i64,
    pub audience: Audience,
    pub frame: Utf8Bytes,
}

impl Event {
    /// Outbox payload layout: `{"type", "at", "order"|"product", "customer_id"?, "audience"?}`;
    /// routing fields are stripped from the client frame and `seq` is added.
    pub fn from_parts(seq: i64, payload: &Value) -> Event {
        let mut frame = payload.clone();
        let customer_id = frame
            .get("customer_id")
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<Uuid>().ok());
        let audience = frame.get("audience").and_then(|v| v.as_str());
        let audience = match audience {
            Some("staff") => Audience::Staff,
            Some("none") => Audience::Nobody,
            _ => Audience::StaffAndCustomer(customer_id),
        };
        if let Some(obj) = frame.as_object_mut() {
            obj.remove("customer_id");
            obj.remove("audience");
            // The whole changed object is for webhooks; live clients get the summary.
            obj.remove("data");
            obj.insert("seq".into(), json!(seq));
        }
        Event {
            seq,
            audience,
            frame: frame.to_string().into(),
        }
    }

    /// The frame's JSON text.
    pub fn text(&self) -> &str {
        self.frame.as_str()
    }

    pub fn from_row(row: &EventRow) -> Event {
        Event::from_parts(row.seq, &row.payload)
    }

    /// Staff-side roles see everything; a customer only events about their own orders.
    pub fn visible_to(&self, staff_side: bool, customer_id: Option<Uuid>) -> bool {
        match self.audience {
            Audience::Nobody => false,
            _ if staff_side => true,
            Audience::Staff => false,
            Audience::StaffAndCustomer(owner) => owner.is_some() && owner == customer_id,
        }
    }
}

/// Wire format between instances: the outbox row.
pub fn wire(row: &EventRow) -> String {
    json!({"seq": row.seq, "payload": row.payload}).to_string()
}

pub fn from_wire(bytes: &[u8]) -> Option<Event> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    Some(Event::from_parts(
        v.get("seq")?.as_i64()?,
        v.get("payload")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_fields_are_stripped_and_visibility_follows_the_owner() {
        let owner = Uuid::now_v7();
        let payload =
            json!({"type": "order.created", "at": "t", "order": {"id": "x"}, "customer_id": owner});
        let e = Event::from_parts(7, &payload);
        let frame: Value = serde_json::from_str(e.text()).unwrap();
        assert_eq!(frame["seq"], 7);
        assert!(frame.get("customer_id").is_none());
        assert!(e.visible_to(true, None));
        assert!(e.visible_to(false, Some(owner)));
        assert!(!e.visible_to(false, Some(Uuid::now_v7())));
        assert!(!e.visible_to(false, None));
        let low = Event::from_parts(
            8,
            &json!({"type": "stock.low", "audience": "staff", "product": {}}),
        );
        assert!(!low.visible_to(false, Some(owner)));
        assert!(low.visible_to(true, None));
    }
}
