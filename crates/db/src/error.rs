use thiserror::Error;

/// Database failures, classified so the HTTP layer can answer 404/409/503 without seeing SQL.
#[derive(Debug, Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    /// A unique constraint was violated; the name says which (e.g. `products_sku_key`).
    #[error("unique violation on {0}")]
    Unique(String),
    /// A CHECK constraint was violated (e.g. stock would go negative).
    #[error("check violation on {0}")]
    Check(String),
    /// Serialization failure or deadlock: safe to retry the whole transaction.
    #[error("transaction conflict")]
    Retryable,
    #[error("database unavailable")]
    Unavailable,
    #[error(transparent)]
    Other(sqlx::Error),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => DbError::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                DbError::Unavailable
            }
            sqlx::Error::Database(db) => {
                let constraint = db.constraint().unwrap_or_default().to_owned();
                match db.code().as_deref() {
                    Some("23505") => DbError::Unique(constraint),
                    Some("23514") => DbError::Check(constraint),
                    Some("40001") | Some("40P01") => DbError::Retryable,
                    _ => DbError::Other(e),
                }
            }
            _ => DbError::Other(e),
        }
    }
}
