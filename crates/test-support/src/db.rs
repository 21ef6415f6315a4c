//! Databases for tests: a fresh PostgreSQL database per test, cloned from a template that has every
//! migration applied, and the service URLs the tests read from the environment.

use sqlx::AssertSqlSafe;
use std::time::Duration;

use sqlx::{Connection, PgConnection};

pub fn pg_url() -> String {
    std::env::var("TILL_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("TILL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn migrations_fingerprint() -> u64 {
    // FNV-1a over the migration checksums: a changed migration gets a new template.
    let mut h: u64 = 0xcbf29ce484222325;
    for m in till_db::MIGRATOR.iter() {
        for b in m.checksum.iter() {
            h ^= *b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

/// Creates a database with every migration applied and returns its URL.
pub async fn fresh_db() -> String {
    let base = pg_url();
    let fp = migrations_fingerprint();
    let template = format!("till_tpl_{fp:016x}");
    let mut admin = PgConnection::connect(&format!("{base}/postgres"))
        .await
        .expect("connect to test PostgreSQL");
    // One process builds the template; the others wait on the advisory lock.
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(fp as i64)
        .execute(&mut admin)
        .await
        .unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&template)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    if !exists {
        let building = format!("{template}_building");
        sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {building}")))
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {building}")))
            .execute(&mut admin)
            .await
            .unwrap();
        {
            let mut c = PgConnection::connect(&format!("{base}/{building}"))
                .await
                .unwrap();
            till_db::MIGRATOR
                .run(&mut c)
                .await
                .expect("migrations apply");
            c.close().await.unwrap();
        }
        sqlx::query(AssertSqlSafe(format!(
            "ALTER DATABASE {building} RENAME TO {template}"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
    }
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(fp as i64)
        .execute(&mut admin)
        .await
        .unwrap();
    // The creation time in the name lets scripts/test.sh drop only databases of finished runs.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let name = format!("till_t_{now}_{}", uuid::Uuid::new_v4().simple());
    // CREATE DATABASE … TEMPLATE copies files: milliseconds, versus re-running migrations.
    let mut tries = 0;
    loop {
        match sqlx::query(AssertSqlSafe(format!(
            "CREATE DATABASE {name} TEMPLATE {template}"
        )))
        .execute(&mut admin)
        .await
        {
            Ok(_) => break,
            // "source database is being accessed by other users": another process is cloning.
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50 + tries * 10)).await;
            }
            Err(e) => panic!("create test database: {e}"),
        }
    }
    admin.close().await.ok();
    format!("{base}/{name}")
}
