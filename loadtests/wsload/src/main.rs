//! WebSocket fan-out load generator for `loadtests/ws.sh` (issue #5).
//!
//! 1. Signs in (one staff account shared by the staff clients, one cashier). With `--staff N` below
//!    `--clients`, only N clients are staff; the others are customers, spread over
//!    `--customer-accounts` accounts registered for this run (`POST /auth/register`), and every
//!    order is placed for one of those customers in turn, so it goes to every staff client and to
//!    that customer's clients only (a real shop: a few boards, many customers watching their order).
//! 2. Opens `--clients` WebSockets to `--ws` (at most `--connect-concurrency` handshakes in flight,
//!    optionally from several loopback source addresses) and waits until every one got `welcome`.
//! 3. Samples the server's memory (`/proc/<--server-pid>/status`) while it holds them idle.
//! 4. Places orders through `--api` at `--rate` per second for `--duration` seconds.
//! 5. Waits `--drain` seconds, then tells every client to stop and checks that each one is still open
//!    and received an `order.created` for every order it may see (staff: all; a customer: its own),
//!    and that no customer received another customer's order.
//!
//! Latency of one (client, event) pair = the client's receive time − the event's `at` (server clock,
//! same machine; stamped inside the order transaction just before commit, so a slight overestimate).
//! A second figure uses the time the POST answer reached the generator instead (after the commit, so
//! an underestimate; it can be negative when the event beats the HTTP answer).
//!
//! Prints a Markdown table and `key=value` lines (prefixed `result.`) for the script.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};

mod client;

#[derive(Clone)]
struct Args {
    ws: String,
    api: String,
    clients: usize,
    rate: f64,
    duration: f64,
    drain: f64,
    staff_email: String,
    staff_password: String,
    cashier_email: String,
    cashier_password: String,
    connect_concurrency: usize,
    source_addrs: usize,
    server_pid: Option<u32>,
    welcome_timeout: f64,
    /// Clients signed in as staff (the rest are customers); `None`: all of them.
    staff: Option<usize>,
    customer_accounts: usize,
    /// The runtime's worker threads (the clients' tasks run on them).
    reader_threads: usize,
}

fn parse_args() -> Args {
    let mut a = Args {
        ws: "ws://127.0.0.1:8080/api/v1/ws".into(),
        api: "http://127.0.0.1:8080".into(),
        clients: 10_000,
        rate: 5.0,
        duration: 20.0,
        drain: 3.0,
        staff_email: "staff@till.local".into(),
        staff_password: "staff-pass-1".into(),
        cashier_email: "cashier@till.local".into(),
        cashier_password: "cashier-pass-1".into(),
        connect_concurrency: 200,
        source_addrs: 1,
        server_pid: None,
        welcome_timeout: 180.0,
        staff: None,
        customer_accounts: 100,
        reader_threads: 2,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let k = argv[i].as_str();
        let v = argv.get(i + 1).cloned().unwrap_or_else(|| {
            eprintln!("wsload: {k} needs a value");
            std::process::exit(2)
        });
        let num = |v: &str| -> f64 {
            v.parse().unwrap_or_else(|_| {
                eprintln!("wsload: {k} wants a number, got {v:?}");
                std::process::exit(2)
            })
        };
        match k {
            "--ws" => a.ws = v,
            "--api" => a.api = v,
            "--clients" => a.clients = num(&v) as usize,
            "--rate" => a.rate = num(&v),
            "--duration" => a.duration = num(&v),
            "--drain" => a.drain = num(&v),
            "--staff-email" => a.staff_email = v,
            "--staff-password" => a.staff_password = v,
            "--cashier-email" => a.cashier_email = v,
            "--cashier-password" => a.cashier_password = v,
            "--connect-concurrency" => a.connect_concurrency = (num(&v) as usize).max(1),
            "--source-addrs" => a.source_addrs = (num(&v) as usize).clamp(1, 250),
            "--server-pid" => a.server_pid = Some(num(&v) as u32),
            "--welcome-timeout" => a.welcome_timeout = num(&v),
            "--staff" => a.staff = Some(num(&v) as usize),
            "--customer-accounts" => a.customer_accounts = (num(&v) as usize).max(1),
            "--reader-threads" => a.reader_threads = (num(&v) as usize).max(1),
            _ => {
                eprintln!("wsload: unknown argument {k}");
                std::process::exit(2)
            }
        }
        i += 2;
    }
    a
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Order ids are UUIDs; a 64-bit hash of the text is plenty to tell a few thousand apart.
fn id_key(id: &str) -> u64 {
    // FNV-1a
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    at: Option<&'a str>,
    #[serde(borrow)]
    order: Option<OrderRef<'a>>,
}

#[derive(Deserialize)]
struct OrderRef<'a> {
    #[serde(borrow)]
    id: &'a str,
}

