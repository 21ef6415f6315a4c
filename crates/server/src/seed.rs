//! `till seed`: `--demo` loads a believable shop (staff accounts, categories, a few hundred
//! products with EAN-13 barcodes, prices, tax rates and opening stock); `--products N` adds N
//! generated products for benchmarks. Both are idempotent where it matters: re-running
//! `--demo` changes nothing, and every product's stock comes with its `received` movement.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use till_app::accounts::{self, NewAccount};
use till_app::App;
use till_db::categories;
use till_db::products::{self, SeedProduct};
use uuid::Uuid;

/// Demo staff accounts, one per role. Passwords are printed so a newcomer can sign in.
pub const DEMO_STAFF: &[(&str, &str, &str, &str)] = &[
    (
        "manager@till.local",
        "Morgan Manager",
        "manager",
        "manager-pass-1",
    ),
    (
        "cashier@till.local",
        "Casey Cashier",
        "cashier",
        "cashier-pass-1",
    ),
    ("staff@till.local", "Sam Staff", "staff", "staff-pass-1"),
    (
        "customer@till.local",
        "Chris Customer",
        "customer",
        "customer-pass-1",
    ),
];

pub async fn demo(app: &App) -> anyhow::Result<()> {
    let created = accounts::bootstrap_admin(app).await?;
    if created {
        println!("admin created from ADMIN_EMAIL");
    }
    for (email, name, role, password) in DEMO_STAFF {
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
    let cats = ensure_categories(app).await?;
    let rows = demo_products(&cats);
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
    let cats = ensure_categories(app).await?;
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

/// One demo category: SKU prefix, tax rate, items (name, base price), and variants (a name
/// pattern with `{}`, price in percent of the base).
struct CategorySpec {
    name: &'static str,
    code: &'static str,
    tax_bp: i32,
    description: &'static str,
    items: &'static [(&'static str, i64)],
    variants: &'static [(&'static str, i64)],
}

