//! `mixload startup`: how long a `till serve` takes from process start until its readiness
//! probe answers 200, and how much memory it holds once idle. Starts the command given after
//! `--` several times (one at a time), polls the probe every 5 ms (a shell loop around curl
//! would measure curl's own start-up as much as Till's), waits `--settle` seconds, reads VmRSS,
//! then stops it with SIGTERM (as an orchestrator would) and waits for it to exit.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{fail, procs};

pub struct StartupArgs {
    pub url: String,
    pub runs: usize,
    pub settle: f64,
    pub log: Option<String>,
    pub pid_file: Option<String>,
    pub json: Option<String>,
    pub cmd: Vec<String>,
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn stop(pid: u32, child: &mut std::process::Child) {
    // SIGTERM through kill(1): std only offers SIGKILL, and a graceful stop is what is measured
    // in production too (the next start must find the port free and the database quiet).
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                eprintln!("mixload: pid {pid} still running 20 s after SIGTERM; SIGKILL");
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
        }
    }
}

pub async fn run(a: StartupArgs) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_else(|e| fail(&format!("http client: {e}")));
    let mut ready_ms = Vec::new();
    let mut rss_kib = Vec::new();
    for run in 1..=a.runs {
        let out = match &a.log {
            Some(p) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .unwrap_or_else(|e| fail(&format!("open {p}: {e}"))),
            ),
            None => Stdio::null(),
        };
        let t0 = Instant::now();
        let mut child = Command::new(&a.cmd[0])
            .args(&a.cmd[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| fail(&format!("start {}: {e}", a.cmd[0])));
        let pid = child.id();
        if let Some(p) = &a.pid_file {
            let _ = std::fs::write(p, pid.to_string());
        }
        let ready = loop {
            if let Ok(r) = http.get(&a.url).send().await {
                if r.status() == 200 {
                    break t0.elapsed();
                }
            }
            if let Ok(Some(st)) = child.try_wait() {
                fail(&format!("{} exited before it was ready ({st})", a.cmd[0]));
            }
            if t0.elapsed() > Duration::from_secs(60) {
                stop(pid, &mut child);
                fail(&format!("not ready after 60 s at {}", a.url));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        tokio::time::sleep(Duration::from_secs_f64(a.settle)).await;
        let rss = procs::rss_kib(pid).unwrap_or(0);
        stop(pid, &mut child);
        if let Some(p) = &a.pid_file {
            let _ = std::fs::remove_file(p);
        }
        let ms = ready.as_secs_f64() * 1000.0;
        eprintln!(
            "mixload: start {run}: ready after {ms:.0} ms; RSS {:.1} MiB after {:.0} s idle",
            rss as f64 / 1024.0,
            a.settle
        );
        ready_ms.push(ms);
        rss_kib.push(rss as f64);
    }
    let (m_ready, m_rss) = (median(&ready_ms), median(&rss_kib));
    println!(
        "start-up to ready: median {m_ready:.0} ms of {} starts (min {:.0}, max {:.0}); idle RSS median {:.1} MiB",
        a.runs,
        ready_ms.iter().copied().fold(f64::INFINITY, f64::min),
        ready_ms.iter().copied().fold(0.0, f64::max),
        m_rss / 1024.0
    );
    if let Some(p) = &a.json {
        let doc = json!({"ready_ms": ready_ms, "rss_kib": rss_kib, "median_ready_ms": m_ready,
                         "median_rss_kib": m_rss, "settle_s": a.settle});
        std::fs::write(p, serde_json::to_string_pretty(&doc).expect("json"))
            .unwrap_or_else(|e| fail(&format!("write {p}: {e}")));
    }
}
