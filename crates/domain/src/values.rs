//! Value newtypes that can only hold valid values ("parse, don't validate").
//!
//! Each is built once at the edge (HTTP body, config, seed data) with `parse`; everything past
//! that point can rely on the invariant without checking again. Every newtype serialises as its
//! inner value, so it can sit in a response struct unchanged. String newtypes also deserialise
//! through `parse`, so an invalid value can never be smuggled in through serde.
//!
//! Error messages are written to follow the field name in `details.fields`
//! (`"sku": ["must be 1 to 64 characters"]`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a value was rejected: a short human sentence, safe to show to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub &'static str);

impl ValueError {
    /// The message, for `details.fields`.
    pub fn message(&self) -> &'static str {
        self.0
    }
}

/// Shared plumbing for string newtypes: accessors, `Display`, `FromStr`, `TryFrom<String>`
/// (which serde's `try_from` uses) and the conversion back out.
macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The validated text, owned.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValueError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

/// Shared plumbing for integer newtypes: `get`, `Display`, `TryFrom<i64>` and back.
macro_rules! int_newtype {
    ($name:ident) => {
        impl $name {
            /// The validated number.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl TryFrom<i64> for $name {
            type Error = ValueError;
            fn try_from(n: i64) -> Result<Self, Self::Error> {
                Self::parse(n)
            }
        }

        impl From<$name> for i64 {
            fn from(value: $name) -> i64 {
                value.0
            }
        }
    };
}

/// A stock-keeping unit: 1..64 of `[A-Za-z0-9._-]`.
///
/// Not trimmed and case is kept: SKUs are matched exactly (`/products/lookup?code=`), so the
/// stored value must be exactly what was typed or scanned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Sku(String);

impl Sku {
    /// Longest accepted SKU, in characters (all ASCII, so also bytes).
    pub const MAX_LEN: usize = 64;

    /// Accept exactly 1..=64 characters from `[A-Za-z0-9._-]`.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(ValueError("must be 1 to 64 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(ValueError(
                "may only contain letters, digits, '.', '_' and '-'",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}
string_newtype!(Sku);

/// A barcode as scanned: 1..64 visible ASCII characters, no whitespace.
///
/// Usually digits (EAN-13, UPC-A), but Code 128 and QR labels carry letters and punctuation,
/// so anything printable is kept verbatim for exact matching.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Barcode(String);

impl Barcode {
    /// Longest accepted barcode, in characters.
    pub const MAX_LEN: usize = 64;

    /// Accept exactly 1..=64 characters in `'!'..='~'`.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(ValueError("must be 1 to 64 characters"));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ValueError(
                "may only contain visible ASCII characters, without spaces",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}
string_newtype!(Barcode);

/// A product's display name: trimmed, 1..=200 characters, no control characters.
///
/// Trimmed because stray spaces from a form make names that look equal sort and search apart;
/// control characters (newlines, tabs) would break receipts and the board's one-line layout.
/// Length counts Unicode scalar values, not bytes, so "Café" is 4.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ProductName(String);

impl ProductName {
    /// Longest accepted name, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Trim, then accept 1..=200 characters without control characters.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ValueError("must not be blank"));
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(ValueError("must be at most 200 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(ValueError("must not contain control characters"));
        }
        Ok(Self(s.to_owned()))
    }
}
string_newtype!(ProductName);

/// An email address, trimmed and lowercased.
///
/// Lowercased whole (local part too) so that `Ann@Shop.com` and `ann@shop.com` are one account:
/// case-sensitive local parts exist in the RFC but not in practice, and a duplicate account is
/// worse than that corner. The check is deliberately shallow (one `@`, a dotted domain, no
/// spaces, ≤ 254): the only real proof of an address is mail reaching it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Email(String);

impl Email {
    /// Longest accepted address (RFC 5321 path limit), in characters.
    pub const MAX_LEN: usize = 254;

    /// Trim and lowercase, then check the shape.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        const SHAPE: ValueError = ValueError("must be an email address like name@example.com");
        let s = s.trim().to_lowercase();
        if s.is_empty() {
            return Err(ValueError("must not be blank"));
        }
        if s.chars().count() > Self::MAX_LEN {
            return Err(ValueError("must be at most 254 characters"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(SHAPE);
        }
        let (local, domain) = s.split_once('@').ok_or(SHAPE)?;
        if local.is_empty() || domain.contains('@') {
            return Err(SHAPE);
        }
        // A dotted domain with no empty label: rejects "a@b", "a@.b", "a@b.", "a@b..c".
        if !domain.contains('.') || domain.split('.').any(str::is_empty) {
            return Err(SHAPE);
        }
        Ok(Self(s))
    }

    /// The part after `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit('@').next().unwrap_or_default()
    }
}
string_newtype!(Email);

/// Password policy. Not a newtype on purpose: the plain text should live no longer than the
/// hashing call, so there is nothing worth keeping in a value.
pub struct Password;

