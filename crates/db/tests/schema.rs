//! Rules that live in the migrated schema, checked on a fresh database:
//! - the constraint table in till-db (`CONSTRAINTS`) matches it: every primary key, UNIQUE,
//!   CHECK and foreign-key constraint and every unique index has an entry of the right kind, and
//!   no entry names something the schema lacks (sqlx's own `_sqlx_migrations` is left out);
//! - the stock ledger's low-stock trigger: one alert when a tracked product crosses down to its
//!   threshold, whoever writes the movement.

use sqlx::AssertSqlSafe;
use std::collections::BTreeMap;

use sqlx::{Connection, PgConnection};
use till_db::{ConstraintKind, CONSTRAINTS};
use till_domain::MovementReason;
use uuid::Uuid;

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

/// A migrated database for one test, dropped when `f` is done.
async fn with_fresh_db<T>(f: impl AsyncFnOnce(&mut PgConnection) -> T) -> T {
    let base = pg_url();
    let name = format!("till_schema_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&format!("{base}/postgres"))
        .await
        .expect("connect to test PostgreSQL");
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let out = {
        let mut conn = PgConnection::connect(&format!("{base}/{name}"))
            .await
            .unwrap();
        till_db::MIGRATOR.run(&mut conn).await.expect("migrations");
        let out = f(&mut conn).await;
        conn.close().await.unwrap();
        out
    };
    sqlx::query(AssertSqlSafe(format!("DROP DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    out
}

#[tokio::test]
async fn every_schema_constraint_is_in_the_table() {
    let found = with_fresh_db(async |conn| schema_constraints(conn).await).await;

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

/// The alert jobs' product ids, oldest first.
async fn alerts(conn: &mut PgConnection) -> Vec<Uuid> {
    sqlx::query_scalar(
        "SELECT (payload->>'product_id')::uuid FROM jobs
         WHERE kind = 'stock.low_alert' ORDER BY created_at, id",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_movement_crossing_the_threshold_queues_one_alert() {
    with_fresh_db(async |conn| {
        let product = async |conn: &mut PgConnection, sku: &str, track: bool| -> Uuid {
            let id = Uuid::now_v7();
            sqlx::query(
                "INSERT INTO products (id, sku, name, price_cents, tax_rate_bp, track_stock,
                                       stock_on_hand, low_stock_threshold)
                 VALUES ($1, $2, $2, 100, 0, $3, 10, 3)",
            )
            .bind(id)
            .bind(sku)
            .bind(track)
            .execute(conn)
            .await
            .unwrap();
            id
        };
        let tracked = product(conn, "T-1", true).await;
        let untracked = product(conn, "U-1", false).await;
        let adjust = async |conn: &mut PgConnection, id: Uuid, delta: i64| {
            till_db::inventory::apply_movement(
                conn,
                id,
                None,
                delta,
                MovementReason::Correction,
                None,
                None,
                None,
            )
            .await
            .unwrap();
        };
        adjust(conn, tracked, -6).await; // 10 → 4: above the threshold
        adjust(conn, untracked, -9).await; // untracked: never alerts
        assert!(alerts(conn).await.is_empty());
        adjust(conn, tracked, -1).await; // 4 → 3: crosses
        assert_eq!(alerts(conn).await, vec![tracked]);
        adjust(conn, tracked, -1).await; // 3 → 2: already low, no new crossing
        adjust(conn, tracked, 5).await; // 2 → 7: back up
        adjust(conn, tracked, -5).await; // 7 → 2: crosses again, but one alert is pending
        assert_eq!(
            alerts(conn).await,
            vec![tracked],
            "one pending alert per product"
        );
    })
    .await;
}
