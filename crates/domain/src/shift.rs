//! Register shifts: the cash a drawer should hold, and what a close may leave unexplained.

use serde::{Deserialize, Serialize};

/// What moved cash in or out of one drawer during a shift.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CashFlows {
    /// Counted into the drawer when the shift opened.
    pub opening_float_cents: i64,
    /// Σ `amount_cents` of the shift's cash payments: the amount, never the tendered cash,
    /// because the change has already left the drawer.
    pub cash_sales_cents: i64,
    /// Σ of the shift's cash refunds.
    pub cash_refunds_cents: i64,
    pub paid_in_cents: i64,
    pub paid_out_cents: i64,
}

impl CashFlows {
    /// `opening_float + cash sales − cash refunds + paid in − paid out`. The opening
    /// difference is not in it: the float is what was counted, whatever was expected.
    pub fn expected_cash(&self) -> i64 {
        self.opening_float_cents + self.cash_sales_cents - self.cash_refunds_cents
            + self.paid_in_cents
            - self.paid_out_cents
    }
}

/// The cash a register's next shift should find: what the last one counted, less what it took
/// to the bank.
pub fn expected_opening(previous_counted_cents: i64, previous_deposit_cents: i64) -> i64 {
    previous_counted_cents - previous_deposit_cents
}

/// Whether a close with `difference_cents` (counted − expected, either way) needs a manager.
pub fn difference_needs_manager(difference_cents: i64, max_difference_cents: i64) -> bool {
    difference_cents.unsigned_abs() > max_difference_cents.unsigned_abs()
}

/// `paid_in` or `paid_out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CashMovementType {
    PaidIn,
    PaidOut,
}

string_enum!(CashMovementType {
    PaidIn => "paid_in",
    PaidOut => "paid_out",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_cash_counts_amounts_not_tendered_cash_and_leaves_the_opening_difference_out() {
        // Float 100.00; a 12.50 sale paid with a 20 note (7.50 change), a 3.00 cash refund,
        // 10.00 paid in, 25.00 paid out.
        let f = CashFlows {
            opening_float_cents: 10_000,
            cash_sales_cents: 1_250,
            cash_refunds_cents: 300,
            paid_in_cents: 1_000,
            paid_out_cents: 2_500,
        };
        assert_eq!(f.expected_cash(), 10_000 + 1_250 - 300 + 1_000 - 2_500);
        assert_eq!(CashFlows::default().expected_cash(), 0);
    }

    #[test]
    fn next_shift_expects_what_was_counted_less_the_deposit() {
        assert_eq!(expected_opening(25_000, 20_000), 5_000);
        assert_eq!(expected_opening(5_000, 0), 5_000);
    }

    #[test]
    fn only_a_difference_beyond_the_limit_needs_a_manager() {
        assert!(!difference_needs_manager(500, 500));
        assert!(!difference_needs_manager(-500, 500));
        assert!(difference_needs_manager(501, 500));
        assert!(difference_needs_manager(-501, 500));
        assert!(!difference_needs_manager(0, 0));
        assert!(difference_needs_manager(1, 0));
    }

    #[test]
    fn wire_names() {
        assert_eq!(CashMovementType::PaidIn.as_str(), "paid_in");
        assert_eq!(
            serde_json::to_string(&CashMovementType::PaidOut).unwrap(),
            "\"paid_out\""
        );
    }
}
