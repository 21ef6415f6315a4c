//! Accumulating field errors for 422 `validation_failed` answers.
//!
//! A client fixing a form wants every problem at once, not one per round trip, so parsers
//! report into a [`FieldErrors`] instead of returning at the first failure. It serialises as a
//! plain `{field: [message…]}` map, exactly the shape of `details.fields` in docs/api.md, Errors. A
//! `BTreeMap` keeps the field order stable, which keeps snapshot tests stable.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Messages per field, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    /// An empty set: nothing wrong yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record `msg` against `field`. Chainable so several checks read as one statement.
    pub fn add(&mut self, field: impl Into<String>, msg: impl Into<String>) -> &mut Self {
        self.0.entry(field.into()).or_default().push(msg.into());
        self
    }

    /// Keep the value of an `Ok`, or record the error's message against `field` and return
    /// `None`. Lets a handler parse every field, then call [`FieldErrors::into_result`] once.
    pub fn check<T, E: fmt::Display>(
        &mut self,
        field: impl Into<String>,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.add(field, err.to_string());
                None
            }
        }
    }

    /// Take in another set, e.g. the errors of a nested object already prefixed by the caller.
    pub fn merge(&mut self, other: FieldErrors) -> &mut Self {
        for (field, messages) in other.0 {
            self.0.entry(field).or_default().extend(messages);
        }
        self
    }

    /// True when no field has an error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `field` has at least one error.
    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// The messages recorded for `field` (empty when none).
    pub fn get(&self, field: &str) -> &[String] {
        self.0.get(field).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The underlying map, for callers that build their own response.
    pub fn as_map(&self) -> &BTreeMap<String, Vec<String>> {
        &self.0
    }

    /// `Ok(())` when empty, else `Err(self)`, so a handler can end its checks with `?`.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for FieldErrors {
    /// A one-line summary for logs; clients get the structured map instead.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("validation failed")?;
        let mut sep = ": ";
        for (field, messages) in &self.0 {
            for message in messages {
                write!(f, "{sep}{field} {message}")?;
                sep = "; ";
            }
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

/// A string that names none of a closed set of values (role, status, method…).
///
/// Its message lists the accepted values, because that is what the client needs to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// The accepted spellings, in declaration order.
    pub allowed: &'static [&'static str],
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "must be one of: {}", self.allowed.join(", "))
    }
}

impl std::error::Error for UnknownValue {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_ok() {
        let errors = FieldErrors::new();
        assert!(errors.is_empty());
        assert_eq!(errors.into_result(), Ok(()));
    }

    #[test]
    fn accumulates_in_order_and_serialises_as_plain_map() {
        let mut errors = FieldErrors::new();
        errors
            .add("sku", "must not be empty")
            .add("name", "is too long")
            .add("sku", "may only contain letters");
        assert!(!errors.is_empty());
        assert!(errors.has("sku"));
        assert_eq!(errors.get("price_cents"), &[] as &[String]);
        let json = serde_json::to_value(&errors).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": ["is too long"],
                "sku": ["must not be empty", "may only contain letters"],
            })
        );
        let back: FieldErrors = serde_json::from_value(json).unwrap();
        assert_eq!(back, errors);
        assert_eq!(errors.clone().into_result(), Err(errors));
    }

    #[test]
    fn check_keeps_ok_and_records_err() {
        let mut errors = FieldErrors::new();
        let good: Option<i32> = errors.check("a", Ok::<_, String>(1));
        let bad: Option<i32> = errors.check("b", Err::<i32, _>("is wrong"));
        assert_eq!(good, Some(1));
        assert_eq!(bad, None);
        assert_eq!(errors.get("b"), &["is wrong".to_string()]);
        assert!(!errors.has("a"));
    }

    #[test]
    fn merge_and_display() {
        let mut a = FieldErrors::new();
        a.add("x", "one");
        let mut b = FieldErrors::new();
        b.add("x", "two").add("y", "three");
        a.merge(b);
        assert_eq!(a.get("x").len(), 2);
        assert_eq!(a.to_string(), "validation failed: x one; x two; y three");
    }

    #[test]
    fn unknown_value_lists_choices() {
        let err = UnknownValue {
            allowed: &["cash", "card"],
        };
        assert_eq!(err.to_string(), "must be one of: cash, card");
    }
}
