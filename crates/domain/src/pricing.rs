//! Exact order pricing: the five steps of docs/api.md, Pricing, in integer cents, no floats
//! anywhere.
//!
//! 1. `line.subtotal = unit_price × quantity`; `order.subtotal = Σ line.subtotal`.
//! 2. `discount = round_half_up(subtotal × value_bp / 10000)` or `amount_cents`.
//! 3. The discount is spread over lines in proportion to `line.subtotal`: each line gets
//!    `floor(discount × line.subtotal / subtotal)`, and the cents left over go one each to the
//!    lines with the largest remainders (ties: earlier line first). This is the
//!    largest-remainder method: the parts add up to the discount exactly and none is more than
//!    a cent from its exact share, which keeps receipts, refunds and tax reports reconcilable.
//! 4. `line.tax = round_half_up((line.subtotal − line.discount) × tax_rate_bp / 10000)`;
//!    `line.total = subtotal − discount + tax`. Tax is per line because rates differ per line,
//!    and on the discounted amount because that is what the customer pays.
//! 5. `order.tax = Σ line.tax`; `order.total = subtotal − discount + tax`.
//!
//! Arithmetic is done in `i128` so that intermediate products (`discount × line.subtotal`)
//! cannot overflow; results that do not fit `i64` are an error, never a wrap or a panic.

use serde::{Deserialize, Serialize};

use crate::validation::FieldErrors;

/// 100 %, in basis points.
const FULL_BP: i128 = 10_000;
/// Discounts above this many basis points (20 %) need a manager.
const CASHIER_DISCOUNT_LIMIT_BP: i128 = 2_000;

/// One line as priced: the product's price and tax rate copied at order time, and the quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineInput {
    /// Price of one unit, tax excluded, ≥ 0.
    pub unit_price_cents: i64,
    /// Units on the line, ≥ 0 (the order API allows 1..=1000).
    pub quantity: i64,
    /// Tax rate in basis points, 0..=10000.
    pub tax_rate_bp: i64,
}

/// An order-level discount, exactly as the request body spells it:
/// `{"type": "percent", "value_bp": 1000}` or `{"type": "amount", "amount_cents": 500}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Discount {
    /// A share of the subtotal in basis points, 0..=10000 (1000 = 10 %).
    Percent {
        /// Basis points off the subtotal.
        value_bp: i64,
    },
    /// A fixed number of cents off, 0..=subtotal.
    Amount {
        /// Cents off the subtotal.
        amount_cents: i64,
    },
}

/// One priced line. `total = subtotal − discount + tax`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PricedLine {
    /// `unit_price × quantity`.
    pub subtotal_cents: i64,
    /// This line's share of the order discount.
    pub discount_cents: i64,
    /// Tax on the discounted line amount.
    pub tax_cents: i64,
    /// What the line costs the customer.
    pub total_cents: i64,
}

/// A priced order: lines in input order plus the order totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PricedOrder {
    /// One entry per input line, same order.
    pub lines: Vec<PricedLine>,
    /// Σ line subtotals.
    pub subtotal_cents: i64,
    /// The whole discount (= Σ line discounts).
    pub discount_cents: i64,
    /// Σ line taxes.
    pub tax_cents: i64,
    /// `subtotal − discount + tax`.
    pub total_cents: i64,
}

/// Why an order could not be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// Percent discount outside 0..=10000 basis points.
    #[error("discount value_bp must be between 0 and 10000")]
    InvalidPercent {
        /// The rejected value.
        value_bp: i64,
    },
    /// Negative amount discount.
    #[error("discount amount_cents must be 0 or more")]
    NegativeAmount {
        /// The rejected value.
        amount_cents: i64,
    },
    /// An amount discount larger than the subtotal (docs/api.md, Orders/Create: 422).
    #[error("discount of {discount_cents} cents exceeds the subtotal of {subtotal_cents} cents")]
    DiscountExceedsSubtotal {
        /// The requested discount.
        discount_cents: i64,
        /// The order subtotal.
        subtotal_cents: i64,
    },
    /// A line with a negative price or quantity, or a tax rate outside 0..=10000.
    #[error("line {index}: {message}")]
    InvalidLine {
        /// Zero-based position of the line.
        index: usize,
        /// What is wrong with it.
        message: &'static str,
    },
    /// An amount does not fit in i64 cents.
    #[error("order amounts are too large")]
    Overflow,
}