impl Password {
    /// Shortest accepted password, in characters.
    pub const MIN_CHARS: usize = 8;
    /// Longest accepted password, in characters; bounds the Argon2 input.
    pub const MAX_CHARS: usize = 128;

    /// Accept 8..=128 characters (Unicode scalar values; spaces count — passphrases are fine).
    pub fn check(s: &str) -> Result<(), ValueError> {
        let n = s.chars().count();
        if n < Self::MIN_CHARS {
            Err(ValueError("must be at least 8 characters"))
        } else if n > Self::MAX_CHARS {
            Err(ValueError("must be at most 128 characters"))
        } else {
            Ok(())
        }
    }
}

/// A tax rate in basis points (825 = 8.25 %), 0..=10000.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(into = "i64", try_from = "i64")]
pub struct TaxRateBp(i64);

impl TaxRateBp {
    /// 100 %, in basis points.
    pub const MAX: i64 = 10_000;

    /// Accept 0..=10000.
    pub fn parse(n: i64) -> Result<Self, ValueError> {
        if (0..=Self::MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(ValueError("must be between 0 and 10000 basis points"))
        }
    }
}
int_newtype!(TaxRateBp);

/// A price in minor units (cents), 0..=10,000,000,000. Zero is allowed: free items and samples
/// exist. The cap keeps every order total far from overflow (see `limits`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(into = "i64", try_from = "i64")]
pub struct PriceCents(i64);

impl PriceCents {
    /// Accept 0..=[`crate::limits::MAX_PRICE_CENTS`].
    pub fn parse(n: i64) -> Result<Self, ValueError> {
        crate::limits::check_price_cents(n).map(Self)
    }
}
int_newtype!(PriceCents);

/// A line quantity, 1..=1000. The cap stops a typo (or a hostile client) from reserving a
/// whole warehouse in one line and keeps `price × quantity` far from overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "i64", try_from = "i64")]
pub struct Quantity(i64);

impl Quantity {
    /// Largest quantity on one line.
    pub const MAX: i64 = 1000;

    /// Accept 1..=1000.
    pub fn parse(n: i64) -> Result<Self, ValueError> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(ValueError("must be between 1 and 1000"))
        }
    }
}
int_newtype!(Quantity);

