//! The HTTP side: the catalogue a run draws from, and the closed-loop workers. Each worker holds
//! one keep-alive connection (`conn::Conn`) and, as soon as an answer is in, sends the next
//! request, of a type drawn by weight: what `--connections` shoppers and tills would do with
//! no think time.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::conn::{Conn, Req};
use crate::fail;
use crate::stats::{Failure, Kind, Set};

/// The weighted request types, in the order of `--mix`.
pub const MIX_KINDS: [Kind; 6] = [
    Kind::Browse,
    Kind::Search,
    Kind::Product,
    Kind::Checkout,
    Kind::Board,
    Kind::Order,
];

/// What every worker reads (and the recent orders, which checkouts add to).
pub struct Ctx {
    pub url: String,
    pub categories: Vec<String>,
    pub products: Vec<String>,
    /// Search strings: name words, word prefixes, SKUs and barcodes.
    pub terms: Vec<String>,
    pub cashiers: Vec<String>,
    pub staff: Vec<String>,
    pub customer_ids: Vec<String>,
    /// Cumulative weights of MIX_KINDS, ending at 1.
    pub cumulative: [f64; 6],
    /// Share of checkouts placed for a signed-up customer (who then sees it live).
    pub customer_share: f64,
    pub timeout: Duration,
    pub gzip: bool,
    pub measure_from: Instant,
    pub end: Instant,
    /// Orders placed in this run, newest last, for the order reads.
    pub recent_orders: Mutex<VecDeque<String>>,
    /// HTTP connections the workers opened (one each, plus one per reconnect).
    pub connects: AtomicU64,
}

const RECENT_ORDERS: usize = 2_000;

/// SplitMix64: plenty for picking request types and products, and no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    items: Vec<Value>,
    next_cursor: Option<String>,
}

