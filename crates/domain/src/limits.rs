//! The bounds every input obeys, whatever route it arrives on: no control characters in text,
//! money and stock deltas in ranges whose sums cannot overflow, dates PostgreSQL and a person
//! can both make sense of.
//!
//! The HTTP layer applies the text rule to every JSON string and query parameter before a
//! handler runs; use cases apply the number rules to the fields they read. Keeping the numbers
//! here means a total of many lines of maximum price times maximum quantity is provably far
//! below `i64::MAX` (10^10 × 1000 × 1000 lines = 10^16 < 9.2 × 10^18).

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::values::ValueError;

/// Highest `price_cents` of a product: 100 million in major units.
pub const MAX_PRICE_CENTS: i64 = 10_000_000_000;
/// Highest amount of any other `*_cents` input (payments, tendered cash, refunds, discounts).
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000_000;
/// Largest magnitude of a manual stock adjustment.
pub const MAX_STOCK_DELTA: i64 = 1_000_000;
/// Years a query date may name.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=9999;

/// Fields whose text is free-form and may span lines: `\n` and `\t` are allowed there.
pub const MULTILINE_FIELDS: &[&str] = &["note", "description", "delivery_address", "reason"];

/// Rejects NUL and the other C0 control characters (U+0000..U+001F); `\n` and `\t` pass when
/// `multiline`. PostgreSQL refuses NUL in text outright, and the others are never typed by a
/// person: they are log injection, terminal escapes or a fuzzer.
pub fn check_text(s: &str, multiline: bool) -> Result<(), ValueError> {
    let bad = |c: char| c < ' ' && !(multiline && (c == '\n' || c == '\t'));
    if s.chars().any(bad) {
        Err(if multiline {
            ValueError("must not contain control characters other than line breaks and tabs")
        } else {
            ValueError("must not contain control characters")
        })
    } else {
        Ok(())
    }
}

/// True when `field` (the last segment of a JSON path) names a multi-line text field.
pub fn is_multiline(field: &str) -> bool {
    MULTILINE_FIELDS.contains(&field)
}

/// A product price: 0..=10,000,000,000.
pub fn check_price_cents(n: i64) -> Result<i64, ValueError> {
    if (0..=MAX_PRICE_CENTS).contains(&n) {
        Ok(n)
    } else {
        Err(ValueError("must be between 0 and 10000000000"))
    }
}

/// Any other money input: 0..=1,000,000,000,000.
pub fn check_amount_cents(n: i64) -> Result<i64, ValueError> {
    if (0..=MAX_AMOUNT_CENTS).contains(&n) {
        Ok(n)
    } else {
        Err(ValueError("must be between 0 and 1000000000000"))
    }
}

/// A manual stock adjustment: not zero, at most 1,000,000 either way.
pub fn check_stock_delta(n: i64) -> Result<i64, ValueError> {
    if n == 0 {
        Err(ValueError("must not be 0"))
    } else if n.unsigned_abs() > MAX_STOCK_DELTA as u64 {
        Err(ValueError("must be between -1000000 and 1000000"))
    } else {
        Ok(n)
    }
}

/// A date in a query (`created_from`, `from`…): years 2000..=9999.
pub fn check_date(d: NaiveDate) -> Result<NaiveDate, ValueError> {
    if YEARS.contains(&d.year()) {
        Ok(d)
    } else {
        Err(ValueError("must be a date in the years 2000 to 9999"))
    }
}

/// A timestamp in a query: years 2000..=9999.
pub fn check_timestamp(t: DateTime<Utc>) -> Result<DateTime<Utc>, ValueError> {
    check_date(t.date_naive()).map(|_| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters() {
        assert!(check_text("Flat white", false).is_ok());
        assert!(
            check_text("é ☕ \u{7f}", false).is_ok(),
            "DEL and non-ASCII are text"
        );
        assert!(check_text("a\0b", false).is_err());
        assert!(check_text("a\0b", true).is_err(), "NUL is never allowed");
        assert!(check_text("line\nline", false).is_err());
        assert!(check_text("line\nline\tcol", true).is_ok());
        assert!(check_text("esc\u{1b}[31m", true).is_err());
        assert!(check_text("cr\r", true).is_err());
        assert!(is_multiline("note") && !is_multiline("name"));
    }

    #[test]
    fn number_bounds() {
        assert!(check_price_cents(0).is_ok());
        assert!(check_price_cents(MAX_PRICE_CENTS).is_ok());
        assert!(check_price_cents(MAX_PRICE_CENTS + 1).is_err());
        assert!(check_price_cents(-1).is_err());
        assert!(check_amount_cents(MAX_AMOUNT_CENTS).is_ok());
        assert!(check_amount_cents(MAX_AMOUNT_CENTS + 1).is_err());
        assert!(check_amount_cents(i64::MIN).is_err());
        assert!(check_stock_delta(0).is_err());
        assert!(check_stock_delta(-MAX_STOCK_DELTA).is_ok());
        assert!(check_stock_delta(MAX_STOCK_DELTA + 1).is_err());
        assert!(
            check_stock_delta(i64::MIN).is_err(),
            "abs must not overflow"
        );
        // The bound that makes totals safe: max price × max quantity × many lines.
        assert!(MAX_PRICE_CENTS
            .checked_mul(crate::Quantity::MAX)
            .and_then(|v| v.checked_mul(1000))
            .is_some());
    }

    #[test]
    fn date_bounds() {
        let d = |y| NaiveDate::from_ymd_opt(y, 1, 1).unwrap();
        assert!(check_date(d(2000)).is_ok());
        assert!(check_date(d(9999)).is_ok());
        assert!(check_date(d(1999)).is_err());
        assert!(check_date(d(-5000)).is_err());
    }
}
