//! The `till` binary's library half: the background worker (so tests can drive it in process).

pub mod jobs;
pub mod webhook_client;
pub mod webhooks;
pub mod worker;
pub mod worker_http;
