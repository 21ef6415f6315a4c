//! The constraint table in till-db (`CONSTRAINTS`) matches the migrated schema: every primary
//! key, UNIQUE, CHECK and foreign-key constraint and every unique index has an entry of the
//! right kind, and no entry names something the schema lacks. (sqlx's own `_sqlx_migrations`
//! table is not ours and is left out.)

use std::collections::BTreeMap;

use sqlx::{Connection, PgConnection};
use till_db::{ConstraintKind, CONSTRAINTS};

fn pg_url() -> String {
    std::env::var("TILL_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// (name → kind) of every constraint and unique index in the public schema.
async fn schema_constraints(conn: &mut PgConnection) -> BTreeMap<String, ConstraintKind> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT conname::text, contype::text FROM pg_constraint
         WHERE connamespace = 'public'::regnamespace AND contype IN ('p', 'u', 'c', 'f', 'x')
           AND conrelid <> '_sqlx_migrations'::regclass
         UNION ALL
         -- Unique indexes that back no constraint report their own name when violated.
         SELECT i.indexrelid::regclass::text, 'u' FROM pg_index i
         JOIN pg_class t ON t.oid = i.indrelid
         WHERE i.indisunique AND t.relnamespace = 'public'::regnamespace
           AND t.relname <> '_sqlx_migrations'
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
    )
    .fetch_all(conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(name, t)| {
            let kind = match t.as_str() {
                "p" | "u" => ConstraintKind::Unique,
                "c" => ConstraintKind::Check,
                "f" => ConstraintKind::ForeignKey,
                other => panic!("{name}: constraint type {other} has no kind in till-db"),
            };
            (name, kind)
        })
        .collect()
}

#[tokio::test]
async fn every_schema_constraint_is_in_the_table() {
    let base = pg_url();
    let name = format!("till_constraints_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&format!("{base}/postgres"))
        .await
        .expect("connect to test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let found = {
        let mut conn = PgConnection::connect(&format!("{base}/{name}"))
            .await
            .unwrap();
        till_db::MIGRATOR.run(&mut conn).await.expect("migrations");
        let found = schema_constraints(&mut conn).await;
        conn.close().await.unwrap();
        found
    };
    sqlx::query(&format!("DROP DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();

    let table: BTreeMap<String, ConstraintKind> = CONSTRAINTS
        .iter()
        .map(|c| (c.name.to_owned(), c.kind))
        .collect();
    assert_eq!(table.len(), CONSTRAINTS.len(), "a name appears twice");
    let missing: Vec<_> = found.keys().filter(|n| !table.contains_key(*n)).collect();
    assert!(
        missing.is_empty(),
        "add these to CONSTRAINTS in crates/db/src/error.rs: {missing:?}"
    );
    let stale: Vec<_> = table.keys().filter(|n| !found.contains_key(*n)).collect();
    assert!(stale.is_empty(), "not in the schema: {stale:?}");
    for (name, kind) in &found {
        assert_eq!(table[name], *kind, "{name}: wrong kind");
    }
    assert!(CONSTRAINTS.iter().all(|c| !c.field.is_empty()));
}