/// Reads the catalogue the run draws from: the categories, and `pages` pages of 100 products
/// (plus the first page of every category, so every category has products in the pool).
pub async fn discover(url: &str, pages: usize) -> (Vec<String>, Vec<String>, Vec<String>) {
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("{url}{path}"))
                .send()
                .await
                .unwrap_or_else(|e| fail(&format!("GET {path}: {e}")));
            if !r.status().is_success() {
                fail(&format!("GET {path}: {}", r.status()));
            }
            r.json::<Value>()
                .await
                .unwrap_or_else(|e| fail(&format!("GET {path}: {e}")))
        }
    };
    let cats: Vec<String> = get("/api/v1/categories".into()).await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect();
    let mut items: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..pages {
        let path = match &cursor {
            Some(c) => format!("/api/v1/products?limit=100&cursor={}", urlencode(c)),
            None => "/api/v1/products?limit=100".to_owned(),
        };
        let page: Page = serde_json::from_value(get(path).await)
            .unwrap_or_else(|e| fail(&format!("products page: {e}")));
        items.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    for c in &cats {
        let page: Page = serde_json::from_value(
            get(format!("/api/v1/products?limit=100&category_id={c}")).await,
        )
        .unwrap_or_else(|e| fail(&format!("category page: {e}")));
        items.extend(page.items);
    }
    let mut ids: Vec<String> = items
        .iter()
        .filter_map(|p| p["id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids.dedup();
    if ids.len() < 3 {
        fail("fewer than 3 products in the catalogue: seed it first (till seed --demo)");
    }
    // Search strings as shoppers type them: a word of a name, the start of one, now and then
    // a SKU or a scanned barcode (exact matches).
    let mut words: Vec<String> = items
        .iter()
        .filter_map(|p| p["name"].as_str())
        .flat_map(|n| {
            n.split_whitespace()
                .map(|w| w.to_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|w| w.chars().count() >= 3 && w.chars().all(char::is_alphabetic))
        .collect();
    words.sort();
    words.dedup();
    let mut terms = Vec::new();
    for w in &words {
        terms.push(w.clone());
        terms.push(w.chars().take(3).collect());
    }
    let mut rng = Rng::new(7);
    for _ in 0..(words.len() / 4).max(4) {
        let p = rng.pick(&items);
        if let Some(s) = p["sku"].as_str() {
            terms.push(s.to_owned());
        }
        if let Some(b) = p["barcode"].as_str() {
            terms.push(b.to_owned());
        }
    }
    (cats, ids, terms)
}

/// Percent-encodes a query value (cursors are URL-safe already; this keeps it so whatever they
/// hold).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One worker: its own connection, requests back to back until the end of the run. Returns
/// what it measured in the window (completions between `measure_from` and `end`).
pub async fn worker(ctx: Arc<Ctx>, seed: u64) -> Set {
    let mut rng = Rng::new(seed);
    let mut stats = Set::default();
    let mut conn = Conn::new(&ctx.url, ctx.gzip, ctx.timeout).unwrap_or_else(|e| fail(&e));
    // The next page of this shopper's last listing, when there is one.
    let mut cursor: Option<String> = None;
    while Instant::now() < ctx.end {
        let x = rng.unit();
        let kind = MIX_KINDS[ctx.cumulative.iter().position(|&c| x < c).unwrap_or(0)];
        match kind {
            Kind::Checkout => checkout(&ctx, &mut conn, &mut rng, &mut stats).await,
            _ => {
                let t = Instant::now();
                let (kind, res) = one(&ctx, &mut conn, &mut rng, kind, &mut cursor).await;
                note(&ctx, &mut stats, kind, t, res.err().as_ref());
            }
        }
    }
    stats
}

/// Records a request that started at `t` if it completed inside the measured window.
fn note(ctx: &Ctx, stats: &mut Set, kind: Kind, t: Instant, err: Option<&Failure>) {
    let done = Instant::now();
    if done >= ctx.measure_from && done < ctx.end {
        stats.get(kind).record(done - t, err);
    }
}

/// A read request of `kind`. Answers the kind actually sent (an order read before any order
/// exists reads the board instead).
async fn one(
    ctx: &Ctx,
    conn: &mut Conn,
    rng: &mut Rng,
    kind: Kind,
    cursor: &mut Option<String>,
) -> (Kind, Result<(), Failure>) {
    let c = &ctx.connects;
    match kind {
        Kind::Browse => {
            // A third follow their last listing to its next page, a third open a category,
            // the rest the shop's front page.
            let x = rng.unit();
            let path = match cursor.take() {
                Some(c) if x < 0.34 => {
                    format!("/api/v1/products?limit=20&cursor={}", urlencode(&c))
                }
                _ if x < 0.67 && !ctx.categories.is_empty() => {
                    format!(
                        "/api/v1/products?limit=20&category_id={}",
                        rng.pick(&ctx.categories)
                    )
                }
                _ => "/api/v1/products?limit=20".to_owned(),
            };
            let res = conn
                .request(Req::get(path, "GET /products (browse)"), c)
                .await;
            let res = res.map(|a| {
                if let Ok(p) = a.json::<Page>() {
                    *cursor = p.next_cursor;
                }
            });
            (kind, res)
        }
        Kind::Search => {
            let q = urlencode(rng.pick::<String>(&ctx.terms));
            let path = format!("/api/v1/products?q={q}&limit=20");
            let res = conn
                .request(Req::get(path, "GET /products?q (search)"), c)
                .await;
            (kind, res.map(|_| ()))
        }
        Kind::Product => {
            let path = format!("/api/v1/products/{}", rng.pick(&ctx.products));
            let res = conn.request(Req::get(path, "GET /products/{id}"), c).await;
            (kind, res.map(|_| ()))
        }
        Kind::Order => {
            let id = {
                let recent = ctx.recent_orders.lock().unwrap();
                (!recent.is_empty()).then(|| recent[rng.below(recent.len())].clone())
            };
            let Some(id) = id else {
                return Box::pin(one(ctx, conn, rng, Kind::Board, cursor)).await;
            };
            let req = Req {
                bearer: Some(rng.pick::<String>(&ctx.staff)),
                ..Req::get(format!("/api/v1/orders/{id}"), "GET /orders/{id}")
            };
            (kind, conn.request(req, c).await.map(|_| ()))
        }
        _ => {
            let req = Req {
                bearer: Some(rng.pick::<String>(&ctx.staff)),
                ..Req::get("/api/v1/orders/board".to_owned(), "GET /orders/board")
            };
            (Kind::Board, conn.request(req, c).await.map(|_| ()))
        }
    }
}

#[derive(Deserialize)]
struct Placed {
    id: String,
    total_cents: i64,
}

/// A sale at the till: a 3-line order, then its total paid in cash (tendered rounded up to
/// the next 10.00, so there is change to give), each with its own Idempotency-Key.
async fn checkout(ctx: &Ctx, conn: &mut Conn, rng: &mut Rng, stats: &mut Set) {
    let t = Instant::now();
    let cashier = rng.pick(&ctx.cashiers).clone();
    let mut lines: Vec<Value> = Vec::with_capacity(3);
    let mut chosen: Vec<&String> = Vec::with_capacity(3);
    while chosen.len() < 3 {
        let p = rng.pick(&ctx.products);
        if !chosen.contains(&p) {
            chosen.push(p);
            lines.push(json!({"product_id": p, "quantity": 1 + rng.below(3)}));
        }
    }
    let customer = (!ctx.customer_ids.is_empty() && rng.unit() < ctx.customer_share)
        .then(|| rng.pick(&ctx.customer_ids).clone());
    let req = Req {
        method: Method::POST,
        path: "/api/v1/orders".to_owned(),
        bearer: Some(&cashier),
        idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
        json: Some(json!({"fulfilment": "in_store", "customer_id": customer, "lines": lines})),
        what: "POST /orders",
    };
    let res = conn.request(req, &ctx.connects).await.and_then(|a| {
        if a.status != StatusCode::CREATED {
            return Err(Failure {
                kind: format!("{} (expected 201)", a.status.as_u16()),
                detail: format!("POST /orders: {}", a.status),
            });
        }
        a.json::<Placed>().map_err(|e| Failure {
            kind: "bad body".into(),
            detail: format!("POST /orders: {e}"),
        })
    });
    note(ctx, stats, Kind::CheckoutOrder, t, res.as_ref().err());
    let placed = match res {
        Ok(p) => p,
        Err(f) => {
            note(ctx, stats, Kind::Checkout, t, Some(&f));
            return;
        }
    };
    let t_pay = Instant::now();
    let tendered = (placed.total_cents + 999) / 1000 * 1000;
    let req = Req {
        method: Method::POST,
        path: format!("/api/v1/orders/{}/payments", placed.id),
        bearer: Some(&cashier),
        idempotency_key: Some(uuid::Uuid::new_v4().to_string()),
        json: Some(json!({"method": "cash", "amount_cents": placed.total_cents,
                          "tendered_cents": tendered.max(placed.total_cents)})),
        what: "POST /orders/{id}/payments",
    };
    let res = conn.request(req, &ctx.connects).await;
    note(ctx, stats, Kind::CheckoutPay, t_pay, res.as_ref().err());
    note(ctx, stats, Kind::Checkout, t, res.as_ref().err());
    if res.is_ok() {
        let mut recent = ctx.recent_orders.lock().unwrap();
        if recent.len() >= RECENT_ORDERS {
            recent.pop_front();
        }
        recent.push_back(placed.id);
    }
}
