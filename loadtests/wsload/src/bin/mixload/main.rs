//! Mixed shop load for `loadtests/mixed.sh`: the requests a shop's deployment is sized for, with
//! figures per request type (wrk reports only one latency for everything it sends).
//!
//!   mixload prepare --url URL --admin-email E --admin-password P [--cashiers N] [--staff N]
//!                   [--customers N] --out accounts.json
//!   mixload startup --url READINESS_URL [--runs 5] [--settle 3] [--log FILE] [--pid-file FILE]
//!                   [--json FILE] -- COMMAND ARGS…
//!   mixload run --url URL --accounts accounts.json [--connections C] [--duration S] [--warmup S]
//!               [--mix browse=60,search=15,product=10,checkout=10,board=2.5,order=2.5]
//!               [--ws-clients 200] [--ws-boards 20] [--customer-share 0.3] [--threads 2]
//!               [--timeout 10] [--catalog-pages 20] [--no-gzip]
//!               [--cpu NAME=pids:P,P|comm:NAME]… [--rss NAME=PID]… [--meta KEY=VALUE]…
//!               [--json FILE] [--csv FILE] [--max-errors N]
//!
//! `run`: the WebSocket clients connect first (boards signed in as staff, the rest as customers)
//! and stay for the whole run; then `--connections` workers each keep one keep-alive connection
//! busy (closed loop), drawing each request's type by the `--mix` weights (browse: a listing
//! page by category, the front page or the next page of the last listing; search: `q=` a name
//! word, its start, a SKU or a barcode; product: one product; checkout: a 3-line order and its
//! cash payment, by a cashier; board: `GET /orders/board`; order: one of this run's orders, by
//! staff). Catalogue reads are anonymous, as a shop's visitors are. `--warmup` seconds are sent
//! but not counted; a request counts when it completes in the `--duration` seconds after that.
//! Over the same window, CPU time of the `--cpu` groups (from `/proc`) and peak RSS of the
//! `--rss` processes are read. Prints a table; `--json` writes everything, `--csv` appends one
//! line per type (the `--meta` values first). Exit status 3 when more than `--max-errors`
//! requests or WebSocket connections failed.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tokio::sync::{watch, Semaphore};

mod conn;
mod load;
mod prepare;
mod procs;
mod startup;
mod stats;
mod ws;

use stats::{Kind, Set, TypeStats};

pub fn fail(msg: &str) -> ! {
    eprintln!("mixload: {msg}");
    std::process::exit(1)
}

struct RunArgs {
    url: String,
    ws_url: Option<String>,
    accounts: String,
    connections: usize,
    duration: f64,
    warmup: f64,
    mix: [f64; 6],
    ws_clients: usize,
    ws_boards: usize,
    customer_share: f64,
    threads: usize,
    timeout: f64,
    catalog_pages: usize,
    gzip: bool,
    cpu: Vec<(String, procs::Select)>,
    rss: Vec<(String, u32)>,
    meta: Vec<(String, String)>,
    json: Option<String>,
    csv: Option<String>,
    max_errors: Option<u64>,
}

fn num(k: &str, v: &str) -> f64 {
    v.parse()
        .unwrap_or_else(|_| fail(&format!("{k} wants a number, got {v:?}")))
}

fn split_kv<'a>(k: &str, v: &'a str) -> (&'a str, &'a str) {
    v.split_once('=')
        .unwrap_or_else(|| fail(&format!("{k} wants NAME=VALUE, got {v:?}")))
}

/// `--mix browse=60,search=15,…`: weights in the order of `load::MIX_KINDS`; types left out
/// weigh nothing.
fn parse_mix(v: &str) -> [f64; 6] {
    let mut w = [0.0; 6];
    for part in v.split(',').filter(|p| !p.is_empty()) {
        let (name, x) = split_kv("--mix", part);
        let i = load::MIX_KINDS
            .iter()
            .position(|k| k.name() == name)
            .unwrap_or_else(|| fail(&format!("--mix: unknown type {name:?} (browse, search, product, checkout, board, order)")));
        w[i] = num("--mix", x).max(0.0);
    }
    if w.iter().sum::<f64>() <= 0.0 {
        fail("--mix: every weight is 0");
    }
    w
}

