//! Authentication: passwords (Argon2id), access tokens (HS256 JWT), sessions (Redis or in
//! process) and the one function that turns request headers into a principal.
//!
//! Every JWT names the session it was issued with (`sh`, the session's handle: a hash of the
//! cookie's secret id). A token is honoured only while that session exists in the shared store
//! and was issued under the user's current revocation epoch, so logout, deactivation and role
//! changes revoke both the cookie and the token on every instance.

pub mod jwt;
mod resolve;
pub mod session;

pub use resolve::{bearer, cookie, resolve, resolve_token, still_valid, AuthOutcome, Principal};
/// Argon2id hashing lives with the accounts it protects, in till-app.
pub use till_app::password;