#[derive(Default)]
struct ClientStats {
    /// The customer account this client signed in as; `None` for staff.
    account: Option<usize>,
    connected: bool,
    welcomed: bool,
    open_at_end: bool,
    end_reason: Option<String>,
    /// (order id key, receive µs, receive − at in µs)
    created: Vec<(u64, i64, i64)>,
    other_events: usize,
    resyncs: usize,
}

struct Shared {
    welcomed: AtomicUsize,
    connected: AtomicUsize,
    failed: AtomicUsize,
    errors: Mutex<HashMap<String, usize>>,
}

impl Shared {
    fn error(&self, e: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut m = self.errors.lock().unwrap();
        *m.entry(e).or_default() += 1;
    }
}

async fn register_customers(http: &reqwest::Client, args: &Args) -> Vec<(Arc<String>, String)> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    eprintln!(
        "wsload: registering {} customer accounts",
        args.customer_accounts
    );
    // A few at a time: each registration and sign-in hashes a password (Argon2id).
    let gate = Arc::new(Semaphore::new(8));
    let tasks = (0..args.customer_accounts).map(|a| {
        let (http, api, gate) = (http.clone(), args.api.clone(), gate.clone());
        let email = format!("wsload-{run}-{a}@example.com");
        tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let password = "wsload-customer-pass";
            let r = http
                .post(format!("{api}/api/v1/auth/register"))
                .json(&json!({"email": email, "password": password, "name": format!("Load customer {a}")}))
                .send()
                .await
                .unwrap_or_else(|e| fail(&format!("register: {e}")));
            if r.status() != 201 {
                fail(&format!("register {email}: {}", r.status()));
            }
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let customer_id = body["user"]["customer_id"]
                .as_str()
                .unwrap_or_else(|| fail(&format!("register {email}: no customer_id in {body}")))
                .to_owned();
            (Arc::new(login(&http, &api, &email, password).await), customer_id)
        })
    });
    let mut out = Vec::with_capacity(args.customer_accounts);
    for t in tasks.collect::<Vec<_>>() {
        out.push(
            t.await
                .unwrap_or_else(|e| fail(&format!("register task: {e}"))),
        );
    }
    out
}

