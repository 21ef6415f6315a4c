//! Order vocabulary, the order state machine, and payment status arithmetic.
//!
//! The transition table is the one in docs/api.md, Lifecycle, encoded once here so that the HTTP
//! handler, the worker (unpaid-order expiry) and the board all agree on what may happen next.
//! A refused transition carries the allowed set because the 409 `invalid_transition` answer
//! returns it in `details: {from, to, allowed}`.

use serde::{Deserialize, Serialize};

/// Where an order is in its life. Wire spelling is snake_case (`out_for_delivery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created; stock already taken.
    Pending,
    /// Accepted by the shop.
    Confirmed,
    /// Being made or picked.
    Preparing,
    /// Waiting for pickup, hand-over or a driver.
    Ready,
    /// With a driver (delivery orders only).
    OutForDelivery,
    /// Handed over at the door. Terminal.
    Delivered,
    /// Handed over in store or at pickup. Terminal.
    Completed,
    /// Cancelled; stock returned. Terminal.
    Cancelled,
}

string_enum!(OrderStatus {
    Pending => "pending",
    Confirmed => "confirmed",
    Preparing => "preparing",
    Ready => "ready",
    OutForDelivery => "out_for_delivery",
    Delivered => "delivered",
    Completed => "completed",
    Cancelled => "cancelled",
});

impl OrderStatus {
    /// No transition leaves this status (delivered, completed, cancelled).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Delivered | OrderStatus::Completed | OrderStatus::Cancelled
        )
    }
}

/// How the order was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// At the till, by a cashier or above.
    Pos,
    /// By a customer through the shop.
    Online,
}

string_enum!(Channel {
    Pos => "pos",
    Online => "online",
});

/// How the goods reach the customer; decides the end of the lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Fulfilment {
    /// Handed over at the counter.
    InStore,
    /// Collected later by the customer.
    Pickup,
    /// Driven to `delivery_address`.
    Delivery,
}

string_enum!(Fulfilment {
    InStore => "in_store",
    Pickup => "pickup",
    Delivery => "delivery",
});

/// Derived from total, paid and refunded; see [`payment_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Nothing paid.
    Unpaid,
    /// Some paid, balance remaining.
    PartiallyPaid,
    /// Fully paid, nothing refunded.
    Paid,
    /// Some of the payments refunded.
    PartiallyRefunded,
    /// Everything paid has been refunded.
    Refunded,
}

string_enum!(PaymentStatus {
    Unpaid => "unpaid",
    PartiallyPaid => "partially_paid",
    Paid => "paid",
    PartiallyRefunded => "partially_refunded",
    Refunded => "refunded",
});

/// A tender type; split tenders are several payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// Cash; may carry `tendered_cents` and give change.
    Cash,
    /// Card (the only method a customer may use online).
    Card,
    /// Voucher, bank transfer, …; `reference` says which.
    Other,
}

string_enum!(PaymentMethod {
    Cash => "cash",
    Card => "card",
    Other => "other",
});

/// Why stock moved; every change to `stock_on_hand` is a movement with one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MovementReason {
    /// Goods delivered by a supplier.
    Received,
    /// Broken, spoiled or stolen.
    Damage,
    /// Stock-take correction.
    Count,
    /// Any other manual fix.
    Correction,
    /// Taken by an order at creation.
    Sale,
    /// Returned by cancelling an order.
    Cancel,
    /// Returned by a refund with restock.
    Return,
    /// Sent from a location by a dispatched transfer (in transit until received).
    TransferOut,
    /// Received at a location from a transfer.
    TransferIn,
    /// Returned to the source when an in-transit transfer is cancelled.
    TransferReturn,
}

string_enum!(MovementReason {
    Received => "received",
    Damage => "damage",
    Count => "count",
    Correction => "correction",
    Sale => "sale",
    Cancel => "cancel",
    Return => "return",
    TransferOut => "transfer_out",
    TransferIn => "transfer_in",
    TransferReturn => "transfer_return",
});

impl MovementReason {
    /// The reasons `POST /inventory/adjustments` accepts. The others are written only by the
    /// order flow, so that the ledger's sale/cancel/return lines always point at an order.
    pub fn is_manual_adjustment(self) -> bool {
        matches!(
            self,
            MovementReason::Received
                | MovementReason::Damage
                | MovementReason::Count
                | MovementReason::Correction
        )
    }
}