impl PricingError {
    /// The error as a 422 `details.fields` entry, keyed by the request field it concerns.
    pub fn to_field_errors(&self) -> FieldErrors {
        let mut errors = FieldErrors::new();
        match self {
            PricingError::InvalidPercent { .. } => {
                errors.add("discount.value_bp", "must be between 0 and 10000")
            }
            PricingError::NegativeAmount { .. } => {
                errors.add("discount.amount_cents", "must be 0 or more")
            }
            PricingError::DiscountExceedsSubtotal { subtotal_cents, .. } => errors.add(
                "discount.amount_cents",
                format!("must not exceed the order subtotal ({subtotal_cents})"),
            ),
            PricingError::InvalidLine { index, message } => {
                errors.add(format!("lines[{index}]"), *message)
            }
            PricingError::Overflow => errors.add("lines", "order total is too large"),
        };
        errors
    }
}

/// `round(n / d)` with halves rounded up, for `n ≥ 0`, `d > 0`: `floor((2n + d) / 2d)`.
fn round_half_up(n: i128, d: i128) -> i128 {
    (2 * n + d) / (2 * d)
}

fn to_i64(n: i128) -> Result<i64, PricingError> {
    i64::try_from(n).map_err(|_| PricingError::Overflow)
}

/// Step 2: the discount in cents for `subtotal`, validated.
fn discount_cents(discount: Option<&Discount>, subtotal: i128) -> Result<i128, PricingError> {
    match discount {
        None => Ok(0),
        Some(&Discount::Percent { value_bp }) => {
            if !(0..=FULL_BP).contains(&i128::from(value_bp)) {
                return Err(PricingError::InvalidPercent { value_bp });
            }
            // value_bp ≤ 10000, so the result never exceeds the subtotal.
            Ok(round_half_up(subtotal * i128::from(value_bp), FULL_BP))
        }
        Some(&Discount::Amount { amount_cents }) => {
            let amount = i128::from(amount_cents);
            if amount < 0 {
                return Err(PricingError::NegativeAmount { amount_cents });
            }
            if amount > subtotal {
                return Err(PricingError::DiscountExceedsSubtotal {
                    discount_cents: amount_cents,
                    subtotal_cents: to_i64(subtotal)?,
                });
            }
            Ok(amount)
        }
    }
}

/// Step 3: split `discount` (≤ `subtotal`) over `subtotals` by largest remainder.
fn spread(discount: i128, subtotals: &[i128], subtotal: i128) -> Vec<i128> {
    if subtotal == 0 {
        return vec![0; subtotals.len()];
    }
    let mut shares: Vec<i128> = Vec::with_capacity(subtotals.len());
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(subtotals.len());
    for (index, &line) in subtotals.iter().enumerate() {
        let exact = discount * line;
        shares.push(exact / subtotal);
        remainders.push((exact % subtotal, index));
    }
    let given: i128 = shares.iter().sum();
    // Σ remainders = subtotal × leftover and each remainder < subtotal, so at least
    // `leftover` lines have a non-zero remainder and each line gains at most one cent.
    let leftover = usize::try_from(discount - given).unwrap_or(0);
    // Largest remainder first; on a tie, the earlier line.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, index) in remainders.iter().take(leftover) {
        shares[index] += 1;
    }
    shares
}

fn check_line(index: usize, line: &LineInput) -> Result<(), PricingError> {
    let message = if line.unit_price_cents < 0 {
        "unit_price_cents must be 0 or more"
    } else if line.quantity < 0 {
        "quantity must be 0 or more"
    } else if !(0..=FULL_BP).contains(&i128::from(line.tax_rate_bp)) {
        "tax_rate_bp must be between 0 and 10000"
    } else {
        return Ok(());
    };
    Err(PricingError::InvalidLine { index, message })
}

