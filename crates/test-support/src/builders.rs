//! Request bodies and fixtures built in a line: products (through the API or inserted straight
//! into the database) and orders.

use std::future::Future;
use std::panic::Location;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::app::TestApp;
use crate::client::{Client, Req, Resp};

/// A product. `body()` is the create request with only the fields that were set (besides the
/// required ones); `insert()` writes it straight to the database, as order tests do.
#[derive(Clone, Debug)]
pub struct ProductBuilder {
    sku: String,
    name: Option<String>,
    price_cents: i64,
    tax_rate_bp: i32,
    stock: Option<i64>,
    barcode: Option<String>,
    category_id: Option<Value>,
    description: Option<String>,
    low_stock_threshold: Option<i64>,
    track_stock: bool,
    active: bool,
}

impl ProductBuilder {
    /// Price 100, tax 0, named "Product <sku>", stock-tracked and active.
    pub fn new(sku: &str) -> ProductBuilder {
        ProductBuilder {
            sku: sku.to_owned(),
            name: None,
            price_cents: 100,
            tax_rate_bp: 0,
            stock: None,
            barcode: None,
            category_id: None,
            description: None,
            low_stock_threshold: None,
            track_stock: true,
            active: true,
        }
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    pub fn price(mut self, cents: i64) -> Self {
        self.price_cents = cents;
        self
    }

    pub fn tax_bp(mut self, bp: i32) -> Self {
        self.tax_rate_bp = bp;
        self
    }

    pub fn stock(mut self, units: i64) -> Self {
        self.stock = Some(units);
        self
    }

    pub fn barcode(mut self, code: &str) -> Self {
        self.barcode = Some(code.to_owned());
        self
    }

    pub fn category(mut self, id: &Value) -> Self {
        self.category_id = Some(id.clone());
        self
    }

    pub fn description(mut self, text: &str) -> Self {
        self.description = Some(text.to_owned());
        self
    }

    pub fn low_stock(mut self, threshold: i64) -> Self {
        self.low_stock_threshold = Some(threshold);
        self
    }

    pub fn untracked(mut self) -> Self {
        self.track_stock = false;
        self
    }

    pub fn inactive(mut self) -> Self {
        self.active = false;
        self
    }

    fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("Product {}", self.sku))
    }

    /// The `POST /products` body.
    pub fn body(&self) -> Value {
        let mut m = Map::new();
        m.insert("sku".into(), json!(self.sku));
        m.insert("name".into(), json!(self.display_name()));
        m.insert("price_cents".into(), json!(self.price_cents));
        m.insert("tax_rate_bp".into(), json!(self.tax_rate_bp));
        let optional = [
            ("barcode", self.barcode.as_ref().map(|v| json!(v))),
            ("category_id", self.category_id.clone()),
            ("description", self.description.as_ref().map(|v| json!(v))),
            ("stock_on_hand", self.stock.map(|v| json!(v))),
            (
                "low_stock_threshold",
                self.low_stock_threshold.map(|v| json!(v)),
            ),
            ("track_stock", (!self.track_stock).then_some(json!(false))),
            ("active", (!self.active).then_some(json!(false))),
        ];
        for (k, v) in optional {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        Value::Object(m)
    }

    /// Inserts the product straight into the database and returns its id.
    pub async fn insert(&self, app: &TestApp) -> String {
        let id = uuid::Uuid::now_v7();
        sqlx::query(
            "INSERT INTO products (id, sku, barcode, name, description, price_cents, tax_rate_bp,
                                   stock_on_hand, low_stock_threshold, track_stock, active)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(id)
        .bind(&self.sku)
        .bind(&self.barcode)
        .bind(self.display_name())
        .bind(self.description.clone().unwrap_or_default())
        .bind(self.price_cents)
        .bind(self.tax_rate_bp)
        .bind(self.stock.unwrap_or(0))
        .bind(self.low_stock_threshold.unwrap_or(0))
        .bind(self.track_stock)
        .bind(self.active)
        .execute(&app.state.db.write)
        .await
        .expect("insert product");
        id.to_string()
    }
}

impl Serialize for ProductBuilder {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.body().serialize(s)
    }
}

/// An order request body.
#[derive(Clone, Debug)]
pub struct OrderBuilder {
    body: Map<String, Value>,
}

impl OrderBuilder {
    pub fn fulfilment(fulfilment: &str) -> OrderBuilder {
        let mut body = Map::new();
        body.insert("fulfilment".into(), json!(fulfilment));
        body.insert("lines".into(), json!([]));
        OrderBuilder { body }
    }

    /// A till sale handed over at once (`in_store`).
    pub fn pos() -> OrderBuilder {
        Self::fulfilment("in_store")
    }

    pub fn pickup() -> OrderBuilder {
        Self::fulfilment("pickup")
    }

    pub fn delivery(address: &str) -> OrderBuilder {
        Self::fulfilment("delivery").set("delivery_address", json!(address))
    }

