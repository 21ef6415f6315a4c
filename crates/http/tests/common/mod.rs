//! The shared harness for test files that still reach it as `mod common;` (only live.rs now); it
//! lives in till-test-support. Delete this file once live.rs imports `till_test_support::*`.
#![allow(unused_imports)]

pub use till_test_support::*;