fn args_after(argv: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < argv.len() {
        let k = argv[i].clone();
        if k == "--no-gzip" {
            out.push((k, String::new()));
            i += 1;
            continue;
        }
        let v = argv
            .get(i + 1)
            .cloned()
            .unwrap_or_else(|| fail(&format!("{k} needs a value")));
        out.push((k, v));
        i += 2;
    }
    out
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (mode, rest) = match argv.split_first() {
        Some((m, r)) => (m.as_str(), r),
        None => {
            fail("usage: mixload prepare|startup|run … (see the top of src/bin/mixload/main.rs)")
        }
    };
    match mode {
        "prepare" => {
            let mut a = prepare::PrepareArgs {
                url: String::new(),
                admin_email: String::new(),
                admin_password: String::new(),
                cashiers: 4,
                staff: 4,
                customers: 180,
                out: String::new(),
            };
            for (k, v) in args_after(rest) {
                match k.as_str() {
                    "--url" => a.url = v.trim_end_matches('/').to_owned(),
                    "--admin-email" => a.admin_email = v,
                    "--admin-password" => a.admin_password = v,
                    "--cashiers" => a.cashiers = num(&k, &v) as usize,
                    "--staff" => a.staff = num(&k, &v) as usize,
                    "--customers" => a.customers = num(&k, &v) as usize,
                    "--out" => a.out = v,
                    _ => fail(&format!("prepare: unknown argument {k}")),
                }
            }
            if a.url.is_empty() || a.out.is_empty() || a.admin_email.is_empty() {
                fail("prepare needs --url, --admin-email, --admin-password and --out");
            }
            if a.cashiers == 0 || a.staff == 0 {
                fail("prepare: at least one cashier and one staff account are needed");
            }
            runtime(2).block_on(prepare::run(a));
        }
        "startup" => {
            let split = rest.iter().position(|x| x == "--").unwrap_or(rest.len());
            let mut a = startup::StartupArgs {
                url: String::new(),
                runs: 5,
                settle: 3.0,
                log: None,
                pid_file: None,
                json: None,
                cmd: rest.get(split + 1..).unwrap_or_default().to_vec(),
            };
            for (k, v) in args_after(&rest[..split]) {
                match k.as_str() {
                    "--url" => a.url = v,
                    "--runs" => a.runs = (num(&k, &v) as usize).max(1),
                    "--settle" => a.settle = num(&k, &v).max(0.0),
                    "--log" => a.log = Some(v),
                    "--pid-file" => a.pid_file = Some(v),
                    "--json" => a.json = Some(v),
                    _ => fail(&format!("startup: unknown argument {k}")),
                }
            }
            if a.url.is_empty() || a.cmd.is_empty() {
                fail("startup needs --url and a command after --");
            }
            runtime(1).block_on(startup::run(a));
        }
        "run" => {
            let mut a = RunArgs {
                url: String::new(),
                ws_url: None,
                accounts: String::new(),
                connections: 64,
                duration: 20.0,
                warmup: 5.0,
                mix: parse_mix("browse=60,search=15,product=10,checkout=10,board=2.5,order=2.5"),
                ws_clients: 200,
                ws_boards: 20,
                customer_share: 0.3,
                threads: 2,
                timeout: 10.0,
                catalog_pages: 20,
                gzip: true,
                cpu: Vec::new(),
                rss: Vec::new(),
                meta: Vec::new(),
                json: None,
                csv: None,
                max_errors: None,
            };
            for (k, v) in args_after(rest) {
                match k.as_str() {
                    "--url" => a.url = v.trim_end_matches('/').to_owned(),
                    "--ws-url" => a.ws_url = Some(v),
                    "--accounts" => a.accounts = v,
                    "--connections" => a.connections = (num(&k, &v) as usize).max(1),
                    "--duration" => a.duration = num(&k, &v).max(0.1),
                    "--warmup" => a.warmup = num(&k, &v).max(0.0),
                    "--mix" => a.mix = parse_mix(&v),
                    "--ws-clients" => a.ws_clients = num(&k, &v) as usize,
                    "--ws-boards" => a.ws_boards = num(&k, &v) as usize,
                    "--customer-share" => a.customer_share = num(&k, &v).clamp(0.0, 1.0),
                    "--threads" => a.threads = (num(&k, &v) as usize).max(1),
                    "--timeout" => a.timeout = num(&k, &v).max(0.1),
                    "--catalog-pages" => a.catalog_pages = (num(&k, &v) as usize).max(1),
                    "--no-gzip" => a.gzip = false,
                    "--cpu" => {
                        let (name, spec) = split_kv(&k, &v);
                        let sel = procs::Select::parse(spec)
                            .unwrap_or_else(|e| fail(&format!("--cpu {e}")));
                        a.cpu.push((name.to_owned(), sel));
                    }
                    "--rss" => {
                        let (name, pid) = split_kv(&k, &v);
                        a.rss.push((name.to_owned(), num(&k, pid) as u32));
                    }
                    "--meta" => {
                        let (key, val) = split_kv(&k, &v);
                        a.meta.push((key.to_owned(), val.to_owned()));
                    }
                    "--json" => a.json = Some(v),
                    "--csv" => a.csv = Some(v),
                    "--max-errors" => a.max_errors = Some(num(&k, &v) as u64),
                    _ => fail(&format!("run: unknown argument {k}")),
                }
            }
            if a.url.is_empty() || a.accounts.is_empty() {
                fail("run needs --url and --accounts");
            }
            a.ws_boards = a.ws_boards.min(a.ws_clients);
            let threads = a.threads;
            let code = runtime(threads).block_on(run(a));
            std::process::exit(code);
        }
        _ => fail(&format!("unknown mode {mode:?}: prepare, startup or run")),
    }
}

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("runtime: {e}")))
}