const CATEGORIES: &[CategorySpec] = &[
    CategorySpec {
        name: "Coffee",
        code: "COF",
        tax_bp: 0,
        description: "Roasted in small batches every week.",
        items: &[
            ("Ethiopia Yirgacheffe", 1599),
            ("Colombia Huila", 1399),
            ("Guatemala Antigua", 1449),
            ("Kenya AA", 1699),
            ("Sumatra Mandheling", 1499),
            ("Brazil Cerrado", 1199),
            ("Costa Rica Tarrazú", 1549),
            ("Rwanda Nyungwe", 1649),
            ("House Espresso Blend", 1299),
            ("Breakfast Blend", 1199),
            ("French Roast", 1249),
            ("Decaf Swiss Water", 1399),
        ],
        variants: &[
            ("{} Whole Bean 250 g", 100),
            ("{} Ground 250 g", 100),
            ("{} Whole Bean 1 kg", 340),
        ],
    },
    CategorySpec {
        name: "Bakery",
        code: "BAK",
        tax_bp: 0,
        description: "Baked here every morning.",
        items: &[
            ("Sourdough Loaf", 699),
            ("Baguette", 349),
            ("Butter Croissant", 325),
            ("Pain au Chocolat", 375),
            ("Almond Croissant", 425),
            ("Cinnamon Roll", 395),
            ("Blueberry Muffin", 325),
            ("Banana Bread Slice", 295),
            ("Seeded Rye Loaf", 749),
            ("Rosemary Focaccia", 599),
            ("Brioche Buns 4 ct", 549),
            ("Everything Bagel", 195),
            ("Plain Bagel", 175),
            ("Chocolate Chip Cookie", 249),
            ("Oatmeal Raisin Cookie", 249),
            ("Lemon Poppy Seed Muffin", 325),
            ("Morning Bun", 375),
            ("Cheddar Scone", 349),
            ("Multigrain Sandwich Loaf", 649),
            ("Carrot Cake Slice", 495),
        ],
        variants: &[("{}", 100)],
    },
    CategorySpec {
        name: "Produce",
        code: "PRO",
        tax_bp: 0,
        description: "Fresh from regional farms when in season.",
        items: &[
            ("Bananas (per lb)", 69),
            ("Gala Apples (per lb)", 199),
            ("Honeycrisp Apples (per lb)", 299),
            ("Hass Avocado", 149),
            ("Lemons", 79),
            ("Limes", 49),
            ("Navel Oranges (per lb)", 149),
            ("Strawberries 1 lb", 449),
            ("Blueberries 6 oz", 399),
            ("Baby Spinach 5 oz", 349),
            ("Romaine Hearts 3 ct", 399),
            ("Carrots 2 lb", 249),
            ("Yellow Onions 3 lb", 349),
            ("Russet Potatoes 5 lb", 499),
            ("Roma Tomatoes (per lb)", 179),
            ("English Cucumber", 149),
            ("Red Bell Pepper", 179),
            ("Broccoli Crown", 229),
            ("Garlic Bulb", 89),
            ("Ginger Root (per lb)", 399),
        ],
        variants: &[("{}", 100), ("Organic {}", 140)],
    },
    CategorySpec {
        name: "Dairy",
        code: "DAI",
        tax_bp: 0,
        description: "Kept cold from the farm to our fridges.",
        items: &[
            ("Whole Milk Half Gallon", 349),
            ("Whole Milk 1 Gallon", 549),
            ("2% Milk Half Gallon", 339),
            ("2% Milk 1 Gallon", 529),
            ("Oat Milk 64 oz", 499),
            ("Almond Milk 64 oz", 429),
            ("Greek Yogurt Plain 32 oz", 599),
            ("Unsalted Butter 1 lb", 549),
            ("Large Eggs Dozen", 429),
            ("Sharp Cheddar 8 oz", 449),
            ("Fresh Mozzarella 8 oz", 499),
            ("Cream Cheese 8 oz", 299),
            ("Sour Cream 16 oz", 279),
            ("Heavy Cream 1 pt", 399),
            ("Parmesan Wedge 6 oz", 699),
            ("Cottage Cheese 16 oz", 379),
        ],
        variants: &[("Harvest Lane {}", 100), ("Blue Ridge Farms {}", 115)],
    },
    CategorySpec {
        name: "Pantry",
        code: "PAN",
        tax_bp: 0,
        description: "Staples for the cupboard.",
        items: &[
            ("Spaghetti 1 lb", 199),
            ("Penne Rigate 1 lb", 199),
            ("Jasmine Rice 2 lb", 449),
            ("Basmati Rice 2 lb", 499),
            ("Extra Virgin Olive Oil 500 ml", 999),
            ("Diced Tomatoes 28 oz", 249),
            ("Black Beans 15 oz", 149),
            ("Chickpeas 15 oz", 149),
            ("All-Purpose Flour 5 lb", 449),
            ("Granulated Sugar 4 lb", 399),
            ("Wildflower Honey 12 oz", 799),
            ("Creamy Peanut Butter 16 oz", 399),
            ("Rolled Oats 42 oz", 549),
            ("Pure Maple Syrup 12 oz", 1099),
            ("Fine Sea Salt 26 oz", 299),
            ("Chicken Broth 32 oz", 349),
            ("Marinara Sauce 24 oz", 449),
            ("Red Lentils 2 lb", 399),
        ],
        variants: &[("Harvest Lane {}", 100), ("Golden Fields {}", 125)],
    },
    CategorySpec {
        name: "Drinks",
        code: "DRK",
        tax_bp: 500,
        description: "Cold drinks and cases to take home.",
        items: &[
            ("Sparkling Water 12 pk", 599),
            ("Spring Water 24 pk", 699),
            ("Cola 12 pk", 799),
            ("Diet Cola 12 pk", 799),
            ("Lemon-Lime Soda 2 L", 249),
            ("Orange Juice 52 oz", 499),
            ("Apple Juice 64 oz", 399),
            ("Ginger Kombucha 16 oz", 399),
            ("Cold Brew Coffee 11 oz", 449),
            ("Green Iced Tea 18 oz", 249),
            ("Lemonade 52 oz", 399),
            ("Coconut Water 1 L", 449),
            ("Sports Drink 28 oz", 229),
            ("Sparkling Yerba Mate 12 oz", 349),
        ],
        variants: &[("Clearwater {}", 100), ("Sunny Valley {}", 110)],
    },
    CategorySpec {
        name: "Household",
        code: "HOU",
        tax_bp: 825,
        description: "Everyday essentials for the home.",
        items: &[
            ("Paper Towels 6 Rolls", 1199),
            ("Toilet Paper 12 Rolls", 1399),
            ("Dish Soap 24 oz", 399),
            ("Laundry Detergent 64 oz", 1299),
            ("Trash Bags 13 gal 40 ct", 999),
            ("Scrub Sponges 6 pk", 549),
            ("All-Purpose Cleaner 32 oz", 449),
            ("Aluminum Foil 75 sq ft", 599),
            ("Plastic Wrap 200 sq ft", 449),
            ("AA Batteries 8 pk", 999),
            ("AAA Batteries 8 pk", 999),
            ("LED Light Bulbs 4 pk", 1099),
            ("Hand Soap 12 oz", 349),
            ("Zip Storage Bags Gallon 30 ct", 499),
        ],
        variants: &[("Till Market {}", 100), ("Brightway {}", 120)],
    },
    CategorySpec {
        name: "Snacks",
        code: "SNK",
        tax_bp: 500,
        description: "Something to nibble on.",
        items: &[
            ("Sea Salt Potato Chips 8 oz", 449),
            ("BBQ Potato Chips 8 oz", 449),
            ("Tortilla Chips 13 oz", 399),
            ("Salted Pretzels 16 oz", 349),
            ("Microwave Popcorn 3 ct", 399),
            ("Trail Mix 10 oz", 599),
            ("Roasted Almonds 8 oz", 649),
            ("Dark Chocolate Bar 72%", 349),
            ("Milk Chocolate Bar", 299),
            ("Granola Bars 6 ct", 449),
            ("Peanut Butter Cups 2 ct", 159),
            ("Gummy Bears 5 oz", 249),
            ("Lightly Salted Rice Cakes", 299),
            ("Beef Jerky 3 oz", 799),
            ("Cheddar Crackers 7 oz", 379),
        ],
        variants: &[("Crunch & Co {}", 100), ("Harvest Lane {}", 90)],
    },
];

