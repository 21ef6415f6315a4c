//! The catalog as CSV: export → import of 1,000 products changes nothing; an import with one
//! bad row writes nothing and names the row; a dry run writes nothing; stock set by an import
//! is a `count` movement; Idempotency-Key replays; roles and content types.

use serde_json::{json, Value};
use till_db::products::SeedProduct;
use till_test_support::*;

const EXPORT: &str = "/api/v1/products/export.csv";
const IMPORT: &str = "/api/v1/products/import";
const HEADER: &str = "sku,barcode,name,description,category,price_cents,tax_rate_bp,active,track_stock,low_stock_threshold,stock_on_hand";

async fn import(c: &Client, csv: &str, dry_run: bool) -> Resp {
    c.request(reqwest::Method::POST, IMPORT)
        .query(&[("dry_run", dry_run)])
        .bytes("text/csv", csv.as_bytes().to_vec())
        .await
}

/// Everything an import could change, as one comparable value.
async fn snapshot(app: &TestApp) -> Value {
    let q = "SELECT json_build_object(
        'products', (SELECT json_agg(p ORDER BY sku) FROM products p),
        'categories', (SELECT json_agg(c ORDER BY slug) FROM categories c),
        'movements', (SELECT count(*) FROM inventory_movements),
        'events', (SELECT count(*) FROM outbox WHERE topic = 'product.updated'))::text";
    let text: String = sqlx::query_scalar(q)
        .fetch_one(&app.state.db.write)
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn export_then_import_of_1000_products_changes_nothing() {
    let app = TestApp::spawn().await;
    let mgr = app.as_manager().await;
    let mut conn = app.state.db.write.acquire().await.unwrap();
    let drinks = till_db::categories::ensure(&mut conn, "Hot Drinks & Tea", "hot-drinks-tea")
        .await
        .unwrap();
    let bakery = till_db::categories::ensure(&mut conn, "Bakery", "bakery")
        .await
        .unwrap();
    let rows: Vec<SeedProduct> = (0..1000)
        .map(|i| SeedProduct {
            id: uuid::Uuid::now_v7(),
            sku: format!("SKU-{i:04}"),
            barcode: (i % 3 != 0).then(|| format!("40{i:011}")),
            // Commas, quotes, line breaks and non-ASCII must survive the round trip.
            name: match i % 4 {
                0 => format!("Crème brûlée #{i}"),
                1 => format!("Tea, \"Earl Grey\" {i}"),
                2 => format!("Plain {i}"),
                _ => format!("Ünïcödé ☕ {i}"),
            },
            description: if i % 5 == 0 {
                format!("Line one\nline two, \"quoted\" {i}")
            } else {
                String::new()
            },
            category_id: match i % 3 {
                0 => Some(drinks.id),
                1 => Some(bakery.id),
                _ => None,
            },
            price_cents: i * 37,
            tax_rate_bp: [0, 825, 1000][(i % 3) as usize],
            track_stock: i % 7 != 0,
            low_stock_threshold: i % 11,
            stock: if i % 7 != 0 { i % 50 } else { 0 },
        })
        .collect();
    till_db::products::insert_many(&mut conn, &rows)
        .await
        .unwrap();
    exec_sql(
        &app,
        "UPDATE products SET active = false WHERE sku LIKE $1",
        "SKU-00%",
    )
    .await;
    drop(conn);
    let before = snapshot(&app).await;

    let r = mgr.get(EXPORT).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("content-type"), "text/csv; charset=utf-8");
    let csv = r.body.as_str().unwrap().to_owned();
    assert!(csv.starts_with(&format!("{HEADER}\r\n")), "{}", &csv[..200]);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 1000, "inactive products are exported too");
    let first = &records[0];
    assert_eq!(&first[0], "SKU-0000");
    assert_eq!(&first[4], "Hot Drinks & Tea");
    assert_eq!(&first[7], "false", "SKU-00xx are inactive");
    assert_eq!(&first[8], "false", "i = 0 is untracked");

    let report = import(&mgr, &csv, false).await.expect_json(200);
    assert_eq!(
        report,
        json!({"dry_run": false, "applied": true, "created": 0, "updated": 0,
               "unchanged": 1000, "errors": [], "error_count": 0})
    );
    assert_eq!(
        snapshot(&app).await,
        before,
        "versions, stock and movements are untouched"
    );

    // Compressed, the stream still ends cleanly (it is polled once more after its end).
    for encoding in ["gzip", "br"] {
        let r = mgr.get(EXPORT).header("accept-encoding", encoding).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.header("content-encoding"), encoding);
    }

    // Only managers export.
    app.as_cashier()
        .await
        .get(EXPORT)
        .await
        .expect_error(403, "forbidden");
    app.anon()
        .get(EXPORT)
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test]
async fn an_import_with_one_bad_row_writes_nothing_and_names_that_row() {
    let app = TestApp::spawn().await;
    let mgr = app.as_manager().await;
    ProductBuilder::new("OLD-1")
        .name("Old one")
        .price(100)
        .barcode("4006381333931")
        .insert(&app)
        .await;
    ProductBuilder::new("OLD-2")
        .name("Old two")
        .price(200)
        .insert(&app)
        .await;
    let before = snapshot(&app).await;

    let csv = format!(
        "{HEADER}\n\
         NEW-1,,New one,,Fresh Category,500,825,true,true,0,12\n\
         OLD-2,,Old two renamed,,,250,825,true,true,0,\n\
         NEW-2,,Bad price,,,12.5,825,true,true,0,\n\
         NEW-3,4006381333931,Steals a barcode,,,100,0,,,,\n\
         bad sku!,,,,,-1,10001,maybe,true,0,\n"
    );
    let r = import(&mgr, &csv, false).await.expect_json(200);
    assert_eq!(r["applied"], false);
    let errors = r["errors"].as_array().unwrap();
    let named: Vec<(i64, &str)> = errors
        .iter()
        .map(|e| (e["row"].as_i64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert!(named.contains(&(3, "price_cents")), "{r}");
    assert!(named.contains(&(4, "barcode")), "{r}");
    for field in ["sku", "name", "price_cents", "tax_rate_bp", "active"] {
        assert!(named.contains(&(5, field)), "row 5 {field}: {r}");
    }
    assert!(
        named.iter().all(|(row, _)| [3, 4, 5].contains(row)),
        "rows 1 and 2 are fine: {r}"
    );
    assert_eq!(r["error_count"], errors.len());
    assert!(errors
        .iter()
        .any(|e| e["message"].as_str().unwrap().contains("OLD-1")));
    assert_eq!(
        snapshot(&app).await,
        before,
        "nothing written, no category created"
    );

    // The file as a whole: unknown or missing columns are a 422 naming `columns`.
    let e = import(&mgr, "sku,name,colour\nA,B,red\n", false)
        .await
        .expect_invalid(&["columns"]);
    assert!(e["error"]["details"]["fields"]["columns"][0]
        .as_str()
        .unwrap()
        .contains("colour"));
    import(&mgr, "name,price_cents\nA,1\n", false)
        .await
        .expect_invalid(&["columns"]);
    // Bodies are limited by MAX_IMPORT_BYTES (64 MiB), not MAX_BODY_BYTES (1 MiB).
    let long = "x".repeat(4_500);
    let big: String = std::iter::once("sku,name,description\n".to_owned())
        .chain((0..250).map(|i| format!("BIG-{i},Big {i},{long}\n")))
        .collect();
    assert!(big.len() > 1_048_576);
    let r = import(&mgr, &big, true).await.expect_json(200);
    assert_eq!(
        (r["created"].clone(), r["error_count"].clone()),
        (json!(250), json!(0))
    );
    // Not CSV: 415; not a manager: 403.
    mgr.post(IMPORT, json!({"sku": "A"}))
        .await
        .expect_error(415, "unsupported_media_type");
    import(&app.as_cashier().await, &csv, false)
        .await
        .expect_error(403, "forbidden");
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn a_dry_run_writes_nothing_then_the_import_applies_exactly_what_it_reported() {
    let app = TestApp::spawn().await;
    let mgr = app.as_manager().await;
    let old = ProductBuilder::new("OLD-1")
        .name("Old one")
        .price(100)
        .stock(5)
        .insert(&app)
        .await;
    ProductBuilder::new("SAME")
        .name("Same")
        .price(100)
        .tax_bp(825)
        .insert(&app)
        .await;
    let before = snapshot(&app).await;
    let same = &before["products"].as_array().unwrap()[1];
    let csv = format!(
        "sku,name,price_cents,tax_rate_bp,category,stock_on_hand\n\
         NEW-1,New one,500,825,Fresh Category,12\n\
         NEW-2,New two,0,0,fresh category,\n\
         OLD-1,Old one,150,0,,9\n\
         SAME,Same,100,{},,\n",
        same["tax_rate_bp"]
    );
    let expected = |dry: bool| {
        json!({"dry_run": dry, "applied": !dry, "created": 2, "updated": 1, "unchanged": 1,
               "errors": [], "error_count": 0})
    };
    let dry = import(&mgr, &csv, true).await.expect_json(200);
    assert_eq!(dry, expected(true));
    assert_eq!(snapshot(&app).await, before, "a dry run writes nothing");

    let key = new_key();
    let send = || {
        mgr.request(reqwest::Method::POST, IMPORT)
            .bytes("text/csv; charset=utf-8", csv.as_bytes().to_vec())
            .idem(&key)
    };
    let done = send().await;
    assert_eq!(done.clone().expect_json(200), expected(false));
    let after = snapshot(&app).await;
    assert_eq!(
        after["movements"],
        before["movements"].as_i64().unwrap() + 2,
        "NEW-1 +12, OLD-1 5 → 9"
    );
    assert_eq!(stock_of(&app, &old).await, 9);
    assert_eq!(
        after["events"],
        before["events"].as_i64().unwrap() + 3,
        "product.updated for the 2 created and the 1 changed, none for the unchanged"
    );
    let count_moves = count(
        &app,
        "SELECT count(*) FROM inventory_movements WHERE reason = 'count' AND note = 'CSV import' AND product_id = $1::uuid AND delta = 4 AND balance_after = 9",
        &old,
    )
    .await;
    assert_eq!(count_moves, 1);
    let cats = after["categories"].as_array().unwrap();
    assert_eq!(cats.len(), 1, "one category for both spellings: {cats:?}");
    assert_eq!(cats[0]["name"], "Fresh Category");
    let list = mgr
        .get("/api/v1/products?include_inactive=true")
        .await
        .expect_json(200);
    let new1 = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["sku"] == "NEW-1")
        .unwrap();
    assert_eq!(
        (new1["price_cents"].clone(), new1["stock_on_hand"].clone()),
        (json!(500), json!(12))
    );
    assert_eq!(new1["category_id"], cats[0]["id"]);

    // The same key and file again: the first answer, no second effect.
    let replay = send().await;
    assert_eq!(replay.header("idempotent-replayed"), "true");
    assert_eq!(replay.body, done.body);
    assert_eq!(snapshot(&app).await, after);
    // Imported again without a key: everything is now unchanged.
    let again = import(&mgr, &csv, false).await.expect_json(200);
    assert_eq!(
        (again["unchanged"].clone(), again["updated"].clone()),
        (json!(4), json!(0))
    );
    assert_eq!(audit_count(&app, "product.import").await, 2);
}

#[tokio::test]
async fn an_import_over_max_import_bytes_is_refused() {
    let app = TestApp::spawn_with(&Opts::new().await.set("MAX_IMPORT_BYTES", "4096")).await;
    let mgr = app.as_manager().await;
    let csv: String = std::iter::once("sku,name\n".to_owned())
        .chain((0..400).map(|i| format!("S-{i},Name {i}\n")))
        .collect();
    assert!(csv.len() > 4096);
    import(&mgr, &csv, false)
        .await
        .expect_error(413, "payload_too_large");
    let products = count(&app, "SELECT count(*) FROM products", "").await;
    assert_eq!(products, 0);
    let under = csv[..2000].rsplit_once('\n').unwrap().0;
    let r = import(&mgr, under, false).await.expect_json(200);
    assert_eq!(r["created"], under.lines().count() - 1);
}
