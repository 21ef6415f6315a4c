//! `till seed`: `--demo` loads a believable shop (staff accounts, categories, a few hundred
//! products with EAN-13 barcodes, prices, tax rates and opening stock) described by
//! `data/demo.json`; `--products N` adds N generated products for benchmarks. Both are idempotent where it matters: re-running
//! `--demo` changes nothing, and every product's stock comes with its `received` movement.

use std::sync::OnceLock;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use till_app::accounts::{self, NewAccount};
use till_app::App;
use till_db::categories;
use till_db::products::{self, SeedProduct};
use uuid::Uuid;

/// The demo shop: staff accounts, categories, products, prices and stock rules. Read once, on
/// first use; a malformed file fails the unit tests (and `till seed --demo` with its message).
const DEMO_JSON: &str = include_str!("../data/demo.json");

/// `data/demo.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoShop {
    /// One account per role; passwords are printed so a newcomer can sign in.
    staff: Vec<StaffSpec>,
    /// In SKU and barcode order: a category's position is part of its products' barcodes.
    categories: Vec<CategorySpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaffSpec {
    email: String,
    name: String,
    role: String,
    password: String,
}

/// One demo category: every item in every variant becomes a stocked product.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategorySpec {
    name: String,
    /// SKUs are `{sku_prefix}-{n:04}`.
    sku_prefix: String,
    tax_rate_bp: i32,
    description: String,
    low_stock_threshold: i64,
    /// A name with `{}` for the item's name, and the price in percent of the item's.
    variants: Vec<VariantSpec>,
    items: Vec<PricedName>,
    /// Sold, never stocked, no barcode: drinks made at the coffee bar, one product per size.
    #[serde(default)]
    made_to_order: Option<MadeToOrderSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantSpec {
    name: String,
    price_percent: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PricedName {
    name: String,
    price_cents: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MadeToOrderSpec {
    /// SKUs are `{sku_prefix}-{n:04}`, numbered on from the category's stocked products.
    sku_prefix: String,
    tax_rate_bp: i32,
    description: String,
    sizes: Vec<SizeSpec>,
    items: Vec<PricedName>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SizeSpec {
    name: String,
    extra_cents: i64,
}

fn demo_shop() -> anyhow::Result<&'static DemoShop> {
    static SHOP: OnceLock<Result<DemoShop, String>> = OnceLock::new();
    SHOP.get_or_init(|| serde_json::from_str(DEMO_JSON).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("crates/server/data/demo.json: {e}"))
}

pub async fn demo(app: &App) -> anyhow::Result<()> {
    let created = accounts::bootstrap_admin(app).await?;
    if created {
        println!("admin created from ADMIN_EMAIL");
    }
    let shop = demo_shop()?;
    for StaffSpec {
        email,
        name,
        role,
        password,
    } in &shop.staff
    {
        let account = NewAccount {
            email,
            password,
            name,
            role: role.parse()?,
        };
        let made = accounts::create_account(app, account).await?;
        println!(
            "{} {role:<8} {email} / {password}",
            if made { "created " } else { "exists  " }
        );
    }
    let cats = ensure_categories(app, shop).await?;
    let rows = demo_products(shop, &cats);
    let total = rows.len();
    let mut tx = app.db.write.begin().await?;
    let inserted = products::insert_many(&mut tx, &rows).await?;
    tx.commit().await?;
    app.invalidate_catalog().await;
    println!(
        "catalog: {} categories, {inserted} of {total} demo products created ({} already there)",
        cats.len(),
        total as u64 - inserted
    );
    Ok(())
}

/// Adds `n` generated products (with opening stock) in batched multi-row inserts.
pub async fn bench_products(app: &App, n: usize) -> anyhow::Result<()> {
    const BATCH: usize = 5_000;
    let cats = ensure_categories(app, demo_shop()?).await?;
    let mut rng = StdRng::from_entropy();
    // A run tag keeps SKUs and barcodes apart from earlier runs.
    let tag: String = (0..6)
        .map(|_| char::from(b'A' + rng.gen_range(0..26u8)))
        .collect();
    let run_digits = rng.gen_range(0..1000u32);
    let started = std::time::Instant::now();
    let mut inserted = 0;
    let mut i = 0;
    while i < n {
        let rows: Vec<SeedProduct> = (i..n.min(i + BATCH))
            .map(|k| bench_product(&mut rng, &cats, &tag, run_digits, k))
            .collect();
        i += rows.len();
        let mut tx = app.db.write.begin().await?;
        inserted += products::insert_many(&mut tx, &rows).await?;
        tx.commit().await?;
    }
    products::vacuum_analyze(&app.db.write).await?;
    app.invalidate_catalog().await;
    println!(
        "{inserted} of {n} products created in {:.1} s (run {tag})",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Ensures the demo categories exist; returns their ids in the file's order.
async fn ensure_categories(app: &App, shop: &DemoShop) -> anyhow::Result<Vec<Uuid>> {
    let mut tx = app.db.write.begin().await?;
    let mut ids = Vec::with_capacity(shop.categories.len());
    for c in &shop.categories {
        let slug = till_domain::slugify(&c.name);
        ids.push(categories::ensure(&mut tx, &c.name, &slug).await?.id);
    }
    tx.commit().await?;
    Ok(ids)
}

/// EAN-13: 12 digits plus the GS1 check digit (weights 1, 3 alternating from the left).
pub fn ean13(first12: &str) -> String {
    debug_assert_eq!(first12.len(), 12);
    let sum: u32 = first12
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{first12}{}", (10 - sum % 10) % 10)
}

/// A price ending in 9 (the shelf-label convention).
fn shelf_price(cents: i64) -> i64 {
    (cents / 10) * 10 + 9
}

/// Deterministic pseudo-randomness so that re-running `--demo` yields the same shop.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Opening stock and reorder threshold; about one tracked product in eight starts low.
fn stock_for(h: u64, threshold: i64) -> i64 {
    if h.is_multiple_of(8) {
        (h >> 8) as i64 % (threshold + 1)
    } else {
        threshold + 1 + (h >> 8) as i64 % 80
    }
}

fn demo_products(shop: &DemoShop, cats: &[Uuid]) -> Vec<SeedProduct> {
    let mut out = Vec::new();
    for (ci, (spec, &cat)) in shop.categories.iter().zip(cats).enumerate() {
        let mut n = 0u64;
        for item in &spec.items {
            for variant in &spec.variants {
                n += 1;
                let h = mix((ci as u64) << 32 | n);
                let threshold = spec.low_stock_threshold;
                out.push(SeedProduct {
                    id: Uuid::now_v7(),
                    sku: format!("{}-{n:04}", spec.sku_prefix),
                    barcode: Some(ean13(&format!("20{ci:02}{n:08}"))),
                    name: variant.name.replace("{}", &item.name),
                    description: spec.description.clone(),
                    category_id: Some(cat),
                    price_cents: shelf_price(item.price_cents * variant.price_percent / 100),
                    tax_rate_bp: spec.tax_rate_bp,
                    track_stock: true,
                    low_stock_threshold: threshold,
                    stock: stock_for(h, threshold),
                });
            }
        }
        if let Some(bar) = &spec.made_to_order {
            for item in &bar.items {
                for size in &bar.sizes {
                    n += 1;
                    out.push(SeedProduct {
                        id: Uuid::now_v7(),
                        sku: format!("{}-{n:04}", bar.sku_prefix),
                        barcode: None,
                        name: format!("{} ({})", item.name, size.name),
                        description: bar.description.clone(),
                        category_id: Some(cat),
                        price_cents: item.price_cents + size.extra_cents,
                        tax_rate_bp: bar.tax_rate_bp,
                        track_stock: false,
                        low_stock_threshold: 0,
                        stock: 0,
                    });
                }
            }
        }
    }
    out
}

const BRANDS: &[&str] = &[
    "Harvest Lane",
    "Blue Ridge",
    "Golden Fields",
    "Till Market",
    "Clearwater",
    "Sunny Valley",
    "Brightway",
    "Crunch & Co",
    "Northwind",
    "Old Mill",
];
const ADJECTIVES: &[&str] = &[
    "Organic", "Classic", "Roasted", "Smoked", "Spicy", "Sweet", "Salted", "Fresh", "Dark",
    "Light", "Wild", "Golden", "Creamy", "Crispy", "Honey", "Vanilla", "Lemon", "Garlic",
];
const NOUNS: &[&str] = &[
    "Coffee Beans",
    "Cold Brew",
    "Espresso Pods",
    "Green Tea",
    "Black Tea",
    "Almonds",
    "Cashews",
    "Granola",
    "Crackers",
    "Potato Chips",
    "Pasta",
    "Rice",
    "Olive Oil",
    "Peanut Butter",
    "Jam",
    "Honey",
    "Yogurt",
    "Cheese",
    "Butter",
    "Sourdough",
    "Cookies",
    "Chocolate",
    "Soda",
    "Sparkling Water",
    "Juice",
    "Soap",
    "Detergent",
    "Paper Towels",
    "Batteries",
    "Candles",
];
const SIZES: &[&str] = &[
    "100 g", "250 g", "500 g", "1 kg", "8 oz", "12 oz", "16 oz", "32 oz", "6 pk", "12 pk",
];

fn bench_product(rng: &mut StdRng, cats: &[Uuid], tag: &str, run: u32, k: usize) -> SeedProduct {
    let pick = |rng: &mut StdRng, xs: &[&'static str]| xs[rng.gen_range(0..xs.len())];
    let name = format!(
        "{} {} {} {}",
        pick(rng, BRANDS),
        pick(rng, ADJECTIVES),
        pick(rng, NOUNS),
        pick(rng, SIZES)
    );
    let threshold = rng.gen_range(0..10);
    let stock = if rng.gen_ratio(1, 10) {
        rng.gen_range(0..=threshold)
    } else {
        rng.gen_range(threshold + 1..threshold + 200)
    };
    SeedProduct {
        id: Uuid::now_v7(),
        sku: format!("BN-{tag}-{k:07}"),
        barcode: Some(ean13(&format!("2{run:03}{k:08}"))),
        name,
        description: String::new(),
        category_id: Some(cats[rng.gen_range(0..cats.len())]),
        price_cents: shelf_price(rng.gen_range(99..5000)),
        tax_rate_bp: [0, 500, 825][rng.gen_range(0..3)],
        track_stock: true,
        low_stock_threshold: threshold,
        stock,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ean13_check_digits() {
        // Published examples.
        assert_eq!(ean13("400638133393"), "4006381333931");
        assert_eq!(ean13("501234567890"), "5012345678900");
        assert_eq!(ean13("978030640615"), "9780306406157");
    }

    #[test]
    fn demo_shop_is_believable_and_stable() {
        let shop = demo_shop().unwrap();
        let cats: Vec<Uuid> = shop.categories.iter().map(|_| Uuid::now_v7()).collect();
        let a = demo_products(shop, &cats);
        let b = demo_products(shop, &cats);
        assert!((200..=400).contains(&a.len()), "{}", a.len());
        let skus: std::collections::HashSet<_> = a.iter().map(|p| &p.sku).collect();
        assert_eq!(skus.len(), a.len(), "unique SKUs");
        let codes: std::collections::HashSet<_> =
            a.iter().filter_map(|p| p.barcode.as_ref()).collect();
        assert_eq!(
            codes.len(),
            a.iter().filter(|p| p.barcode.is_some()).count()
        );
        assert!(a.iter().all(|p| till_domain::Sku::parse(&p.sku).is_ok()));
        assert!(a
            .iter()
            .all(|p| till_domain::ProductName::parse(&p.name).is_ok()));
        let low = a
            .iter()
            .filter(|p| p.track_stock && p.stock <= p.low_stock_threshold)
            .count();
        assert!(low > 5 && low < a.len() / 4, "{low} low");
        let pairs = |v: &[SeedProduct]| {
            v.iter()
                .map(|p| (p.sku.clone(), p.price_cents, p.stock))
                .collect::<Vec<_>>()
        };
        assert_eq!(pairs(&a), pairs(&b), "re-running seeds the same shop");
    }
}