/// Drinks made to order at the coffee bar: sold, never stocked.
const CAFE_DRINKS: &[(&str, i64)] = &[
    ("Espresso", 300),
    ("Americano", 350),
    ("Cappuccino", 450),
    ("Caffè Latte", 475),
    ("Flat White", 450),
    ("Mocha", 525),
    ("Chai Latte", 495),
    ("Hot Chocolate", 395),
];

/// Ensures the demo categories exist; returns their ids in `CATEGORIES` order.
async fn ensure_categories(app: &App) -> anyhow::Result<Vec<Uuid>> {
    let mut tx = app.db.write.begin().await?;
    let mut ids = Vec::with_capacity(CATEGORIES.len());
    for c in CATEGORIES {
        let slug = till_domain::slugify(c.name);
        ids.push(categories::ensure(&mut tx, c.name, &slug).await?.id);
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

fn demo_products(cats: &[Uuid]) -> Vec<SeedProduct> {
    let mut out = Vec::new();
    for (ci, (spec, &cat)) in CATEGORIES.iter().zip(cats).enumerate() {
        let mut n = 0u64;
        for &(item, base) in spec.items {
            for &(pattern, pct) in spec.variants {
                n += 1;
                let h = mix((ci as u64) << 32 | n);
                let threshold = if spec.code == "PRO" { 10 } else { 5 };
                out.push(SeedProduct {
                    id: Uuid::now_v7(),
                    sku: format!("{}-{n:04}", spec.code),
                    barcode: Some(ean13(&format!("20{ci:02}{n:08}"))),
                    name: pattern.replace("{}", item),
                    description: spec.description.to_owned(),
                    category_id: Some(cat),
                    price_cents: shelf_price(base * pct / 100),
                    tax_rate_bp: spec.tax_bp,
                    track_stock: true,
                    low_stock_threshold: threshold,
                    stock: stock_for(h, threshold),
                });
            }
        }
        if spec.code == "COF" {
            for &(drink, price) in CAFE_DRINKS {
                for (size, extra) in [("Small", 0), ("Large", 75)] {
                    n += 1;
                    out.push(SeedProduct {
                        id: Uuid::now_v7(),
                        sku: format!("BAR-{n:04}"),
                        barcode: None,
                        name: format!("{drink} ({size})"),
                        description: "Made to order at the coffee bar.".to_owned(),
                        category_id: Some(cat),
                        price_cents: price + extra,
                        tax_rate_bp: 825,
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
        let cats: Vec<Uuid> = CATEGORIES.iter().map(|_| Uuid::now_v7()).collect();
        let a = demo_products(&cats);
        let b = demo_products(&cats);
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
