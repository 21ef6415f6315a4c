//! till-domain: Till's pure rules, with no I/O.
//!
//! Everything here is a function of its arguments: value newtypes that can only hold valid
//! values, phone normalisation, roles, the order state machine and exact integer pricing. The
//! HTTP layer parses requests into these types, the database layer stores them; neither
//! re-implements a rule, so the rules can be tested (and property-tested) in isolation.

/// Closed sets of values spelled as lowercase strings on the wire and in the database.
///
/// Generates `ALL`, `as_str`, `Display` and `FromStr` from one table. serde is derived on the
/// enum itself with `rename_all`; each module has a test that the two spellings agree.
macro_rules! string_enum {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling used in JSON and in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::validation::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::validation::UnknownValue { allowed: &[$($text),+] }),
                }
            }
        }
    };
}

pub mod limits;
pub mod order;
pub mod phone;
pub mod pricing;
pub mod roles;
pub mod shift;
pub mod validation;
pub mod values;

pub use order::{
    allowed_transitions, balance_due, check_transition, completes_on_full_payment, payment_status,
    Channel, Fulfilment, MovementReason, OrderStatus, PaymentMethod, PaymentStatus,
    TransitionError,
};
pub use phone::{Phone, PhoneError};
pub use pricing::{
    discount_needs_manager, price_order, Discount, LineInput, PricedLine, PricedOrder, PricingError,
};
pub use roles::Role;
pub use shift::{difference_needs_manager, expected_opening, CashFlows, CashMovementType};
pub use validation::{FieldErrors, UnknownValue};
pub use values::{
    slugify, Barcode, Email, Password, PriceCents, ProductName, Quantity, Sku, TaxRateBp,
    ValueError,
};
