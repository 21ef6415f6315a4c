//! The shared harness, for the test files that reach it as `common` (it lives in till-test-support).
#![allow(unused_imports)]

pub use till_test_support::*;