/// A URL-friendly slug for a category name: lowercase ASCII letters and digits, every run of
/// anything else turned into one `-`, no `-` at either end (`"Hot Drinks & Tea"` →
/// `"hot-drinks-tea"`).
///
/// Non-ASCII letters count as separators rather than being transliterated, so the result is
/// predictable without a Unicode table; it may therefore be empty (`"☕"` → `""`) and the
/// caller decides what to do then.
pub fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    let mut pending_dash = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !slug.is_empty() {
                slug.push('-');
            }
            pending_dash = false;
            slug.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
    }
    slug
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sku_accepts_alphabet_and_bounds() {
        assert_eq!(Sku::parse("ABC-123_x.9").unwrap().as_str(), "ABC-123_x.9");
        assert!(Sku::parse(&"a".repeat(64)).is_ok());
        assert!(Sku::parse(&"a".repeat(65)).is_err());
        assert!(Sku::parse("").is_err());
        assert!(Sku::parse(" ABC").is_err());
        assert!(Sku::parse("AB/C").is_err());
        assert!(Sku::parse("café").is_err());
    }

    #[test]
    fn barcode_visible_ascii_only() {
        assert!(Barcode::parse("4006381333931").is_ok());
        assert!(Barcode::parse("CODE128-!~").is_ok());
        assert!(Barcode::parse("400 638").is_err());
        assert!(Barcode::parse("400\t638").is_err());
        assert!(Barcode::parse("").is_err());
        assert!(Barcode::parse("é").is_err());
        assert!(Barcode::parse(&"1".repeat(64)).is_ok());
        assert!(Barcode::parse(&"1".repeat(65)).is_err());
    }

    #[test]
    fn product_name_trims_and_counts_chars() {
        assert_eq!(
            ProductName::parse("  Flat White ").unwrap().as_str(),
            "Flat White"
        );
        assert!(ProductName::parse("   ").is_err());
        assert!(ProductName::parse(&"é".repeat(200)).is_ok());
        assert!(ProductName::parse(&"é".repeat(201)).is_err());
        assert!(ProductName::parse("two\nlines").is_err());
    }

    #[test]
    fn email_normalises_and_checks_shape() {
        assert_eq!(
            Email::parse("  Ann.Lee+till@Shop.Example.COM ")
                .unwrap()
                .as_str(),
            "ann.lee+till@shop.example.com"
        );
        assert_eq!(Email::parse("a@b.co").unwrap().domain(), "b.co");
        for bad in [
            "",
            "ann",
            "@shop.com",
            "ann@",
            "ann@shop",
            "ann@@shop.com",
            "a@b@shop.com",
            "ann@.shop.com",
            "ann@shop.com.",
            "ann@shop..com",
            "ann lee@shop.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long_local = "a".repeat(254 - "@b.co".len());
        assert!(Email::parse(&format!("{long_local}@b.co")).is_ok());
        assert!(Email::parse(&format!("a{long_local}@b.co")).is_err());
    }

    #[test]
    fn password_length() {
        assert!(Password::check("1234567").is_err());
        assert!(Password::check("12345678").is_ok());
        assert!(Password::check(&"x".repeat(128)).is_ok());
        assert!(Password::check(&"x".repeat(129)).is_err());
        // Characters, not bytes: 8 two-byte characters are enough.
        assert!(Password::check(&"é".repeat(8)).is_ok());
    }

    #[test]
    fn integer_bounds() {
        assert!(TaxRateBp::parse(-1).is_err());
        assert_eq!(TaxRateBp::parse(0).unwrap().get(), 0);
        assert_eq!(TaxRateBp::parse(10_000).unwrap().get(), 10_000);
        assert!(TaxRateBp::parse(10_001).is_err());
        assert!(PriceCents::parse(-1).is_err());
        assert_eq!(PriceCents::parse(0).unwrap().get(), 0);
        assert_eq!(
            PriceCents::parse(10_000_000_000).unwrap().get(),
            10_000_000_000
        );
        assert!(PriceCents::parse(10_000_000_001).is_err());
        assert!(PriceCents::parse(i64::MAX).is_err());
        assert!(Quantity::parse(0).is_err());
        assert_eq!(Quantity::parse(1).unwrap().get(), 1);
        assert_eq!(Quantity::parse(1000).unwrap().get(), 1000);
        assert!(Quantity::parse(1001).is_err());
    }

    #[test]
    fn serde_is_the_inner_value_and_revalidates() {
        let sku = Sku::parse("A-1").unwrap();
        assert_eq!(serde_json::to_string(&sku).unwrap(), "\"A-1\"");
        assert_eq!(serde_json::from_str::<Sku>("\"A-1\"").unwrap(), sku);
        assert!(serde_json::from_str::<Sku>("\"A 1\"").is_err());
        let email: Email = serde_json::from_str("\"X@Y.Z\"").unwrap();
        assert_eq!(email.as_str(), "x@y.z");
        let q = Quantity::parse(3).unwrap();
        assert_eq!(serde_json::to_string(&q).unwrap(), "3");
        assert!(serde_json::from_str::<Quantity>("0").is_err());
        assert!(serde_json::from_str::<PriceCents>("1.5").is_err());
        assert_eq!(TaxRateBp::parse(825).unwrap().to_string(), "825");
        assert_eq!(ProductName::parse("Tea").unwrap().to_string(), "Tea");
    }

    #[test]
    fn slugify_examples() {
        assert_eq!(slugify("Hot Drinks & Tea"), "hot-drinks-tea");
        assert_eq!(slugify("  --Bakery--  "), "bakery");
        assert_eq!(slugify("Café au lait"), "caf-au-lait");
        assert_eq!(slugify("A1 b2"), "a1-b2");
        assert_eq!(slugify("☕"), "");
        assert_eq!(slugify(""), "");
    }

    fn sku_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
    }

    proptest! {
        #[test]
        fn sku_accepts_every_allowed_string(s in "[A-Za-z0-9._-]{1,64}") {
            prop_assert_eq!(Sku::parse(&s).map(Sku::into_inner), Ok(s));
        }

        #[test]
        fn sku_accepts_exactly_the_alphabet_and_length(s in "\\PC{0,70}|[A-Za-z0-9._ -]{0,70}") {
            let expected = (1..=64).contains(&s.len()) && s.chars().all(sku_char);
            prop_assert_eq!(Sku::parse(&s).is_ok(), expected);
        }

        #[test]
        fn barcode_accepts_exactly_visible_ascii(s in "\\PC{0,70}|[!-~ ]{0,70}") {
            let expected = (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_graphic());
            prop_assert_eq!(Barcode::parse(&s).is_ok(), expected);
        }

        #[test]
        fn slugify_output_alphabet(s in "\\PC{0,80}") {
            let slug = slugify(&s);
            prop_assert!(slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
            prop_assert!(!slug.starts_with('-') && !slug.ends_with('-'));
            prop_assert!(!slug.contains("--"));
            // Idempotent: a slug is its own slug.
            prop_assert_eq!(slugify(&slug), slug.clone());
        }

        #[test]
        fn email_output_is_trimmed_lowercase(s in "[ ]{0,2}[A-Za-z0-9.+]{1,20}@[A-Za-z0-9]{1,10}\\.[A-Za-z]{2,5}[ ]{0,2}") {
            let email = Email::parse(&s);
            // Local parts like "." are odd but accepted: the shape check is intentionally shallow.
            let email = email.unwrap();
            prop_assert_eq!(email.as_str(), s.trim().to_lowercase());
        }
    }
}