/// Price an order per the five steps of docs/api.md, Pricing (see the module doc).
///
/// Errors: a malformed discount (`InvalidPercent`, `NegativeAmount`), an amount discount over
/// the subtotal (`DiscountExceedsSubtotal`), a malformed line, or totals beyond `i64`.
pub fn price_order(
    lines: &[LineInput],
    discount: Option<&Discount>,
) -> Result<PricedOrder, PricingError> {
    // Step 1. Each line subtotal must fit i64 (so their i128 sum cannot overflow), and so must
    // the order subtotal, which bounds every later product to < 2^126.
    let mut subtotals = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        check_line(index, line)?;
        let line_subtotal = i128::from(line.unit_price_cents) * i128::from(line.quantity);
        to_i64(line_subtotal)?;
        subtotals.push(line_subtotal);
    }
    let subtotal: i128 = subtotals.iter().sum();
    to_i64(subtotal)?;

    // Steps 2 and 3.
    let discount = discount_cents(discount, subtotal)?;
    let shares = spread(discount, &subtotals, subtotal);

    // Steps 4 and 5.
    let mut priced = Vec::with_capacity(lines.len());
    let mut tax: i128 = 0;
    for ((line, &line_subtotal), &line_discount) in lines.iter().zip(&subtotals).zip(&shares) {
        let taxable = line_subtotal - line_discount;
        let line_tax = round_half_up(taxable * i128::from(line.tax_rate_bp), FULL_BP);
        tax += line_tax;
        priced.push(PricedLine {
            subtotal_cents: to_i64(line_subtotal)?,
            discount_cents: to_i64(line_discount)?,
            tax_cents: to_i64(line_tax)?,
            total_cents: to_i64(taxable + line_tax)?,
        });
    }
    Ok(PricedOrder {
        lines: priced,
        subtotal_cents: to_i64(subtotal)?,
        discount_cents: to_i64(discount)?,
        tax_cents: to_i64(tax)?,
        total_cents: to_i64(subtotal - discount + tax)?,
    })
}