    pub fn line(mut self, product_id: &str, quantity: i64) -> Self {
        self.body["lines"]
            .as_array_mut()
            .unwrap()
            .push(json!({"product_id": product_id, "quantity": quantity}));
        self
    }

    pub fn percent_off(self, bp: i64) -> Self {
        self.set("discount", json!({"type": "percent", "value_bp": bp}))
    }

    pub fn amount_off(self, cents: i64) -> Self {
        self.set("discount", json!({"type": "amount", "amount_cents": cents}))
    }

    pub fn customer(self, id: &str) -> Self {
        self.set("customer_id", json!(id))
    }

    pub fn note(self, note: &str) -> Self {
        self.set("note", json!(note))
    }

    /// Any other field, as is (for invalid bodies too).
    pub fn set(mut self, key: &str, value: Value) -> Self {
        self.body.insert(key.into(), value);
        self
    }

    pub fn body(&self) -> Value {
        Value::Object(self.body.clone())
    }
}

impl Serialize for OrderBuilder {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.body.serialize(s)
    }
}

/// The id of a created resource (`body["id"]`).
pub fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

/// One order line as the API takes it.
pub fn line(product_id: &str, quantity: i64) -> Value {
    json!({"product_id": product_id, "quantity": quantity})
}

impl Client {
    /// `POST /orders` with a fresh Idempotency-Key.
    pub async fn post_order(&self, order: impl Serialize) -> Resp {
        self.post_idem("/api/v1/orders", order).await
    }

    /// Creates an order and returns the 201 body.
    #[track_caller]
    pub fn create_order(&self, order: impl Serialize) -> impl Future<Output = Value> + '_ {
        let caller = Location::caller();
        let order = serde_json::to_value(order).unwrap();
        async move {
            let r = self.post_order(order).await;
            assert_eq!(r.status(), 201, "create order at {caller}: {}", r.body);
            r.body
        }
    }

    /// `POST /products`; returns the 201 body.
    #[track_caller]
    pub fn create_product(&self, product: impl Serialize) -> impl Future<Output = Value> + '_ {
        let caller = Location::caller();
        let product = serde_json::to_value(product).unwrap();
        async move {
            let r = self.post("/api/v1/products", product).await;
            assert_eq!(r.status(), 201, "create product at {caller}: {}", r.body);
            r.body
        }
    }

    /// `POST /orders/{id}/transitions` to `to`.
    pub fn transition(&self, order_id: &str, to: &str) -> Req {
        self.post(
            &format!("/api/v1/orders/{order_id}/transitions"),
            json!({ "to": to }),
        )
    }

    /// `POST /orders/{id}/payments` with a fresh Idempotency-Key.
    pub fn pay(&self, order_id: &str, body: Value) -> Req {
        self.post_idem(&format!("/api/v1/orders/{order_id}/payments"), body)
    }

    /// `POST /orders/{id}/payment-intents` with a fresh Idempotency-Key.
    pub fn payment_intent(&self, order_id: &str) -> Req {
        self.post_idem(
            &format!("/api/v1/orders/{order_id}/payment-intents"),
            json!({}),
        )
    }

    /// `POST /orders/{id}/refunds` with a fresh Idempotency-Key.
    pub fn refund(&self, order_id: &str, body: Value) -> Req {
        self.post_idem(&format!("/api/v1/orders/{order_id}/refunds"), body)
    }

    /// `POST /categories`; returns the 201 body.
    pub async fn create_category(&self, name: &str) -> Value {
        self.post("/api/v1/categories", json!({"name": name}))
            .await
            .expect_json(201)
    }
}

/// The payment provider's callback path (no `/api/v1` router: not rate-limited, no user).
pub const PROVIDER_EVENTS: &str = "/api/v1/payment-provider/events";

impl TestApp {
    /// A provider callback: `event` as the body, signed `age_secs` ago (negative: in the future)
    /// with this instance's `PAYMENT_WEBHOOK_SECRET`, as the provider would.
    pub fn provider_event(&self, event: &Value, age_secs: i64) -> Req {
        use secrecy::ExposeSecret;
        let body = event.to_string();
        let secret = self.state.config.payments.webhook_secret.expose_secret();
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            - age_secs;
        let signature = till_app::payments::sign(secret.as_bytes(), t, body.as_bytes());
        self.provider_event_raw(&body, Some(&signature))
    }

    /// A provider callback with a given raw body and `Till-Signature` (or none).
    pub fn provider_event_raw(&self, body: &str, signature: Option<&str>) -> Req {
        let req = self
            .anon()
            .request(reqwest::Method::POST, PROVIDER_EVENTS)
            .header("content-type", "application/json")
            .body(body);
        match signature {
            Some(s) => req.header("till-signature", s),
            None => req,
        }
    }
}

/// A provider event body: `kind` is `succeeded` or `failed`.
pub fn provider_event_body(
    kind: &str,
    intent_id: &str,
    amount_cents: i64,
    reference: &str,
) -> Value {
    json!({
        "type": format!("payment_intent.{kind}"),
        "intent_id": intent_id,
        "amount_cents": amount_cents,
        "reference": reference,
    })
}