async fn login(http: &reqwest::Client, api: &str, email: &str, password: &str) -> String {
    let resp = http
        .post(format!("{api}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("login {email}: {e}")));
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    match body.get("access_token").and_then(|t| t.as_str()) {
        Some(t) if status.is_success() => t.to_owned(),
        _ => fail(&format!("login {email}: {status} {body}")),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("wsload: {msg}");
    std::process::exit(1)
}

/// (VmRSS, VmHWM) in KiB.
fn mem_of(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        s.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU seconds (user + system) used so far by `pid`.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = s.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the full line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn self_rss() -> u64 {
    mem_of(std::process::id()).map(|m| m.0).unwrap_or(0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn pct(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

struct Posted {
    key: u64,
    sent_us: i64,
    answered_us: i64,
    /// The customer account the order was placed for, if any.
    account: Option<usize>,
}

fn main() {
    let args = Arc::new(parse_args());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.reader_threads)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("runtime: {e}")));
    runtime.block_on(run(args));
}

async fn run(args: Arc<Args>) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let staff = Arc::new(login(&http, &args.api, &args.staff_email, &args.staff_password).await);
    let cashier = login(
        &http,
        &args.api,
        &args.cashier_email,
        &args.cashier_password,
    )
    .await;

    // Customer accounts (only when some clients are customers): registered, then signed in.
    let n_staff = args.staff.unwrap_or(args.clients).min(args.clients);
    let customers: Vec<(Arc<String>, String)> = if n_staff < args.clients {
        register_customers(&http, &args).await
    } else {
        Vec::new()
    };

    // Products to sell: made-to-order ones (no stock to run out of, no stock.low events) first.
    let resp = http
        .get(format!("{}/api/v1/products?limit=100", args.api))
        .bearer_auth(&cashier)
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("products: {e}")));
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let items = body
        .get("items")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    let mut products: Vec<String> = items
        .iter()
        .filter(|p| p.get("active") != Some(&Value::Bool(false)))
        .filter(|p| p.get("track_stock") == Some(&Value::Bool(false)))
        .filter_map(|p| p.get("id")?.as_str().map(str::to_owned))
        .collect();
    if products.is_empty() {
        products = items
            .iter()
            .filter_map(|p| p.get("id")?.as_str().map(str::to_owned))
            .collect();
    }
    if products.is_empty() {
        fail(&format!("no products to order (GET /products said {body})"));
    }

    // ---------------------------------------------------------------- connect
    let shared = Arc::new(Shared {
        welcomed: AtomicUsize::new(0),
        connected: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        errors: Mutex::new(HashMap::new()),
    });
    let gate = Arc::new(Semaphore::new(args.connect_concurrency));
    let (stop, stopped) = watch::channel(false);
    eprintln!(
        "wsload: opening {} WebSockets to {} ({} handshakes at a time, {} source address(es))",
        args.clients, args.ws, args.connect_concurrency, args.source_addrs
    );
    let base_mem = args.server_pid.and_then(mem_of);
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let (token, account) = if i < n_staff {
            (staff.clone(), None)
        } else {
            let a = (i - n_staff) % customers.len();
            (customers[a].0.clone(), Some(a))
        };
        handles.push(tokio::spawn(client::run(
            i,
            args.clone(),
            token,
            account,
            shared.clone(),
            gate.clone(),
            stopped.clone(),
        )));
    }
    let deadline = Instant::now() + Duration::from_secs_f64(args.welcome_timeout);
    let mut last_print = Instant::now();
    loop {
        let w = shared.welcomed.load(Ordering::Relaxed);
        let f = shared.failed.load(Ordering::Relaxed);
        if w + f >= args.clients || Instant::now() > deadline {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "wsload:   {w} welcomed, {f} failed after {:.1} s",
                t0.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connect_secs = t0.elapsed().as_secs_f64();
    let welcomed = shared.welcomed.load(Ordering::Relaxed);
    eprintln!(
        "wsload: {welcomed}/{} welcomed in {connect_secs:.1} s ({} failed)",
        args.clients,
        shared.failed.load(Ordering::Relaxed)
    );
    for (e, n) in shared.errors.lock().unwrap().iter() {
        eprintln!("wsload:   {n} × {e}");
    }

    // Idle holding: let the server settle, then read its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_mem = args.server_pid.and_then(mem_of);
    let load_before = loadavg();

    // ---------------------------------------------------------------- orders
    let total_orders = (args.rate * args.duration).round() as usize;
    eprintln!(
        "wsload: placing {total_orders} orders at {}/s through {} (load average {load_before})",
        args.rate, args.api
    );
    let posted: Arc<Mutex<Vec<Posted>>> = Arc::new(Mutex::new(Vec::new()));
    let post_errors: Arc<Mutex<HashMap<String, usize>>> = Arc::new(Mutex::new(HashMap::new()));
    let cashier = Arc::new(cashier);
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    let mut post_handles = Vec::with_capacity(total_orders);
    let mut peak_rss = 0u64;
    let mut last_sample = Instant::now();
    let order_t0 = Instant::now();
    let cpu0 = (
        args.server_pid.map(cpu_secs).unwrap_or(0.0),
        cpu_secs(std::process::id()),
    );
    for n in 0..total_orders {
        interval.tick().await;
        if last_sample.elapsed() > Duration::from_millis(500) {
            if let Some((rss, _)) = args.server_pid.and_then(mem_of) {
                peak_rss = peak_rss.max(rss);
            }
            last_sample = Instant::now();
        }
        let http = http.clone();
        let api = args.api.clone();
        let cashier = cashier.clone();
        let product = products[n % products.len()].clone();
        let account = (!customers.is_empty()).then(|| n % customers.len());
        let customer_id = account.map(|a| customers[a].1.clone());
        let posted = posted.clone();
        let post_errors = post_errors.clone();
        post_handles.push(tokio::spawn(async move {
            let sent_us = now_us();
            let r = http
                .post(format!("{api}/api/v1/orders"))
                .bearer_auth(cashier.as_str())
                .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
                .json(
                    &json!({"fulfilment": "in_store", "customer_id": customer_id,
                              "lines": [{"product_id": product, "quantity": 1}]}),
                )
                .send()
                .await;
            let answered_us = now_us();
            let err = match r {
                Ok(resp) if resp.status() == 201 => {
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    match body.get("id").and_then(|v| v.as_str()) {
                        Some(id) => {
                            posted.lock().unwrap().push(Posted {
                                key: id_key(id),
                                sent_us,
                                answered_us,
                                account,
                            });
                            return;
                        }
                        None => "201 without id".to_owned(),
                    }
                }
                Ok(resp) => {
                    let s = resp.status();
                    let b = resp.text().await.unwrap_or_default();
                    format!("{s} {}", b.chars().take(200).collect::<String>())
                }
                Err(e) => format!("{e}"),
            };
            *post_errors.lock().unwrap().entry(err).or_default() += 1;
        }));
    }
    for h in post_handles {
        let _ = h.await;
    }
    let order_secs = order_t0.elapsed().as_secs_f64();
    let cpu_b = (args.server_pid.map(cpu_secs).unwrap_or(0.0) - cpu0.0) / order_secs;
    let cpu_gen = (cpu_secs(std::process::id()) - cpu0.1) / order_secs;
    let load_during = loadavg();
    // Let the last events arrive.
    let drain_end = Instant::now() + Duration::from_secs_f64(args.drain);
    while Instant::now() < drain_end {
        if let Some((rss, _)) = args.server_pid.and_then(mem_of) {
            peak_rss = peak_rss.max(rss);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let end_mem = args.server_pid.and_then(mem_of);
    if let Some((rss, _)) = end_mem {
        peak_rss = peak_rss.max(rss);
    }
    let gen_rss = self_rss();

    // ---------------------------------------------------------------- collect
    // Every client still open closes (1000) and reports what it got.
    let _ = stop.send(true);
    let mut stats = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(s) = h.await {
            stats.push(s);
        }
    }
    let posted = std::mem::take(&mut *posted.lock().unwrap());
    let created: HashMap<u64, &Posted> = posted.iter().map(|p| (p.key, p)).collect();
    let n_created = created.len();

    let mut lat_at: Vec<i64> = Vec::with_capacity(stats.len() * n_created);
    let mut lat_answer: Vec<i64> = Vec::with_capacity(stats.len() * n_created);
    let mut lat_sent: Vec<i64> = Vec::with_capacity(stats.len() * n_created);
    let mut missing = 0usize;
    let mut foreign = 0usize;
    let mut pairs_expected = 0usize;
    let mut duplicates = 0usize;
    let mut clients_missing = 0usize;
    let mut open_at_end = 0usize;
    let mut resyncs = 0usize;
    let mut other = 0usize;
    let mut end_reasons: HashMap<String, usize> = HashMap::new();
    let mut seen = HashSet::with_capacity(n_created);
    for s in &stats {
        if s.open_at_end {
            open_at_end += 1;
        } else if s.connected {
            *end_reasons
                .entry(s.end_reason.clone().unwrap_or_default())
                .or_default() += 1;
        }
        resyncs += s.resyncs;
        other += s.other_events;
        if !s.welcomed {
            continue;
        }
        seen.clear();
        // Staff may see every order; a customer only the orders placed for its account.
        let expected = match s.account {
            None => n_created,
            Some(a) => created.values().filter(|p| p.account == Some(a)).count(),
        };
        pairs_expected += expected;
        for &(key, recv, since_at) in &s.created {
            let Some(p) = created.get(&key) else { continue };
            if s.account.is_some() && p.account != s.account {
                foreign += 1;
                continue;
            }
            if !seen.insert(key) {
                duplicates += 1;
                continue;
            }
            lat_at.push(since_at);
            lat_answer.push(recv - p.answered_us);
            lat_sent.push(recv - p.sent_us);
        }
        let m = expected - seen.len();
        missing += m;
        if m > 0 {
            clients_missing += 1;
        }
    }
    lat_at.sort_unstable();
    lat_answer.sort_unstable();
    lat_sent.sort_unstable();
    let mut post_lat: Vec<i64> = posted.iter().map(|p| p.answered_us - p.sent_us).collect();
    post_lat.sort_unstable();
    let post_failed: usize = post_errors.lock().unwrap().values().sum();

    // ---------------------------------------------------------------- report
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!();
    println!(
        "WebSocket fan-out: {} clients ({n_staff} staff, {} customers over {} accounts) → instance B, {total_orders} orders at {}/s → instance A ({} cores; load average {load_before} before orders, {load_during} after)",
        args.clients,
        args.clients - n_staff,
        customers.len(),
        args.rate,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!();
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!(
        "| connections welcomed | {welcomed} / {} (in {connect_secs:.1} s) | {} |",
        args.clients, args.clients
    );
    println!(
        "| still open at the end | {open_at_end} / {} | {} |",
        args.clients, args.clients
    );
    if let Some((rss, _)) = base_mem {
        println!(
            "| instance B RSS before the clients | {:.1} MiB | |",
            mib(rss)
        );
    }
    if let Some((rss, hwm)) = idle_mem {
        println!(
            "| instance B RSS holding them, idle | {:.1} MiB (VmHWM {:.1} MiB) | < 300 MiB |",
            mib(rss),
            mib(hwm)
        );
    }
    if let Some((rss, hwm)) = end_mem {
        println!(
            "| instance B RSS during/after orders | peak sample {:.1} MiB, end {:.1} MiB, VmHWM {:.1} MiB | < 300 MiB |",
            mib(peak_rss),
            mib(rss),
            mib(hwm)
        );
    }
    println!(
        "| orders created | {n_created} / {total_orders} in {order_secs:.1} s ({post_failed} failed); POST p50 {:.1} ms, p99 {:.1} ms | |",
        pct(&post_lat, 50.0),
        pct(&post_lat, 99.0)
    );
    println!(
        "| (client, event) pairs delivered | {} / {pairs_expected} | all |",
        lat_at.len()
    );
    println!(
        "| missing | {missing} (clients missing any: {clients_missing}; duplicates {duplicates}; resync frames {resyncs}) | 0 |"
    );
    println!("| another customer's order received | {foreign} | 0 |");
    println!(
        "| latency from event `at` (overestimate) | p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms | p99 < 100 ms |",
        pct(&lat_at, 50.0),
        pct(&lat_at, 99.0),
        pct(&lat_at, 99.9),
        pct(&lat_at, 100.0)
    );
    println!(
        "| latency from POST answer (underestimate) | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms | |",
        pct(&lat_answer, 50.0),
        pct(&lat_answer, 99.0),
        pct(&lat_answer, 100.0)
    );
    println!(
        "| latency from POST sent (upper bound) | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms | |",
        pct(&lat_sent, 50.0),
        pct(&lat_sent, 99.0),
        pct(&lat_sent, 100.0)
    );
    println!("| generator RSS | {:.1} MiB | |", mib(gen_rss));
    println!("| CPU while ordering (cores) | instance B {cpu_b:.2}, generator {cpu_gen:.2} | |");
    println!();
    if !end_reasons.is_empty() {
        println!("connections that ended early:");
        for (r, n) in &end_reasons {
            println!("  {n} × {r}");
        }
    }
    for (e, n) in shared.errors.lock().unwrap().iter() {
        println!("connect failures: {n} × {e}");
    }
    for (e, n) in post_errors.lock().unwrap().iter() {
        println!("order failures: {n} × {e}");
    }
    if other > 0 {
        println!("other frames (not order.created): {other}");
    }
    println!("result.welcomed={welcomed}");
    println!("result.open_at_end={open_at_end}");
    println!("result.clients={}", args.clients);
    println!("result.orders={n_created}");
    println!("result.missing={missing}");
    println!("result.foreign={foreign}");
    println!("result.p50_ms={:.1}", pct(&lat_at, 50.0));
    println!("result.p99_ms={:.1}", pct(&lat_at, 99.0));
    println!("result.max_ms={:.1}", pct(&lat_at, 100.0));
    if let (Some((irss, _)), Some((_, hwm))) = (idle_mem, end_mem) {
        println!("result.rss_idle_kib={irss}");
        println!("result.rss_peak_kib={}", peak_rss.max(irss));
        println!("result.hwm_kib={hwm}");
    }
}