/// Whether `discount` on an order with this subtotal needs manager+ (docs/api.md, Orders/Create:
/// cashiers may give up to 20 %): a percent above 2000 bp, or an amount above 20 % of the
/// subtotal (`amount × 10000 > subtotal × 2000`, compared exactly in integers).
pub fn discount_needs_manager(discount: &Discount, subtotal_cents: i64) -> bool {
    match *discount {
        Discount::Percent { value_bp } => i128::from(value_bp) > CASHIER_DISCOUNT_LIMIT_BP,
        Discount::Amount { amount_cents } => {
            i128::from(amount_cents) * FULL_BP
                > i128::from(subtotal_cents) * CASHIER_DISCOUNT_LIMIT_BP
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(unit_price_cents: i64, quantity: i64, tax_rate_bp: i64) -> LineInput {
        LineInput {
            unit_price_cents,
            quantity,
            tax_rate_bp,
        }
    }

    fn priced(subtotal: i64, discount: i64, tax: i64) -> PricedLine {
        PricedLine {
            subtotal_cents: subtotal,
            discount_cents: discount,
            tax_cents: tax,
            total_cents: subtotal - discount + tax,
        }
    }

    #[test]
    fn worked_example_three_lines_ten_percent() {
        // Step 1: subtotals 1000×1 = 1000, 250×3 = 750, 199×2 = 398; order subtotal 2148.
        // Step 2: 2148 × 1000 / 10000 = 214.8 → 215.
        // Step 3: 215×1000 = 215000 = 100×2148 + 200   → 100, remainder  200
        //         215× 750 = 161250 =  75×2148 + 150   →  75, remainder  150
        //         215× 398 =  85570 =  39×2148 + 1798  →  39, remainder 1798
        //         floors sum to 214; the 1 cent left goes to the largest remainder (line 3) → 40.
        // Step 4: line 1 (1000−100) × 825/10000 = 900 × 0.0825 = 74.25 → 74;  total 900+74 = 974
        //         line 2 (750−75) × 0 = 0;                                      total 675
        //         line 3 (398−40) × 1000/10000 = 35.8 → 36;                     total 358+36 = 394
        // Step 5: tax 74+0+36 = 110; total 2148 − 215 + 110 = 2043 (= 974 + 675 + 394).
        let order = price_order(
            &[line(1000, 1, 825), line(250, 3, 0), line(199, 2, 1000)],
            Some(&Discount::Percent { value_bp: 1000 }),
        )
        .unwrap();
        assert_eq!(
            order,
            PricedOrder {
                lines: vec![
                    priced(1000, 100, 74),
                    priced(750, 75, 0),
                    priced(398, 40, 36)
                ],
                subtotal_cents: 2148,
                discount_cents: 215,
                tax_cents: 110,
                total_cents: 2043,
            }
        );
    }

    #[test]
    fn no_discount_and_half_up_tax() {
        // 1000 × 8.25 % = 82.5 → 83 (half rounds up); 200 × 8.25 % = 16.5 → 17;
        // 30 × 8.25 % = 2.475 → 2.
        let order = price_order(
            &[line(1000, 1, 825), line(100, 2, 825), line(30, 1, 825)],
            None,
        )
        .unwrap();
        assert_eq!(
            order.lines,
            vec![priced(1000, 0, 83), priced(200, 0, 17), priced(30, 0, 2)]
        );
        assert_eq!(order.subtotal_cents, 1230);
        assert_eq!(order.tax_cents, 102);
        assert_eq!(order.total_cents, 1332);
    }

    #[test]
    fn amount_discount_ties_go_to_the_earlier_line() {
        // Subtotals 100, 100, 100 = 300; discount 2: each exact share is 0.667, floors 0,
        // remainders all 200, so the 2 cents go to lines 1 and 2.
        let order = price_order(
            &[line(100, 1, 0), line(100, 1, 0), line(100, 1, 0)],
            Some(&Discount::Amount { amount_cents: 2 }),
        )
        .unwrap();
        let discounts: Vec<i64> = order.lines.iter().map(|l| l.discount_cents).collect();
        assert_eq!(discounts, [1, 1, 0]);
        assert_eq!(order.total_cents, 298);
    }

    #[test]
    fn amount_discount_uneven_split() {
        // Subtotals 500 (5×100), 300, 200 = 1000; discount 333 cents.
        // 333×500/1000 = 166.5 → 166 r 500; 333×300/1000 = 99.9 → 99 r 900;
        // 333×200/1000 = 66.6 → 66 r 600. Floors sum 331; 2 left → line 2 (900), line 3 (600).
        // Taxes at 10 %: (500−166)=334 → 33.4 → 33; (300−100)=200 → 20; (200−67)=133 → 13.3 → 13.
        let order = price_order(
            &[line(100, 5, 1000), line(300, 1, 1000), line(200, 1, 1000)],
            Some(&Discount::Amount { amount_cents: 333 }),
        )
        .unwrap();
        assert_eq!(
            order.lines,
            vec![
                priced(500, 166, 33),
                priced(300, 100, 20),
                priced(200, 67, 13)
            ]
        );
        assert_eq!(order.total_cents, 1000 - 333 + 66);
    }

    #[test]
    fn percent_discount_rounds_half_up() {
        // 150 × 5 % = 7.5 → 8.
        let order = price_order(
            &[line(150, 1, 0)],
            Some(&Discount::Percent { value_bp: 500 }),
        )
        .unwrap();
        assert_eq!(order.discount_cents, 8);
        // 100 % off leaves nothing to tax.
        let order = price_order(
            &[line(999, 3, 825)],
            Some(&Discount::Percent { value_bp: 10_000 }),
        )
        .unwrap();
        assert_eq!(order.lines, vec![priced(2997, 2997, 0)]);
        assert_eq!(order.total_cents, 0);
    }

    #[test]
    fn zero_subtotal() {
        let order = price_order(
            &[line(0, 3, 825), line(0, 1, 0)],
            Some(&Discount::Percent { value_bp: 5000 }),
        )
        .unwrap();
        assert_eq!(order.lines, vec![priced(0, 0, 0), priced(0, 0, 0)]);
        assert_eq!(order.total_cents, 0);
        assert_eq!(
            price_order(
                &[line(0, 1, 0)],
                Some(&Discount::Amount { amount_cents: 0 })
            )
            .unwrap()
            .discount_cents,
            0
        );
        assert_eq!(price_order(&[], None).unwrap().total_cents, 0);
    }

    #[test]
    fn discount_errors() {
        let lines = [line(1000, 1, 0)];
        assert_eq!(
            price_order(&lines, Some(&Discount::Percent { value_bp: 10_001 })),
            Err(PricingError::InvalidPercent { value_bp: 10_001 })
        );
        assert_eq!(
            price_order(&lines, Some(&Discount::Percent { value_bp: -1 })),
            Err(PricingError::InvalidPercent { value_bp: -1 })
        );
        assert_eq!(
            price_order(&lines, Some(&Discount::Amount { amount_cents: -1 })),
            Err(PricingError::NegativeAmount { amount_cents: -1 })
        );
        let err = price_order(&lines, Some(&Discount::Amount { amount_cents: 1001 })).unwrap_err();
        assert_eq!(
            err,
            PricingError::DiscountExceedsSubtotal {
                discount_cents: 1001,
                subtotal_cents: 1000
            }
        );
        assert_eq!(
            serde_json::to_value(err.to_field_errors()).unwrap(),
            serde_json::json!({"discount.amount_cents": ["must not exceed the order subtotal (1000)"]})
        );
        assert!(price_order(&lines, Some(&Discount::Amount { amount_cents: 1000 })).is_ok());
    }

    #[test]
    fn line_errors_and_overflow() {
        assert_eq!(
            price_order(&[line(1, 1, 0), line(-1, 1, 0)], None),
            Err(PricingError::InvalidLine {
                index: 1,
                message: "unit_price_cents must be 0 or more"
            })
        );
        assert!(matches!(
            price_order(&[line(1, -1, 0)], None),
            Err(PricingError::InvalidLine { index: 0, .. })
        ));
        assert!(matches!(
            price_order(&[line(1, 1, 10_001)], None),
            Err(PricingError::InvalidLine { index: 0, .. })
        ));
        assert_eq!(
            price_order(&[line(i64::MAX, 2, 0)], None),
            Err(PricingError::Overflow)
        );
        assert_eq!(
            price_order(&[line(i64::MAX, 1, 0), line(1, 1, 0)], None),
            Err(PricingError::Overflow)
        );
        // Subtotal fits, but adding 100 % tax does not.
        assert_eq!(
            price_order(&[line(i64::MAX, 1, 10_000)], None),
            Err(PricingError::Overflow)
        );
        assert_eq!(
            price_order(&[line(i64::MAX, 1, 0)], None)
                .unwrap()
                .total_cents,
            i64::MAX
        );
    }

    #[test]
    fn discount_json_shape() {
        let percent: Discount =
            serde_json::from_str(r#"{"type":"percent","value_bp":1000}"#).unwrap();
        assert_eq!(percent, Discount::Percent { value_bp: 1000 });
        let amount: Discount =
            serde_json::from_str(r#"{"type":"amount","amount_cents":500}"#).unwrap();
        assert_eq!(amount, Discount::Amount { amount_cents: 500 });
        assert_eq!(
            serde_json::to_value(amount).unwrap(),
            serde_json::json!({"type": "amount", "amount_cents": 500})
        );
        for bad in [
            r#"{"type":"percent","value_bp":1000,"extra":1}"#,
            r#"{"type":"percent","amount_cents":500}"#,
            r#"{"type":"amount","amount_cents":5.5}"#,
            r#"{"type":"fixed","amount_cents":500}"#,
            r#"{"value_bp":1000}"#,
        ] {
            assert!(serde_json::from_str::<Discount>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn manager_threshold() {
        let p = |value_bp| Discount::Percent { value_bp };
        let a = |amount_cents| Discount::Amount { amount_cents };
        assert!(!discount_needs_manager(&p(2000), 1000));
        assert!(discount_needs_manager(&p(2001), 1000));
        // 20 % of 1000 is 200.
        assert!(!discount_needs_manager(&a(200), 1000));
        assert!(discount_needs_manager(&a(201), 1000));
        // 20 % of 999 is 199.8: 199 is fine, 200 is above.
        assert!(!discount_needs_manager(&a(199), 999));
        assert!(discount_needs_manager(&a(200), 999));
        assert!(!discount_needs_manager(&a(0), 0));
        assert!(discount_needs_manager(&a(1), 0));
    }

    /// Lines with small prices (many remainders and ties) or realistic ones.
    fn lines_strategy() -> impl Strategy<Value = Vec<LineInput>> {
        let price = prop_oneof![0..=50i64, 0..=1_000_000i64];
        prop::collection::vec(
            (price, 1..=1000i64, 0..=10_000i64).prop_map(|(p, q, t)| line(p, q, t)),
            1..=20,
        )
    }

    /// Lines plus a discount that is valid for their subtotal.
    fn order_strategy() -> impl Strategy<Value = (Vec<LineInput>, Option<Discount>)> {
        lines_strategy().prop_flat_map(|lines| {
            let subtotal: i64 = lines.iter().map(|l| l.unit_price_cents * l.quantity).sum();
            let discount = prop_oneof![
                Just(None),
                (0..=10_000i64).prop_map(|value_bp| Some(Discount::Percent { value_bp })),
                (0..=subtotal).prop_map(|amount_cents| Some(Discount::Amount { amount_cents })),
            ];
            (Just(lines), discount)
        })
    }

    proptest! {
        #[test]
        fn pricing_invariants((lines, discount) in order_strategy()) {
            let order = price_order(&lines, discount.as_ref()).unwrap();
            prop_assert_eq!(order.lines.len(), lines.len());

            let sum = |f: fn(&PricedLine) -> i64| order.lines.iter().map(f).sum::<i64>();
            prop_assert_eq!(sum(|l| l.discount_cents), order.discount_cents);
            prop_assert_eq!(sum(|l| l.subtotal_cents), order.subtotal_cents);
            prop_assert_eq!(sum(|l| l.tax_cents), order.tax_cents);
            prop_assert_eq!(sum(|l| l.total_cents), order.total_cents);
            prop_assert_eq!(
                order.total_cents,
                order.subtotal_cents - order.discount_cents + order.tax_cents
            );
            prop_assert!(order.discount_cents <= order.subtotal_cents);

            let (s, d) = (i128::from(order.subtotal_cents), i128::from(order.discount_cents));
            for (input, l) in lines.iter().zip(&order.lines) {
                prop_assert_eq!(l.subtotal_cents, input.unit_price_cents * input.quantity);
                prop_assert!(l.subtotal_cents >= 0 && l.discount_cents >= 0);
                prop_assert!(l.tax_cents >= 0 && l.total_cents >= 0);
                prop_assert!(l.discount_cents <= l.subtotal_cents);
                prop_assert_eq!(l.total_cents, l.subtotal_cents - l.discount_cents + l.tax_cents);
                // Within one cent of the exact proportional share: |d_i − D·s_i/S| < 1.
                if s > 0 {
                    let off = i128::from(l.discount_cents) * s - d * i128::from(l.subtotal_cents);
                    prop_assert!(off.abs() < s, "line {:?} off by {}/{}", l, off, s);
                } else {
                    prop_assert_eq!(l.discount_cents, 0);
                }
            }
        }

        #[test]
        fn percent_discount_is_rounded_share((lines, value_bp) in (lines_strategy(), 0..=10_000i64)) {
            let order = price_order(&lines, Some(&Discount::Percent { value_bp })).unwrap();
            // |discount − subtotal·bp/10000| ≤ 1/2, with halves going up.
            let exact2 = 2 * i128::from(order.subtotal_cents) * i128::from(value_bp);
            let got2 = 2 * i128::from(order.discount_cents) * 10_000;
            prop_assert!(got2 - exact2 <= 10_000 && exact2 - got2 < 10_000);
        }

        #[test]
        fn amount_over_subtotal_is_rejected(lines in lines_strategy(), extra in 1..=1_000i64) {
            let subtotal: i64 = lines.iter().map(|l| l.unit_price_cents * l.quantity).sum();
            let discount = Discount::Amount { amount_cents: subtotal + extra };
            let is_exceeds = matches!(
                price_order(&lines, Some(&discount)),
                Err(PricingError::DiscountExceedsSubtotal { .. })
            );
            prop_assert!(is_exceeds);
        }

        #[test]
        fn huge_values_error_instead_of_panicking(
            lines in prop::collection::vec(
                (0..=i64::MAX, 0..=i64::MAX, 0..=10_000i64).prop_map(|(p, q, t)| line(p, q, t)),
                1..=4,
            ),
            value_bp in 0..=10_000i64,
        ) {
            match price_order(&lines, Some(&Discount::Percent { value_bp })) {
                Ok(order) => prop_assert_eq!(
                    order.total_cents,
                    order.subtotal_cents - order.discount_cents + order.tax_cents
                ),
                Err(e) => prop_assert_eq!(e, PricingError::Overflow),
            }
        }
    }
}