/// Peak and last RSS (KiB) and peak socket count of one watched process.
#[derive(Default, Clone, Copy)]
struct Mem {
    peak_kib: u64,
    end_kib: u64,
    start_kib: u64,
    start_sockets: usize,
    peak_sockets: usize,
}

async fn run(a: RunArgs) -> i32 {
    let accounts: prepare::Accounts = serde_json::from_str(
        &std::fs::read_to_string(&a.accounts)
            .unwrap_or_else(|e| fail(&format!("read {}: {e}", a.accounts))),
    )
    .unwrap_or_else(|e| fail(&format!("{}: {e}", a.accounts)));
    if accounts.cashiers.is_empty() || accounts.staff.is_empty() {
        fail("the accounts file has no cashier or no staff account");
    }
    let token = |x: &prepare::Account| x.token.clone();
    let (categories, products, terms) = load::discover(&a.url, a.catalog_pages).await;
    eprintln!(
        "mixload: catalogue sample: {} categories, {} products, {} search strings",
        categories.len(),
        products.len(),
        terms.len()
    );

    // ------------------------------------------------------------ WebSocket clients
    let ws_url = a.ws_url.clone().unwrap_or_else(|| {
        format!(
            "{}/api/v1/ws",
            a.url
                .replacen("http://", "ws://", 1)
                .replacen("https://", "wss://", 1)
        )
    });
    let ws_shared = Arc::new(ws::WsShared::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(50));
    let mut ws_tasks = Vec::with_capacity(a.ws_clients);
    for i in 0..a.ws_clients {
        // Boards take the staff accounts in turn, customers theirs (a customer's page per
        // account when there are enough of them).
        let t = if i < a.ws_boards || accounts.customers.is_empty() {
            token(&accounts.staff[i % accounts.staff.len()])
        } else {
            token(&accounts.customers[(i - a.ws_boards) % accounts.customers.len()])
        };
        ws_tasks.push(tokio::spawn(ws::client(
            ws_url.clone(),
            Arc::new(t),
            ws_shared.clone(),
            gate.clone(),
            stop_rx.clone(),
        )));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while ws_shared.welcomed_once.load(Ordering::Relaxed) < a.ws_clients
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ws_welcomed = ws_shared.welcomed_once.load(Ordering::Relaxed);
    if a.ws_clients > 0 {
        eprintln!(
            "mixload: {ws_welcomed}/{} WebSocket clients welcomed",
            a.ws_clients
        );
    }

    // ------------------------------------------------------------ HTTP workers
    let total_w: f64 = a.mix.iter().sum();
    let mut cumulative = [0.0; 6];
    let mut acc = 0.0;
    for (i, w) in a.mix.iter().enumerate() {
        acc += w / total_w;
        cumulative[i] = acc;
    }
    cumulative[5] = 1.0;
    let t0 = Instant::now();
    let measure_from = t0 + Duration::from_secs_f64(a.warmup);
    let end = measure_from + Duration::from_secs_f64(a.duration);
    let ctx = Arc::new(load::Ctx {
        url: a.url.clone(),
        categories,
        products,
        terms,
        cashiers: accounts.cashiers.iter().map(token).collect(),
        staff: accounts.staff.iter().map(token).collect(),
        customer_ids: accounts
            .customers
            .iter()
            .filter_map(|c| c.customer_id.clone())
            .collect(),
        cumulative,
        customer_share: a.customer_share,
        timeout: Duration::from_secs_f64(a.timeout),
        gzip: a.gzip,
        measure_from,
        end,
        recent_orders: Mutex::new(Default::default()),
        connects: Default::default(),
    });
    eprintln!(
        "mixload: {} connections to {}, {:.0} s warm-up + {:.0} s measured",
        a.connections, a.url, a.warmup, a.duration
    );
    let seed0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let workers: Vec<_> = (0..a.connections)
        .map(|i| {
            tokio::spawn(load::worker(
                ctx.clone(),
                seed0.wrapping_add(i as u64 * 7919),
            ))
        })
        .collect();

    // The window: CPU at both ends, memory sampled through it.
    tokio::time::sleep_until(measure_from.into()).await;
    ws_shared.measuring.store(true, Ordering::Relaxed);
    let cpu0 = procs::sample(&a.cpu);
    let self0 = procs::self_ticks();
    let mach0 = procs::machine_ticks();
    let w0 = Instant::now();
    let ws_open_start = ws_shared.open.load(Ordering::Relaxed);
    let mut mem: Vec<Mem> = a
        .rss
        .iter()
        .map(|(_, pid)| {
            let r = procs::rss_kib(*pid).unwrap_or(0);
            let k = procs::sockets(*pid).unwrap_or(0);
            Mem {
                peak_kib: r,
                end_kib: r,
                start_kib: r,
                start_sockets: k,
                peak_sockets: k,
            }
        })
        .collect();
    while Instant::now() + Duration::from_millis(250) < end {
        tokio::time::sleep(Duration::from_millis(250)).await;
        for (m, (_, pid)) in mem.iter_mut().zip(&a.rss) {
            if let Some(r) = procs::rss_kib(*pid) {
                m.peak_kib = m.peak_kib.max(r);
                m.end_kib = r;
            }
            m.peak_sockets = m.peak_sockets.max(procs::sockets(*pid).unwrap_or(0));
        }
    }
    tokio::time::sleep_until(end.into()).await;
    let window = w0.elapsed().as_secs_f64();
    let cpu1 = procs::sample(&a.cpu);
    let self1 = procs::self_ticks();
    let mach1 = procs::machine_ticks();
    ws_shared.measuring.store(false, Ordering::Relaxed);
    let ws_open_end = ws_shared.open.load(Ordering::Relaxed);

    let mut all = Set::default();
    for w in workers {
        match w.await {
            Ok(s) => all.merge(&s),
            Err(e) => fail(&format!("worker: {e}")),
        }
    }
    let _ = stop_tx.send(true);
    let mut delays =
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("bounds");
    for t in ws_tasks {
        if let Ok(h) = t.await {
            let _ = delays.add(&h);
        }
    }

    // ------------------------------------------------------------ report
    let d = a.duration;
    let http_all = all.all_http();
    let mut rows: Vec<(String, TypeStats)> = Kind::ALL
        .iter()
        .map(|k| (k.name().to_owned(), all.of(*k).clone()))
        .collect();
    rows.push(("all HTTP".to_owned(), http_all.clone()));
    println!();
    println!(
        "mixed load: {} connections, {:.0} s measured after {:.0} s warm-up, {} WebSocket clients ({} boards); {}",
        a.connections,
        d,
        a.warmup,
        a.ws_clients,
        a.ws_boards,
        a.meta.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
    );
    println!();
    println!("| type | requests | req/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, s) in &rows {
        println!(
            "| {name} | {} | {:.1} | {:.2} | {:.2} | {:.1} | {} |",
            s.requests,
            s.requests as f64 / d,
            s.pct_ms(50.0),
            s.pct_ms(99.0),
            s.pct_ms(100.0),
            s.errors
        );
    }
    for (name, s) in &rows {
        if s.errors > 0 && name != "all HTTP" {
            println!("errors, {name}: {}", s.error_summary());
            for x in &s.samples {
                println!("  e.g. {x}");
            }
        }
    }
    let opened = ctx.connects.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "HTTP connections opened: {opened} by {} workers (one each, plus reopenings after a close or a failure)",
        a.connections
    );
    let ws_errors = ws_shared.errors.lock().unwrap().clone();
    let ws_error_count: u64 = ws_errors.values().sum();
    let frames = ws_shared.frames.load(Ordering::Relaxed);
    let events = ws_shared.events.load(Ordering::Relaxed);
    let pct = |h: &hdrhistogram::Histogram<u64>, p: f64| {
        if h.is_empty() {
            f64::NAN
        } else {
            h.value_at_quantile(p / 100.0) as f64 / 1000.0
        }
    };
    if a.ws_clients > 0 {
        println!(
            "WebSocket: {ws_welcomed}/{} welcomed, open {ws_open_start} at the start and {ws_open_end} at the end of the window; {frames} frames ({:.1}/s; {events} events, delay p50 {:.1} ms, p99 {:.1} ms; {} resyncs); errors {ws_error_count}",
            a.ws_clients,
            frames as f64 / d,
            pct(&delays, 50.0),
            pct(&delays, 99.0),
            ws_shared.resyncs.load(Ordering::Relaxed),
        );
        for (e, n) in &ws_errors {
            println!("  WebSocket error: {n}× {e}");
        }
    }
    // CPU: each group's seconds over the window, as cores and as a share of the groups' sum.
    let spent: Vec<f64> = cpu0
        .iter()
        .zip(&cpu1)
        .map(|(a0, a1)| a1.saturating_sub(*a0) as f64 / procs::HZ)
        .collect();
    let groups_sum: f64 = spent.iter().sum();
    let gen_s = self1.saturating_sub(self0) as f64 / procs::HZ;
    let mach_busy = (mach1.0.saturating_sub(mach0.0)) as f64 / procs::HZ;
    let mach_total = (mach1.1.saturating_sub(mach0.1)) as f64 / procs::HZ;
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut cpu_json = Vec::new();
    if !a.cpu.is_empty() {
        println!();
        println!("| CPU over {window:.1} s | CPU s | cores | share of server side |");
        println!("|---|---:|---:|---:|");
        for ((name, _), s) in a.cpu.iter().zip(&spent) {
            let share = if groups_sum > 0.0 {
                s / groups_sum * 100.0
            } else {
                0.0
            };
            println!("| {name} | {s:.1} | {:.2} | {share:.1} % |", s / window);
            cpu_json
                .push(json!({"name": name, "cpu_s": s, "cores": s / window, "share_pct": share}));
        }
        println!(
            "| (load generator) | {gen_s:.1} | {:.2} | |",
            gen_s / window
        );
        // What else ran: other work on a shared machine, and the kernel's time not charged to
        // any process (softirqs of the loopback traffic, among others).
        let other = (mach_busy - groups_sum - gen_s).max(0.0);
        println!(
            "| (everything else) | {other:.1} | {:.2} | |",
            other / window
        );
        println!(
            "| (whole machine, busy) | {mach_busy:.1} | {:.2} of {ncpu} | |",
            mach_busy / window
        );
    }
    let mut mem_json = Map::new();
    for ((name, pid), m) in a.rss.iter().zip(&mem) {
        println!(
            "memory {name} (pid {pid}): RSS {:.1} MiB at the start of the window, peak {:.1} MiB, end {:.1} MiB; {} sockets at the start, up to {}",
            m.start_kib as f64 / 1024.0,
            m.peak_kib as f64 / 1024.0,
            m.end_kib as f64 / 1024.0,
            m.start_sockets,
            m.peak_sockets
        );
        mem_json.insert(
            name.clone(),
            json!({"pid": pid, "start_kib": m.start_kib, "peak_kib": m.peak_kib, "end_kib": m.end_kib,
                   "start_sockets": m.start_sockets, "peak_sockets": m.peak_sockets}),
        );
    }

    let type_json = |s: &TypeStats| {
        json!({"requests": s.requests, "rps": s.requests as f64 / d, "p50_ms": s.pct_ms(50.0),
               "p90_ms": s.pct_ms(90.0), "p99_ms": s.pct_ms(99.0), "max_ms": s.pct_ms(100.0),
               "errors": s.errors, "error_kinds": s.error_kinds, "samples": s.samples})
    };
    let errors_total = http_all.errors + ws_error_count;
    if let Some(path) = &a.json {
        let mut types = Map::new();
        for (name, s) in &rows {
            types.insert(name.clone(), type_json(s));
        }
        let meta: Map<String, Value> = a
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let doc = json!({
            "meta": meta,
            "url": a.url,
            "connections": a.connections,
            "duration_s": d,
            "warmup_s": a.warmup,
            "mix": load::MIX_KINDS.iter().zip(a.mix).map(|(k, w)| (k.name().to_owned(), json!(w))).collect::<Map<_, _>>(),
            "types": types,
            "errors_total": errors_total,
            "http_connections_opened": opened,
            "ws": {"clients": a.ws_clients, "boards": a.ws_boards, "welcomed": ws_welcomed,
                   "open_start": ws_open_start, "open_end": ws_open_end, "frames": frames,
                   "frames_per_s": frames as f64 / d, "events": events,
                   "delay_p50_ms": pct(&delays, 50.0), "delay_p99_ms": pct(&delays, 99.0),
                   "resyncs": ws_shared.resyncs.load(Ordering::Relaxed),
                   "errors": ws_error_count, "error_kinds": ws_errors},
            "cpu": {"window_s": window, "groups": cpu_json, "generator_s": gen_s,
                    "machine_busy_s": mach_busy, "machine_total_s": mach_total, "cores": ncpu},
            "memory": mem_json,
        });
        let text = serde_json::to_string_pretty(&doc).expect("json");
        // NaN (an empty type) is not JSON: serde_json writes null for it.
        std::fs::write(path, text).unwrap_or_else(|e| fail(&format!("write {path}: {e}")));
    }
    if let Some(path) = &a.csv {
        let new = !std::path::Path::new(path).exists();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap_or_else(|e| fail(&format!("open {path}: {e}")));
        let keys: Vec<&str> = a.meta.iter().map(|(k, _)| k.as_str()).collect();
        let vals: Vec<&str> = a.meta.iter().map(|(_, v)| v.as_str()).collect();
        if new {
            let _ = writeln!(
                f,
                "{}{}connections,type,requests,rps,p50_ms,p99_ms,errors,error_kinds",
                keys.join(","),
                if keys.is_empty() { "" } else { "," }
            );
        }
        for (name, s) in &rows {
            let _ = writeln!(
                f,
                "{}{}{},{},{},{:.1},{:.3},{:.3},{},\"{}\"",
                vals.join(","),
                if vals.is_empty() { "" } else { "," },
                a.connections,
                name,
                s.requests,
                s.requests as f64 / d,
                s.pct_ms(50.0),
                s.pct_ms(99.0),
                s.errors,
                s.error_summary().replace('"', "'")
            );
        }
    }
    match a.max_errors {
        Some(max) if errors_total > max => {
            eprintln!("mixload: {errors_total} errors (HTTP {}, WebSocket {ws_error_count}), more than the {max} allowed", http_all.errors);
            3
        }
        _ => 0,
    }
}
