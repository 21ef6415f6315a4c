//! Webhooks against a real local receiver: signatures (also across a rotation), the retry and
//! no-retry rules, disabling on 410 and after consecutive failures, a gap-free sequence over
//! a burst of orders from two instances, a worker SIGKILLed mid-delivery, and the target
//! guard in production.

use std::collections::{BTreeSet, VecDeque};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use till_server::webhooks::Dispatcher;
use till_test_support::*;
use tokio::sync::watch;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    id: String,
    kind: String,
    attempt: i32,
    signature: String,
    body: Vec<u8>,
    answered: u16,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What the receiver answers: the scripted (status, delay) answers in order, then 200.
#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<VecDeque<(u16, u64)>>>,
    got: Arc<Mutex<Vec<Got>>>,
    /// While set, requests are held unanswered (a receiver that hangs).
    hold: Arc<Mutex<bool>>,
    seen: Arc<Mutex<Vec<String>>>,
}

struct Receiver {
    url: String,
    script: Script,
}

impl Receiver {
    async fn start() -> Receiver {
        let script = Script::default();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, script }
    }

    fn answer(&self, answers: &[(u16, u64)]) {
        self.script.answers.lock().unwrap().extend(answers);
    }

    fn got(&self) -> Vec<Got> {
        self.script.got.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for what was received.
    async fn wait(&self, what: &str, within: Duration, pred: impl Fn(&[Got]) -> bool) -> Vec<Got> {
        let until = Instant::now() + within;
        loop {
            let got = self.got();
            if pred(&got) {
                return got;
            }
            assert!(Instant::now() < until, "{what}: got {got:#?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn receive(State(s): State<Script>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    s.seen.lock().unwrap().push(h("till-event-id"));
    while *s.hold.lock().unwrap() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, delay) = s.answers.lock().unwrap().pop_front().unwrap_or((200, 0));
    // Recorded on arrival: a sender that gives up early drops this handler mid-sleep.
    s.got.lock().unwrap().push(Got {
        id: h("till-event-id"),
        kind: h("till-event-type"),
        attempt: h("till-delivery-attempt").parse().unwrap_or(0),
        signature: h("till-signature"),
        body: body.to_vec(),
        answered: status,
    });
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    StatusCode::from_u16(status).unwrap()
}

/// The receiver's check: some `v1=` is HMAC-SHA256(secret, "<t>.<body>").
fn verifies(signature: &str, secret: &str, body: &[u8]) -> bool {
    let mut t = "";
    let mut sigs = Vec::new();
    for part in signature.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v,
            Some(("v1", v)) => sigs.push(v),
            _ => {}
        }
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let want = hex::encode(mac.finalize().into_bytes());
    sigs.contains(&want.as_str())
}

fn quick(opts: Opts) -> Opts {
    opts.set("WEBHOOK_RETRY_BASE_MS", "100")
        .set("WEBHOOK_TIMEOUT_SECONDS", "1")
}

/// Runs the delivery half of `till worker` in this process until the returned sender is dropped.
fn deliver(app: &TestApp) -> watch::Sender<bool> {
    let (tx, rx) = watch::channel(false);
    let d = Dispatcher::new(app.state.app.clone(), "test").unwrap();
    tokio::spawn(d.run(rx));
    tx
}

async fn add_endpoint(admin: &Client, url: &str, events: &[&str]) -> (String, String) {
    let r = admin
        .post("/api/v1/webhooks", json!({"url": url, "events": events}))
        .await
        .expect_json(201);
    let secret = r["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{r}");
    (id_of(&r), secret)
}

async fn sale(cashier: &Client, product: &str) -> Value {
    cashier
        .create_order(OrderBuilder::pos().line(product, 1))
        .await
}

#[tokio::test]
async fn deliveries_are_signed_and_verify_across_a_rotation() {
    let app = TestApp::spawn_with(&quick(Opts::new().await)).await;
    let admin = app.as_admin().await;
    let cashier = app.as_cashier().await;
    let rx = Receiver::start().await;
    let _worker = deliver(&app);
    let (id, secret) = add_endpoint(
        &admin,
        &rx.url,
        &[
            "order.created",
            "order.paid",
            "product.updated",
            "inventory.adjusted",
        ],
    )
    .await;
    // The secret is shown once: never again when the endpoint is read.
    let read = admin
        .get(&format!("/api/v1/webhooks/{id}"))
        .await
        .expect_json(200);
    assert!(read.get("secret").is_none(), "{read}");
    assert_eq!(read["active"], true);

    let product = admin
        .create_product(ProductBuilder::new("HOOK-1").price(1250).tax_bp(0))
        .await;
    let pid = id_of(&product);
    admin
        .post(
            "/api/v1/inventory/adjustments",
            json!({"product_id": pid, "delta": 10, "reason": "received"}),
        )
        .await
        .expect_status(201);
    let order = sale(&cashier, &pid).await;
    let oid = id_of(&order);
    cashier
        .pay(
            &oid,
            json!({"method": "cash", "amount_cents": 1250, "tendered_cents": 2000}),
        )
        .await
        .expect_status(201);

    let got = rx
        .wait("four events", Duration::from_secs(10), |g| g.len() >= 4)
        .await;
    let kinds: BTreeSet<&str> = got.iter().map(|g| g.kind.as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "inventory.adjusted",
            "order.created",
            "order.paid",
            "product.updated"
        ])
    );
    let adjusted = got
        .iter()
        .find(|g| g.kind == "inventory.adjusted")
        .unwrap()
        .json();
    assert_eq!(adjusted["data"]["stock_on_hand"], 10);
    assert_eq!(adjusted["data"]["movement"]["delta"], 10);
    let created = got
        .iter()
        .find(|g| g.kind == "product.updated")
        .unwrap()
        .json();
    assert_eq!(created["data"]["sku"], "HOOK-1");
    for g in &got {
        assert!(verifies(&g.signature, &secret, &g.body), "{g:?}");
        assert!(!verifies(&g.signature, "whsec_wrong", &g.body));
        let body = g.json();
        assert_eq!(body["id"], g.id.as_str(), "Till-Event-Id is the body's id");
        assert_eq!(body["type"], g.kind.as_str());
        assert!(body["sequence"].as_i64().unwrap() > 0);
        assert_eq!(g.attempt, 1);
    }
    // The order as placed, as the till was answered: with the location it was taken from
    // (the default one here, which the order did not name).
    let placed = got
        .iter()
        .find(|g| g.kind == "order.created")
        .unwrap()
        .json();
    assert!(order["location_id"].is_string(), "{order}");
    assert_eq!(placed["data"], order, "data is the order as placed");
    let paid = got.iter().find(|g| g.kind == "order.paid").unwrap().json();
    assert_eq!(paid["data"]["id"], oid.as_str(), "data is the order");
    assert_eq!(paid["data"]["total_cents"], 1250);
    assert_eq!(paid["data"]["payment_status"], "paid");
    assert_eq!(paid["data"]["payments"][0]["change_cents"], 750);

    // Rotation: the new secret and the old one both sign for 24 h.
    let rotated = admin
        .post(&format!("/api/v1/webhooks/{id}/rotate-secret"), json!(null))
        .await
        .expect_json(200);
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert!(rotated["previous_valid_until"].is_string());
    sale(&cashier, &pid).await;
    let got = rx
        .wait(
            "the order after the rotation",
            Duration::from_secs(10),
            |g| g.iter().filter(|g| g.kind == "order.created").count() == 2,
        )
        .await;
    let last = got
        .iter()
        .rev()
        .find(|g| g.kind == "order.created")
        .unwrap();
    assert_eq!(
        last.signature.matches("v1=").count(),
        2,
        "{}",
        last.signature
    );
    assert!(verifies(&last.signature, &new_secret, &last.body));
    assert!(verifies(&last.signature, &secret, &last.body));

    // Only admins manage webhooks.
    cashier
        .get("/api/v1/webhooks")
        .await
        .expect_error(403, "forbidden");
    admin.get("/api/v1/webhooks").await.expect_json(200);

    // Deleting the endpoint deletes its delivery log with it.
    let deliveries = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1::uuid",
        )
        .bind(&id)
        .fetch_one(&app.state.app.db.write)
        .await
        .unwrap()
    };
    // Recorded once the batch is sent: the receiver may have it a moment before.
    let until = Instant::now() + Duration::from_secs(10);
    while deliveries().await < 5 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(deliveries().await, 5);
    admin
        .delete(&format!("/api/v1/webhooks/{id}"))
        .await
        .expect_status(204);
    assert_eq!(deliveries().await, 0);
    admin
        .get(&format!("/api/v1/webhooks/{id}/deliveries"))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn retries_follow_the_rules_and_failing_endpoints_are_disabled() {
    let opts = quick(Opts::new().await).set("WEBHOOK_DISABLE_AFTER", "5");
    let app = TestApp::spawn_with(&opts).await;
    let admin = app.as_admin().await;
    let (retried, refused, gone, flaky) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    retried.answer(&[(500, 0), (429, 0), (408, 0), (200, 1500), (200, 0)]);
    refused.answer(&[(400, 0)]);
    gone.answer(&[(410, 0)]);
    flaky.answer(&[(503, 0); 10]);
    let (retried_id, _) = add_endpoint(&admin, &retried.url, &["product.updated"]).await;
    let (refused_id, _) = add_endpoint(&admin, &refused.url, &["product.updated"]).await;
    let (gone_id, _) = add_endpoint(&admin, &gone.url, &["product.updated"]).await;
    let (flaky_id, _) = add_endpoint(&admin, &flaky.url, &["product.updated"]).await;
    let _worker = deliver(&app);
    admin
        .create_product(ProductBuilder::new("RETRY-1").price(100))
        .await;

    // 500, 429 and 408 are retried; the fourth attempt takes longer than the 1 s timeout and
    // is retried too; the fifth succeeds. Every attempt carries the same id and body.
    let got = retried
        .wait("five attempts", Duration::from_secs(20), |g| g.len() == 5)
        .await;
    assert!(got
        .iter()
        .all(|g| g.id == got[0].id && g.body == got[0].body));
    assert_eq!(
        got.iter().map(|g| g.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    let list = admin
        .get(&format!("/api/v1/webhooks/{retried_id}/deliveries"))
        .await
        .expect_json(200);
    let d = &list["items"][0];
    let done = wait_delivery(&admin, d["id"].as_str().unwrap(), "succeeded").await;
    assert_eq!(done["attempts"], 5);
    let log: Vec<Value> = done["attempt_log"].as_array().unwrap().clone();
    let codes: Vec<Value> = log.iter().map(|a| a["status_code"].clone()).collect();
    assert_eq!(
        codes,
        vec![json!(500), json!(429), json!(408), json!(null), json!(200)]
    );
    assert_eq!(log[3]["error"], "timed out");

    // A 400 is not retried.
    let list = admin
        .get(&format!(
            "/api/v1/webhooks/{refused_id}/deliveries?status=failed"
        ))
        .await
        .expect_json(200);
    let failed = &list["items"][0];
    assert_eq!(failed["attempts"], 1);
    assert_eq!(failed["last_status_code"], 400);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(refused.got().len(), 1, "no retry after a 400");
    // A manual retry sends the same event again.
    admin
        .post(
            &format!(
                "/api/v1/webhook-deliveries/{}/retry",
                failed["id"].as_str().unwrap()
            ),
            json!(null),
        )
        .await
        .expect_status(202);
    let again = refused
        .wait("the manual retry", Duration::from_secs(10), |g| {
            g.len() == 2
        })
        .await;
    assert_eq!(again[1].id, again[0].id);
    assert_eq!(again[1].answered, 200);

    // 410 disables the endpoint at once, with its reason.
    let ep = wait_endpoint(&admin, &gone_id, |e| e["active"] == false).await;
    assert!(
        ep["disabled_reason"].as_str().unwrap().contains("410"),
        "{ep}"
    );
    // Five failed attempts in a row disable the flaky one (the first endpoint failed four
    // times in a row, then succeeded: it stays enabled).
    let ep = wait_endpoint(&admin, &flaky_id, |e| e["active"] == false).await;
    assert_eq!(ep["disabled_reason"], "5 consecutive failed attempts");
    assert_eq!(flaky.got().len(), 5);
    // Disabled endpoints get nothing more; the others do.
    admin
        .create_product(ProductBuilder::new("RETRY-2").price(100))
        .await;
    retried
        .wait("the next event", Duration::from_secs(10), |g| g.len() == 6)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gone.got().len(), 1);
    assert_eq!(flaky.got().len(), 5);
    // Re-enabling clears the reason; the waiting delivery goes out.
    let ep = admin
        .patch(
            &format!("/api/v1/webhooks/{flaky_id}"),
            json!({"active": true}),
        )
        .await
        .expect_json(200);
    assert_eq!(ep["disabled_reason"], Value::Null);
    assert_eq!(ep["consecutive_failures"], 0);
}

async fn wait_delivery(admin: &Client, id: &str, status: &str) -> Value {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let d = admin
            .get(&format!("/api/v1/webhook-deliveries/{id}"))
            .await
            .expect_json(200);
        if d["status"] == status {
            return d;
        }
        assert!(Instant::now() < until, "delivery not {status}: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_endpoint(admin: &Client, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let e = admin
            .get(&format!("/api/v1/webhooks/{id}"))
            .await
            .expect_json(200);
        if pred(&e) {
            return e;
        }
        assert!(Instant::now() < until, "endpoint: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sequence_is_gap_free_over_a_burst_of_orders_from_two_instances() {
    let opts = quick(Opts::new().await);
    let a = TestApp::spawn_with(&opts).await;
    let b = TestApp::spawn_with(&opts).await;
    let admin = a.as_admin().await;
    let rx = Receiver::start().await;
    let (_, _) = add_endpoint(&admin, &rx.url, &["order.created"]).await;
    let _worker = deliver(&a);
    let pid = ProductBuilder::new("BURST-1")
        .price(300)
        .stock(1000)
        .insert(&a)
        .await;
    let ca = a.as_cashier().await;
    let cb = ca.on(&b);
    let orders = (0..40).map(|i| {
        let c = if i % 2 == 0 { ca.clone() } else { cb.clone() };
        let pid = pid.clone();
        async move { sale(&c, &pid).await }
    });
    let placed = futures::future::join_all(orders).await;
    // A retried order (same key, other instance) is an idempotent replay: no new event.
    let key = new_key();
    let body = OrderBuilder::pos().line(&pid, 1);
    ca.post("/api/v1/orders", &body)
        .idem(&key)
        .await
        .expect_status(201);
    let replay = cb.post("/api/v1/orders", &body).idem(&key).await;
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.header("idempotent-replayed"), "true");

    let got = rx
        .wait("41 order.created", Duration::from_secs(20), |g| {
            g.len() >= 41
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_ids: BTreeSet<String> = rx.got().iter().map(|g| g.id.clone()).collect();
    assert_eq!(
        got_ids.len(),
        41,
        "one event per order, none for the replay"
    );
    let order_ids: BTreeSet<String> = got
        .iter()
        .map(|g| g.json()["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    for p in &placed {
        assert!(order_ids.contains(&id_of(p)));
    }
    // The event log: sequences 1..=n with no hole, and the received ones among them.
    let log = admin
        .get("/api/v1/events?after_sequence=0&limit=1000")
        .await
        .expect_json(200);
    let seqs: Vec<i64> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    let first = seqs[0];
    assert_eq!(seqs, (first..first + seqs.len() as i64).collect::<Vec<_>>());
    let created = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "order.created")
        .count();
    assert_eq!(created, 41);
    for g in &got {
        assert!(seqs.contains(&g.json()["sequence"].as_i64().unwrap()));
    }
    // The log tells each event as it was delivered: same id, type, time and data (the order).
    for g in &got {
        let delivered = g.json();
        let logged = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == delivered["id"])
            .unwrap();
        assert_eq!(logged, &delivered);
        assert_eq!(logged["data"]["total_cents"], 300);
    }
    // Paging by type.
    let only = admin
        .get(&format!(
            "/api/v1/events?after_sequence={first}&type=order.created&limit=5"
        ))
        .await
        .expect_json(200);
    assert_eq!(only["items"].as_array().unwrap().len(), 5);
    assert!(only["next_after_sequence"].is_i64());
    admin
        .get("/api/v1/events?after_sequence=-1")
        .await
        .expect_invalid(&["after_sequence"]);
}

fn spawn_worker(db: &str, name: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_till"))
        .arg("worker")
        .env("DATABASE_URL", db)
        .env_remove("REDIS_URL")
        .env("WORKER_HEALTH_ADDR", "127.0.0.1:0")
        .env("WEBHOOK_TIMEOUT_SECONDS", "1")
        .env("WEBHOOK_RETRY_BASE_MS", "100")
        .env("INSTANCE_ID", name)
        .env("LOG_FORMAT", "pretty")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start till worker")
}

#[tokio::test]
async fn a_worker_killed_mid_delivery_loses_nothing() {
    let opts = Opts::new().await;
    let app = TestApp::spawn_with(&opts).await;
    let admin = app.as_admin().await;
    let cashier = app.as_cashier().await;
    let rx = Receiver::start().await;
    add_endpoint(&admin, &rx.url, &["order.created"]).await;
    let pid = ProductBuilder::new("KILL-1")
        .price(500)
        .stock(100)
        .insert(&app)
        .await;
    for _ in 0..5 {
        sale(&cashier, &pid).await;
    }
    // The receiver hangs: the first worker's requests are in flight when it is killed.
    *rx.script.hold.lock().unwrap() = true;
    let mut first = spawn_worker(&opts.db_url, "first");
    let until = Instant::now() + Duration::from_secs(20);
    while rx.script.seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < until, "the first worker sent nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap(); // SIGKILL
    let _ = first.wait();
    let in_flight: BTreeSet<String> = rx.script.seen.lock().unwrap().iter().cloned().collect();
    *rx.script.hold.lock().unwrap() = false;

    let mut second = spawn_worker(&opts.db_url, "second");
    let got = rx
        .wait("every event delivered", Duration::from_secs(30), |g| {
            g.iter()
                .filter(|g| g.answered == 200)
                .map(|g| g.id.clone())
                .collect::<BTreeSet<_>>()
                .len()
                == 5
        })
        .await;
    let delivered: BTreeSet<String> = got.iter().map(|g| g.id.clone()).collect();
    assert_eq!(delivered.len(), 5);
    // What was in flight when the first worker died came again with the same id.
    assert!(
        in_flight.is_subset(&delivered),
        "{in_flight:?} ⊄ {delivered:?}"
    );
    // And the delivery log says so (once the second worker has recorded its answers).
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let log: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'",
        )
        .fetch_one(&app.state.db.write)
        .await
        .unwrap();
        if log == 5 {
            break;
        }
        assert!(
            Instant::now() < until,
            "{log} deliveries recorded as succeeded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.kill().unwrap();
    let _ = second.wait();
}

#[tokio::test]
async fn production_refuses_targets_inside_the_network_at_creation_and_at_delivery() {
    let opts = Opts::new()
        .await
        .set("APP_ENV", "production")
        .set(
            "JWT_SECRET",
            "a-production-grade-secret-of-sufficient-length-123",
        )
        .set(
            "PAYMENT_WEBHOOK_SECRET",
            "a-production-grade-payment-secret-0123456789",
        )
        .set("COOKIE_SECURE", "true");
    let app = TestApp::spawn_with(&opts).await;
    let admin = app.as_admin().await;
    for url in [
        "http://93.184.216.34/hook",
        "https://127.0.0.1/hook",
        "https://localhost:8443/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.7/hook",
        "https://[::1]/hook",
        "https://[::ffff:192.168.0.1]/hook",
        "file:///etc/passwd",
        "not a url",
    ] {
        admin
            .post("/api/v1/webhooks", json!({"url": url, "events": ["ping"]}))
            .await
            .expect_invalid(&["url"]);
    }
    admin
        .post(
            "/api/v1/webhooks",
            json!({"url": "https://93.184.216.34/", "events": ["nope"]}),
        )
        .await
        .expect_invalid(&["events[0]"]);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints")
        .fetch_one(&app.state.db.write)
        .await
        .unwrap();
    assert_eq!(count, 0, "nothing stored");

    // An endpoint whose name resolves inside the network by now (DNS changed after it was
    // checked) is refused at delivery time, and the receiver never hears from Till.
    let rx = Receiver::start().await;
    let sneaky = rx.url.replace("127.0.0.1", "localhost");
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, events, secret, cursor_seq)
         VALUES (gen_random_uuid(), $1, '{ping}', 'whsec_x',
                 (SELECT last_seq FROM outbox_counter))",
    )
    .bind(&sneaky)
    .execute(&app.state.db.write)
    .await
    .unwrap();
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM webhook_endpoints")
        .fetch_one(&app.state.db.write)
        .await
        .unwrap();
    let _worker = deliver(&app);
    admin
        .post(&format!("/api/v1/webhooks/{id}/test"), json!(null))
        .await
        .expect_status(202);
    let until = Instant::now() + Duration::from_secs(10);
    let error = loop {
        let e: Option<String> =
            sqlx::query_scalar("SELECT last_error FROM webhook_deliveries WHERE endpoint_id = $1")
                .bind(id)
                .fetch_optional(&app.state.db.write)
                .await
                .unwrap()
                .flatten();
        if let Some(e) = e {
            break e;
        }
        assert!(Instant::now() < until, "no attempt recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(error.contains("non-public"), "{error}");
    assert!(rx.got().is_empty() && rx.script.seen.lock().unwrap().is_empty());
}

#[test]
fn backoff_doubles_with_jitter_and_stays_capped() {
    let base = Duration::from_secs(30);
    for attempt in 1..=12 {
        let d = till_server::webhooks::backoff(base, attempt).num_milliseconds() as f64;
        let nominal = (30_000.0 * 2f64.powi(attempt - 1)).min(6.0 * 3600.0 * 1000.0);
        assert!(d >= nominal * 0.8 && d <= nominal * 1.2, "{attempt}: {d}");
    }
}