/// The statuses an order in `from` may move to, per docs/api.md, Lifecycle, in table order.
///
/// `ready` branches on fulfilment: delivery orders go out for delivery, pickup and in-store
/// orders complete. Terminal statuses allow nothing.
pub fn allowed_transitions(from: OrderStatus, fulfilment: Fulfilment) -> Vec<OrderStatus> {
    use OrderStatus::*;
    match from {
        Pending => vec![Confirmed, Cancelled],
        Confirmed => vec![Preparing, Cancelled],
        Preparing => vec![Ready, Cancelled],
        Ready => match fulfilment {
            Fulfilment::Delivery => vec![OutForDelivery, Cancelled],
            Fulfilment::Pickup | Fulfilment::InStore => vec![Completed, Cancelled],
        },
        OutForDelivery => vec![Delivered],
        Delivered | Completed | Cancelled => Vec::new(),
    }
}

/// A refused transition, serialisable as the 409's `details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error, utoipa::ToSchema)]
#[error("cannot move an order from {from} to {to}")]
pub struct TransitionError {
    /// Current status.
    pub from: OrderStatus,
    /// Requested status.
    pub to: OrderStatus,
    /// What would have been accepted from `from` (empty when `from` is terminal).
    pub allowed: Vec<OrderStatus>,
}

/// `Ok` when `to` is in [`allowed_transitions`] of `from`. Staying put is not a transition.
pub fn check_transition(
    from: OrderStatus,
    to: OrderStatus,
    fulfilment: Fulfilment,
) -> Result<(), TransitionError> {
    let allowed = allowed_transitions(from, fulfilment);
    if allowed.contains(&to) {
        Ok(())
    } else {
        Err(TransitionError { from, to, allowed })
    }
}

/// Whether an order should move to `completed` by itself now. Per docs/api.md, Lifecycle, an
/// `in_store` order that becomes fully paid completes on its own (the customer is standing at
/// the till), from whatever non-terminal status it is in. This is a system move, outside the
/// staff table.
pub fn completes_on_full_payment(
    status: OrderStatus,
    fulfilment: Fulfilment,
    payment: PaymentStatus,
) -> bool {
    fulfilment == Fulfilment::InStore && payment == PaymentStatus::Paid && !status.is_terminal()
}

/// Payment status from the order's money, checked in this order:
/// any refund covering all that was paid → `refunded`; any other refund → `partially_refunded`;
/// nothing paid → `unpaid`; less than the total → `partially_paid`; else `paid`.
///
/// Refunds win over payment state because once money has gone back the order's story is the
/// refund. Note that a zero-total order with no payment is `unpaid` by these rules.
pub fn payment_status(total_cents: i64, paid_cents: i64, refunded_cents: i64) -> PaymentStatus {
    if refunded_cents > 0 && refunded_cents >= paid_cents {
        PaymentStatus::Refunded
    } else if refunded_cents > 0 {
        PaymentStatus::PartiallyRefunded
    } else if paid_cents == 0 {
        PaymentStatus::Unpaid
    } else if paid_cents < total_cents {
        PaymentStatus::PartiallyPaid
    } else {
        PaymentStatus::Paid
    }
}

