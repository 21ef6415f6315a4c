//! Till is built to reach PostgreSQL over TLS: a `sslmode=require` URL (a managed database, or one
//! across a network) connects encrypted. The test PostgreSQL serves TLS (Debian's default
//! snakeoil certificate); if it did not, `require` would fail to connect and so would this test.

use sqlx::{Connection, PgConnection};

fn pg_url() -> String {
    std::env::var("TILL_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

#[tokio::test]
async fn sslmode_require_connects_encrypted() {
    let url = format!(
        "{}/postgres?sslmode=require",
        pg_url().trim_end_matches('/')
    );
    let mut conn = PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("TLS connection to {url}: {e}"));
    let (ssl, version): (bool, Option<String>) =
        sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(ssl, "the connection is not encrypted");
    assert!(
        matches!(version.as_deref(), Some("TLSv1.2" | "TLSv1.3")),
        "{version:?}"
    );
}
