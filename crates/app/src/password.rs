//! Argon2id password hashing, run on the blocking pool (a hash takes tens of milliseconds of
//! CPU) and bounded by a semaphore so a login flood cannot queue unbounded memory-hard work.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

/// Hashing could not run (never a wrong password: that is `Ok(false)` from [`verify`]).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

fn permits() -> &'static Semaphore {
    static S: OnceLock<Semaphore> = OnceLock::new();
    S.get_or_init(|| {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Semaphore::new(n * 2)
    })
}

/// Argon2id v19 with the crate's defaults (m = 19 MiB, t = 2, p = 1), OWASP's recommended minimum.
fn hasher() -> Argon2<'static> {
    Argon2::default()
}

pub async fn hash(password: String) -> Result<String, HashError> {
    let _permit = permits()
        .acquire()
        .await
        .map_err(|e| HashError(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        // A fresh random 16-byte salt from the OS (the crate's `getrandom`).
        hasher()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    })
    .await
    .map_err(|e| HashError(e.to_string()))?
}

/// Verifies `password` against `stored`. With no stored hash (unknown email) a dummy hash is
/// verified anyway, so response time does not reveal whether the account exists.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, HashError> {
    let _permit = permits()
        .acquire()
        .await
        .map_err(|e| HashError(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let parsed =
            PasswordHash::new(&stored).map_err(|e| HashError(format!("bad stored hash: {e}")))?;
        Ok(hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|e| HashError(e.to_string()))?
}

fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| {
        hasher()
            .hash_password(b"not-a-real-password")
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn hash_is_argon2id_and_verifies() {
        let h = super::hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        assert!(super::verify("correct horse".into(), Some(h.clone()))
            .await
            .unwrap());
        assert!(!super::verify("wrong".into(), Some(h)).await.unwrap());
        assert!(!super::verify("x".into(), None).await.unwrap());
    }

    /// Accounts created before the argon2 0.5 → 0.6 upgrade keep signing in: a hash written by
    /// the old crate (`till create-admin` of that build) still verifies, and only with its
    /// password.
    #[tokio::test]
    async fn hashes_from_before_the_upgrade_still_verify() {
        let old = "$argon2id$v=19$m=19456,t=2,p=1$blbwRvCbn6IljvBdXU5QdA$\
                   tlkjp1DIZiOc4mv57AzLhXnV8mpxGLz/EVMtBfSnpaE";
        let ok = super::verify("hashed by argon2 0.5".into(), Some(old.into()));
        assert!(ok.await.unwrap());
        let wrong = super::verify("hashed by argon2 0.6".into(), Some(old.into()));
        assert!(!wrong.await.unwrap());
        let new = super::hash("hashed by argon2 0.5".into()).await.unwrap();
        assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{new}");
    }
}