/// What is still owed: `max(0, total − paid)`. Refunds do not reopen a balance (docs/api.md,
/// Pricing).
pub fn balance_due(total_cents: i64, paid_cents: i64) -> i64 {
    total_cents.saturating_sub(paid_cents).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    fn assert_wire_names<T>(all: &[T])
    where
        T: Copy + Serialize + for<'de> Deserialize<'de> + std::fmt::Debug + PartialEq,
        T: std::str::FromStr + std::fmt::Display,
        <T as std::str::FromStr>::Err: std::fmt::Debug,
    {
        for &v in all {
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{v}\""));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
            assert_eq!(v.to_string().parse::<T>().unwrap(), v);
        }
    }

    #[test]
    fn serde_and_as_str_agree() {
        assert_wire_names(OrderStatus::ALL);
        assert_wire_names(Channel::ALL);
        assert_wire_names(Fulfilment::ALL);
        assert_wire_names(PaymentStatus::ALL);
        assert_wire_names(PaymentMethod::ALL);
        assert_wire_names(MovementReason::ALL);
        assert_eq!(OutForDelivery.as_str(), "out_for_delivery");
        assert_eq!(Fulfilment::InStore.as_str(), "in_store");
        assert_eq!(
            PaymentStatus::PartiallyRefunded.as_str(),
            "partially_refunded"
        );
        assert!("OutForDelivery".parse::<OrderStatus>().is_err());
        assert!(serde_json::from_str::<Channel>("\"web\"").is_err());
    }

    #[test]
    fn manual_adjustment_reasons() {
        let manual: Vec<_> = MovementReason::ALL
            .iter()
            .copied()
            .filter(|r| r.is_manual_adjustment())
            .collect();
        assert_eq!(
            manual,
            [
                MovementReason::Received,
                MovementReason::Damage,
                MovementReason::Count,
                MovementReason::Correction
            ]
        );
    }

    #[test]
    fn transition_table() {
        for &f in Fulfilment::ALL {
            assert_eq!(allowed_transitions(Pending, f), [Confirmed, Cancelled]);
            assert_eq!(allowed_transitions(Confirmed, f), [Preparing, Cancelled]);
            assert_eq!(allowed_transitions(Preparing, f), [Ready, Cancelled]);
            assert_eq!(allowed_transitions(OutForDelivery, f), [Delivered]);
            for terminal in [Delivered, Completed, Cancelled] {
                assert!(allowed_transitions(terminal, f).is_empty());
                assert!(terminal.is_terminal());
            }
        }
        assert_eq!(
            allowed_transitions(Ready, Fulfilment::Delivery),
            [OutForDelivery, Cancelled]
        );
        assert_eq!(
            allowed_transitions(Ready, Fulfilment::Pickup),
            [Completed, Cancelled]
        );
        assert_eq!(
            allowed_transitions(Ready, Fulfilment::InStore),
            [Completed, Cancelled]
        );
    }

    #[test]
    fn check_transition_explains_refusals() {
        assert_eq!(
            check_transition(Pending, Confirmed, Fulfilment::Pickup),
            Ok(())
        );
        assert_eq!(
            check_transition(Ready, Completed, Fulfilment::Delivery),
            Err(TransitionError {
                from: Ready,
                to: Completed,
                allowed: vec![OutForDelivery, Cancelled],
            })
        );
        assert!(check_transition(Ready, OutForDelivery, Fulfilment::InStore).is_err());
        assert!(check_transition(OutForDelivery, Cancelled, Fulfilment::Delivery).is_err());
        assert!(check_transition(Pending, Pending, Fulfilment::Pickup).is_err());
        let err = check_transition(Cancelled, Pending, Fulfilment::Pickup).unwrap_err();
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            serde_json::json!({"from": "cancelled", "to": "pending", "allowed": []})
        );
        assert_eq!(
            err.to_string(),
            "cannot move an order from cancelled to pending"
        );
    }

    #[test]
    fn every_path_ends_in_a_terminal_status() {
        // The graph is acyclic, so walking "first allowed" always terminates.
        for &f in Fulfilment::ALL {
            for &start in OrderStatus::ALL {
                let mut s = start;
                for _ in 0..OrderStatus::ALL.len() {
                    match allowed_transitions(s, f).first() {
                        Some(&next) => s = next,
                        None => break,
                    }
                }
                assert!(s.is_terminal(), "{start} via {f} stuck at {s}");
            }
        }
    }

    #[test]
    fn auto_complete_rule() {
        use Fulfilment::*;
        assert!(completes_on_full_payment(
            Pending,
            InStore,
            PaymentStatus::Paid
        ));
        assert!(!completes_on_full_payment(
            Pending,
            Pickup,
            PaymentStatus::Paid
        ));
        assert!(!completes_on_full_payment(
            Pending,
            InStore,
            PaymentStatus::PartiallyPaid
        ));
        assert!(!completes_on_full_payment(
            Cancelled,
            InStore,
            PaymentStatus::Paid
        ));
        assert!(!completes_on_full_payment(
            Completed,
            InStore,
            PaymentStatus::Paid
        ));
    }

    #[test]
    fn payment_status_rules() {
        use PaymentStatus::*;
        assert_eq!(payment_status(1000, 0, 0), Unpaid);
        assert_eq!(payment_status(1000, 400, 0), PartiallyPaid);
        assert_eq!(payment_status(1000, 1000, 0), Paid);
        assert_eq!(payment_status(1000, 1000, 1), PartiallyRefunded);
        assert_eq!(payment_status(1000, 1000, 1000), Refunded);
        assert_eq!(payment_status(1000, 400, 400), Refunded);
        assert_eq!(payment_status(1000, 400, 100), PartiallyRefunded);
        assert_eq!(payment_status(0, 0, 0), Unpaid);
    }

    #[test]
    fn balance_due_never_negative() {
        assert_eq!(balance_due(1000, 0), 1000);
        assert_eq!(balance_due(1000, 400), 600);
        assert_eq!(balance_due(1000, 1000), 0);
        assert_eq!(balance_due(1000, 1200), 0);
        assert_eq!(balance_due(i64::MIN, i64::MAX), 0);
    }
}
