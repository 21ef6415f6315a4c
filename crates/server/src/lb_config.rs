//! `till lb-config nginx|haproxy|apache --upstream HOST:PORT…`: a complete, ready-to-run
//! load-balancer configuration for several `till serve` instances.
//!
//! Every generated config does the same things, in each balancer's own terms:
//! - spreads requests over the instances and takes a failed one out for a few seconds;
//! - retries a request on another instance only when that is safe: always when the connection
//!   could not be made, and after an error/timeout/502/503 only for idempotent methods (never
//!   POST or PATCH, so an order is never placed twice by the balancer);
//! - keeps connections to the instances alive and upgrades `/api/v1/ws` to a WebSocket;
//! - forwards `X-Forwarded-For` (appended), `X-Forwarded-Proto` and `X-Request-Id` (kept, or made);
//! - refuses bodies over `MAX_BODY_BYTES` and slows down password guessing on `/auth/login`.
//!
//! The repository's `nginx/nginx.conf` (used by docker-compose.yml) is this module's output; a
//! unit test keeps the two equal, so change the generator and regenerate the file, never the file.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Balancer {
    Nginx,
    Haproxy,
    Apache,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LbArgs {
    /// Which load balancer to write a configuration for.
    #[arg(value_enum)]
    pub balancer: Balancer,
    /// The `till serve` instances, as HOST:PORT (several after one flag, or the flag repeated).
    #[arg(long, required = true, num_args = 1.., value_parser = Upstream::parse)]
    pub upstream: Vec<Upstream>,
    /// Where the balancer listens: PORT or ADDRESS:PORT.
    #[arg(long, default_value = "80", value_parser = Listen::parse)]
    pub listen: Listen,
    /// Serve the static UI from this directory at the balancer (nginx, apache); without it the
    /// instances serve it (STATIC_DIR).
    #[arg(long)]
    pub static_dir: Option<PathBuf>,
    /// DNS server that upstream host names are re-resolved with every few seconds, so instances
    /// added or removed (`docker compose up --scale web=N`) are followed; 127.0.0.11 under Docker.
    /// nginx needs 1.27.3 or later (or NGINX Plus) for this.
    #[arg(long)]
    pub resolver: Option<IpAddr>,
    /// Put the pid file, logs and temporary files under this directory (to run the balancer
    /// unprivileged or beside another one). Without it: the balancer's defaults, logs to stdout/stderr.
    #[arg(long)]
    pub runtime_dir: Option<PathBuf>,
    /// Largest accepted request body in bytes; keep it equal to Till's MAX_BODY_BYTES.
    #[arg(long, default_value_t = 1_048_576)]
    pub max_body_bytes: u64,
    /// Login attempts per minute per client IP let through by the balancer (nginx, haproxy).
    /// Till has its own, stricter per-IP and per-email limit (RATE_LIMIT_LOGIN_PER_MIN).
    #[arg(long, default_value_t = 30)]
    pub login_per_min: u32,
    /// Write the configuration to FILE instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// One application instance, `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
}

impl Upstream {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (host, port) = split_host_port(s)
            .ok_or_else(|| format!("{s:?} is not HOST:PORT (e.g. 127.0.0.1:8081 or web:8080)"))?;
        let host = host.ok_or_else(|| format!("{s:?} has no host"))?;
        Ok(Upstream { host, port })
    }

    fn is_ip(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok()
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Where the balancer listens: a port on every address, or one address and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub host: Option<String>,
    pub port: u16,
}

impl Listen {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (host, port) = split_host_port(s).ok_or_else(|| {
            format!("{s:?} is not PORT or ADDRESS:PORT (e.g. 80 or 127.0.0.1:18080)")
        })?;
        Ok(Listen { host, port })
    }

    /// `80`, `127.0.0.1:8080` or `[::1]:8080`.
    fn addr(&self) -> String {
        match &self.host {
            None => self.port.to_string(),
            Some(h) => Upstream {
                host: h.clone(),
                port: self.port,
            }
            .to_string(),
        }
    }
}

/// `PORT`, `HOST:PORT` or `[V6]:PORT` → (host, port). The host, when given, must look like a DNS
/// name or an IP address: it is written into configuration files unquoted.
fn split_host_port(s: &str) -> Option<(Option<String>, u16)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        (Some(h.to_owned()), p)
    } else if let Some((h, p)) = s.rsplit_once(':') {
        let ok = !h.is_empty()
            && h.len() <= 253
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
        if !ok {
            return None;
        }
        (Some(h.to_owned()), p)
    } else {
        (None, s)
    };
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    Some((host, port))
}

/// Runs the subcommand: prints (or writes) the configuration.
pub fn run(args: &LbArgs) -> anyhow::Result<()> {
    let text = render(args);
    match &args.output {
        None => print!("{text}"),
        Some(path) => {
            std::fs::write(path, text)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

pub fn render(args: &LbArgs) -> String {
    match args.balancer {
        Balancer::Nginx => nginx(args),
        Balancer::Haproxy => haproxy(args),
        Balancer::Apache => apache(args),
    }
}

/// The flags that reproduce `args`, for the "generated by" line.
fn command_line(args: &LbArgs) -> String {
    let mut c = String::from("till lb-config ");
    c.push_str(match args.balancer {
        Balancer::Nginx => "nginx",
        Balancer::Haproxy => "haproxy",
        Balancer::Apache => "apache",
    });
    c.push_str(" --upstream");
    for u in &args.upstream {
        let _ = write!(c, " {u}");
    }
    if args.listen
        != (Listen {
            host: None,
            port: 80,
        })
    {
        let _ = write!(c, " --listen {}", args.listen.addr());
    }
    if let Some(d) = &args.static_dir {
        let _ = write!(c, " --static-dir {}", d.display());
    }
    if let Some(r) = &args.resolver {
        let _ = write!(c, " --resolver {r}");
    }
    if let Some(d) = &args.runtime_dir {
        let _ = write!(c, " --runtime-dir {}", d.display());
    }
    if args.max_body_bytes != 1_048_576 {
        let _ = write!(c, " --max-body-bytes {}", args.max_body_bytes);
    }
    if args.login_per_min != 30 {
        let _ = write!(c, " --login-per-min {}", args.login_per_min);
    }
    c
}

/// A path for a config file: bare when it is plainly safe, else double-quoted.
fn quoted_path(p: &std::path::Path) -> String {
    let s = p.display().to_string();
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+@%,".contains(&b))
    {
        s
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn join(dir: &std::path::Path, name: &str) -> String {
    quoted_path(&dir.join(name))
}

/// nginx size syntax: `1m`, `512k` or plain bytes.
fn nginx_size(bytes: u64) -> String {
    // Whole mebibytes / kibibytes: the low 20 / 10 bits are zero.
    if bytes > 0 && bytes.trailing_zeros() >= 20 {
        format!("{}m", bytes >> 20)
    } else if bytes > 0 && bytes.trailing_zeros() >= 10 {
        format!("{}k", bytes >> 10)
    } else {
        bytes.to_string()
    }
}

/// The JSON error body of Till's contract, for answers the balancer makes itself.
fn error_json(code: &str, message: &str, request_id: &str) -> String {
    format!(
        r#"{{"error":{{"code":"{code}","message":"{message}","details":{{}},"request_id":"{request_id}"}}}}"#
    )
}

const INTERNAL_NETS: &[&str] = &[
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1",
];

// ------------------------------------------------------------------------------------------ nginx

fn nginx(a: &LbArgs) -> String {
    let mut s = String::new();
    let out = &mut s;
    let line = |out: &mut String, text: &str| {
        out.push_str(text);
        out.push('\n');
    };
    let _ = writeln!(out, "# Till behind nginx. Generated by:");
    let _ = writeln!(out, "#   {}", command_line(a));
    line(out, "# Regenerate it rather than edit it (a unit test keeps the repository's copy equal to the output).");
    line(out, "#");
    line(out, "# - Instances: least-connections, with passive health checks (a server that fails max_fails times");
    line(
        out,
        "#   is skipped for fail_timeout); connections to them are kept alive.",
    );
    line(out, "# - Retries: a request whose connection fails is sent to the next instance. After an error, a");
    line(out, "#   timeout, a 502 or a 503 only idempotent requests are retried: nginx never re-sends a POST,");
    line(out, "#   LOCK or PATCH once it went out (no `non_idempotent` in proxy_next_upstream), so an order");
    line(out, "#   or a payment is never made twice by the balancer. Clients retry those with their Idempotency-Key.");
    line(out, "# - Draining: a stopping instance keeps answering for SHUTDOWN_DRAIN_MS, then closes its listener;");
    line(out, "#   nginx then gets `connection refused`, retries elsewhere and skips that server for fail_timeout.");
    line(out, "#   A rolling restart loses no request if it stops the next instance only once nginx sends to the");
    line(out, "#   restarted one again (at most fail_timeout after it is ready), never taking all out at once.");
    if a.resolver.is_some() {
        line(out, "# - `server NAME:PORT resolve` re-resolves NAME through `resolver` (valid=5s), so instances added or");
        line(out, "#   removed with `docker compose up --scale web=N` are followed without reloading nginx, and nginx");
        line(out, "#   starts even before any instance exists. This needs nginx >= 1.27.3 (open source) or NGINX Plus:");
        line(out, "#   docker-compose.yml pins nginx:1.28. (Older nginx resolves names once, at start; the other way");
        line(out, "#   there, `proxy_pass http://$var` with a resolver, loses keep-alive and the shared failure state.)");
    }
    line(out, "");
    line(out, "worker_processes auto;");
    match &a.runtime_dir {
        Some(d) => {
            let _ = writeln!(out, "pid {};", join(d, "nginx.pid"));
            let _ = writeln!(out, "error_log {} warn;", join(d, "error.log"));
        }
        None => line(out, "error_log stderr warn;"),
    }
    line(out, "");
    line(out, "events {");
    line(out, "    worker_connections 4096;");
    line(out, "}");
    line(out, "");
    line(out, "http {");
    line(out, "    # Self-contained MIME types (no include), so `nginx -t -c this-file` works from anywhere.");
    line(out, "    types {");
    for (mime, exts) in [
        ("text/html", "html htm"),
        ("text/css", "css"),
        ("text/plain", "txt"),
        ("application/javascript", "js mjs"),
        ("application/json", "json map"),
        ("application/manifest+json", "webmanifest"),
        ("image/svg+xml", "svg svgz"),
        ("image/png", "png"),
        ("image/jpeg", "jpg jpeg"),
        ("image/gif", "gif"),
        ("image/webp", "webp"),
        ("image/x-icon", "ico"),
        ("font/woff", "woff"),
        ("font/woff2", "woff2"),
    ] {
        let _ = writeln!(out, "        {mime:<26} {exts};");
    }
    line(out, "    }");
    line(out, "    default_type application/octet-stream;");
    line(out, "    charset utf-8;");
    line(
        out,
        "    charset_types text/css text/plain application/javascript;",
    );
    line(out, "    server_tokens off;");
    line(out, "    sendfile on;");
    line(out, "    tcp_nopush on;");
    line(out, "    keepalive_timeout 65s;");
    line(out, "    client_header_timeout 10s;");
    line(out, "    client_body_timeout 10s;");
    line(out, "    send_timeout 30s;");
    let _ = writeln!(
        out,
        "    client_max_body_size {};  # = MAX_BODY_BYTES ({} bytes)",
        nginx_size(a.max_body_bytes),
        a.max_body_bytes
    );
    line(out, "    client_body_buffer_size 128k;");
    line(out, "");
    if let Some(d) = &a.runtime_dir {
        for (directive, dir) in [
            ("client_body_temp_path", "client_body"),
            ("proxy_temp_path", "proxy"),
            ("fastcgi_temp_path", "fastcgi"),
            ("uwsgi_temp_path", "uwsgi"),
            ("scgi_temp_path", "scgi"),
        ] {
            let _ = writeln!(out, "    {directive} {};", join(d, &format!("{dir}_temp")));
        }
        line(out, "");
    }
    line(out, "    # The client's X-Request-Id is passed on when Till would accept it (1..64 visible characters;");
    line(out, "    # quote and backslash excluded so it can sit in a JSON body); otherwise nginx makes one.");
    line(out, "    map $http_x_request_id $till_request_id {");
    line(
        out,
        "        \"~^[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,64}$\" $http_x_request_id;",
    );
    line(out, "        default $request_id;");
    line(out, "    }");
    line(
        out,
        "    # Kept when a TLS terminator in front of nginx set it.",
    );
    line(
        out,
        "    map $http_x_forwarded_proto $till_forwarded_proto {",
    );
    line(out, "        default $http_x_forwarded_proto;");
    line(out, "        \"\" $scheme;");
    line(out, "    }");
    line(out, "    # WebSocket upgrade; an empty Connection for everything else keeps upstream connections alive.");
    line(out, "    map $http_upgrade $connection_upgrade {");
    line(out, "        default upgrade;");
    line(out, "        \"\" \"\";");
    line(out, "    }");
    line(out, "");
    line(out, "    log_format till escape=json '{\"time\":\"$time_iso8601\",\"remote_addr\":\"$remote_addr\",'");
    line(out, "        '\"request_id\":\"$till_request_id\",\"method\":\"$request_method\",\"uri\":\"$request_uri\",'");
    line(
        out,
        "        '\"status\":$status,\"bytes\":$body_bytes_sent,\"request_time\":$request_time,'",
    );
    line(
        out,
        "        '\"upstream\":\"$upstream_addr\",\"upstream_status\":\"$upstream_status\",'",
    );
    line(
        out,
        "        '\"upstream_time\":\"$upstream_response_time\"}';",
    );
    match &a.runtime_dir {
        Some(d) => {
            let _ = writeln!(out, "    access_log {} till;", join(d, "access.log"));
        }
        None => line(out, "    access_log /dev/stdout till;"),
    }
    line(out, "");
    line(out, "    gzip on;");
    line(out, "    gzip_vary on;");
    line(out, "    gzip_proxied any;");
    line(out, "    gzip_comp_level 5;");
    line(out, "    gzip_min_length 1024;");
    line(
        out,
        "    gzip_types text/css text/plain application/javascript application/json",
    );
    line(
        out,
        "               application/manifest+json image/svg+xml;",
    );
    line(out, "");
    line(
        out,
        "    # Password guessing is slowed here first; Till also limits per IP and per email.",
    );
    let _ = writeln!(
        out,
        "    limit_req_zone $binary_remote_addr zone=till_login:10m rate={}r/m;",
        a.login_per_min.max(1)
    );
    line(out, "    limit_req_status 429;");
    line(out, "    limit_req_log_level warn;");
    line(out, "");
    if let Some(r) = &a.resolver {
        let r = match r {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        let _ = writeln!(out, "    resolver {r} valid=5s ipv6=off;");
        line(out, "    resolver_timeout 2s;");
        line(out, "");
    }
    line(out, "    upstream till {");
    line(out, "        zone till_upstream 256k;");
    line(out, "        least_conn;");
    for u in &a.upstream {
        let resolve = if a.resolver.is_some() && !u.is_ip() {
            " resolve"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "        server {u} max_fails=2 fail_timeout=3s{resolve};"
        );
    }
    line(out, "        keepalive 64;");
    line(out, "        keepalive_requests 10000;");
    line(out, "        keepalive_timeout 60s;");
    line(out, "    }");
    line(out, "");
    line(out, "    server {");
    let _ = writeln!(out, "        listen {} default_server;", a.listen.addr());
    line(out, "        server_name _;");
    line(
        out,
        "        absolute_redirect off;  # `/till` → `/till/` stays right behind port mappings",
    );
    line(out, "");
    line(out, "        proxy_connect_timeout 2s;");
    line(out, "        proxy_send_timeout 30s;");
    line(out, "        proxy_read_timeout 35s;  # Till answers 503 itself after REQUEST_TIMEOUT_SECONDS (30)");
    line(
        out,
        "        proxy_next_upstream error timeout http_502 http_503;",
    );
    line(out, "        proxy_next_upstream_tries 3;");
    line(out, "        proxy_next_upstream_timeout 10s;");
    line(out, "");
    line(out, "        # Answers nginx makes itself, in Till's error shape (answers from Till pass untouched).");
    line(out, "        error_page 502 503 504 = @till_unavailable;");
    line(out, "        error_page 429 = @till_rate_limited;");
    line(out, "        error_page 413 = @till_too_large;");
    line(out, "");
    match &a.static_dir {
        Some(dir) => {
            line(
                out,
                "        # The static UI, straight from disk; anything not there goes to Till.",
            );
            line(
                out,
                "        # `/` falls back to Till when there is no index.html (a directory would answer 403).",
            );
            let _ = writeln!(out, "        root {};", quoted_path(dir));
            for (location, try_files) in [("= /", "/index.html @till"), ("/", "$uri $uri/ @till")] {
                let _ = writeln!(out, "        location {location} {{");
                line(out, "            index index.html;");
                let _ = writeln!(out, "            try_files {try_files};");
                line(
                    out,
                    "            add_header Cache-Control \"no-cache\" always;",
                );
                nginx_security_headers(out, "            ");
                line(out, "        }");
            }
            line(out, "");
            line(out, "        location @till {");
            nginx_proxy(out, false);
            line(out, "        }");
        }
        None => {
            line(out, "        location / {");
            nginx_proxy(out, false);
            line(out, "        }");
        }
    }
    line(out, "");
    line(out, "        location /api/ {");
    nginx_proxy(out, false);
    line(out, "        }");
    line(out, "");
    line(out, "        location = /api/v1/auth/login {");
    let burst = (a.login_per_min / 3).max(1);
    let _ = writeln!(
        out,
        "            limit_req zone=till_login burst={burst} nodelay;"
    );
    nginx_proxy(out, false);
    line(out, "        }");
    line(out, "");
    line(out, "        location = /api/v1/ws {");
    nginx_proxy(out, true);
    line(out, "            proxy_buffering off;");
    line(
        out,
        "            proxy_read_timeout 1h;  # Till pings every 30 s",
    );
    line(out, "            proxy_send_timeout 1h;");
    line(out, "        }");
    line(out, "");
    line(out, "        location /health {");
    nginx_proxy(out, false);
    line(out, "        }");
    line(out, "");
    line(
        out,
        "        # Prometheus text: only from internal networks.",
    );
    line(out, "        location = /metrics {");
    for net in INTERNAL_NETS {
        let _ = writeln!(out, "            allow {net};");
    }
    line(out, "            deny all;");
    nginx_proxy(out, false);
    line(out, "        }");
    line(out, "");
    for (name, status, code, message, retry) in [
        (
            "till_unavailable",
            503,
            "service_unavailable",
            "No application instance is available right now; try again shortly.",
            Some(5),
        ),
        (
            "till_rate_limited",
            429,
            "rate_limited",
            "Too many requests; try again later.",
            Some(60),
        ),
        (
            "till_too_large",
            413,
            "payload_too_large",
            "The request body is too large.",
            None,
        ),
    ] {
        let _ = writeln!(out, "        location @{name} {{");
        line(out, "            default_type application/json;");
        if let Some(secs) = retry {
            let _ = writeln!(out, "            add_header Retry-After {secs} always;");
        }
        line(
            out,
            "            add_header X-Request-Id $till_request_id always;",
        );
        let _ = writeln!(
            out,
            "            return {status} '{}';",
            error_json(code, message, "$till_request_id")
        );
        line(out, "        }");
    }
    line(out, "    }");
    line(out, "}");
    s
}

/// The proxy block of a location. Written out in full each time: one `proxy_set_header` in a
/// location drops every inherited one.
fn nginx_proxy(out: &mut String, websocket: bool) {
    let pad = "            ";
    let _ = writeln!(out, "{pad}proxy_pass http://till;");
    let _ = writeln!(out, "{pad}proxy_http_version 1.1;");
    let _ = writeln!(out, "{pad}proxy_set_header Host $host;");
    let _ = writeln!(
        out,
        "{pad}proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"
    );
    let _ = writeln!(
        out,
        "{pad}proxy_set_header X-Forwarded-Proto $till_forwarded_proto;"
    );
    let _ = writeln!(out, "{pad}proxy_set_header X-Forwarded-Host $host;");
    let _ = writeln!(out, "{pad}proxy_set_header X-Request-Id $till_request_id;");
    if websocket {
        let _ = writeln!(out, "{pad}proxy_set_header Upgrade $http_upgrade;");
        let _ = writeln!(out, "{pad}proxy_set_header Connection $connection_upgrade;");
    } else {
        let _ = writeln!(out, "{pad}proxy_set_header Connection \"\";");
    }
}

/// The headers Till puts on its own responses, for files nginx serves itself.
fn nginx_security_headers(out: &mut String, pad: &str) {
    let _ = writeln!(
        out,
        "{pad}add_header X-Content-Type-Options nosniff always;"
    );
    let _ = writeln!(out, "{pad}add_header X-Frame-Options DENY always;");
    let _ = writeln!(out, "{pad}add_header Referrer-Policy no-referrer always;");
    let _ = writeln!(
        out,
        "{pad}add_header Content-Security-Policy \"{CSP}\" always;"
    );
}

const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

// ---------------------------------------------------------------------------------------- HAProxy

fn haproxy(a: &LbArgs) -> String {
    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(o, "# Till behind HAProxy (2.2 or later). Generated by:");
    let _ = writeln!(o, "#   {}", command_line(a));
    let _ = writeln!(o, "#");
    let _ = writeln!(o, "# - Active health checks on /health/readiness: an instance leaves the pool as soon as it drains");
    let _ = writeln!(
        o,
        "#   (SIGTERM) or loses its database, and comes back when ready again."
    );
    let _ = writeln!(o, "# - Retries: a failed connection is retried on another instance for every request (redispatch);");
    let _ = writeln!(o, "#   errors after the request went out (empty response, timeout, 502/503) only for idempotent");
    let _ = writeln!(
        o,
        "#   methods: layer-7 retries are disabled for POST and PATCH."
    );
    let _ = writeln!(
        o,
        "# - The static UI is served by the instances (STATIC_DIR)."
    );
    let _ = writeln!(o);
    let _ = writeln!(o, "global");
    let _ = writeln!(o, "    log stdout format raw local0 info");
    let _ = writeln!(o, "    maxconn 20000");
    if let Some(d) = &a.runtime_dir {
        let _ = writeln!(o, "    pidfile {}", join(d, "haproxy.pid"));
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "defaults");
    let _ = writeln!(o, "    mode http");
    let _ = writeln!(o, "    log global");
    let _ = writeln!(o, "    option httplog");
    let _ = writeln!(o, "    option dontlognull");
    let _ = writeln!(o, "    option forwardfor");
    let _ = writeln!(o, "    option redispatch");
    let _ = writeln!(o, "    retries 3");
    let _ = writeln!(
        o,
        "    retry-on conn-failure empty-response response-timeout 502 503"
    );
    let _ = writeln!(o, "    timeout connect 2s");
    let _ = writeln!(o, "    timeout client 60s");
    let _ = writeln!(
        o,
        "    timeout server 35s  # Till answers 503 itself after REQUEST_TIMEOUT_SECONDS (30)"
    );
    let _ = writeln!(o, "    timeout http-request 10s");
    let _ = writeln!(o, "    timeout http-keep-alive 60s");
    let _ = writeln!(o, "    timeout queue 10s");
    let _ = writeln!(
        o,
        "    timeout tunnel 1h  # WebSockets; Till pings every 30 s"
    );
    let _ = writeln!(o, "    timeout client-fin 5s");
    let _ = writeln!(o);
    if let Some(r) = &a.resolver {
        let r = match r {
            IpAddr::V6(v6) => format!("[{v6}]"),
            IpAddr::V4(v4) => v4.to_string(),
        };
        let _ = writeln!(o, "resolvers till_dns");
        let _ = writeln!(o, "    nameserver dns1 {r}:53");
        let _ = writeln!(o, "    hold valid 5s");
        let _ = writeln!(o, "    accepted_payload_size 8192");
        let _ = writeln!(o);
    }
    let bind = match &a.listen.host {
        None => format!(":{}", a.listen.port),
        Some(_) => a.listen.addr(),
    };
    let _ = writeln!(o, "frontend till_http");
    let _ = writeln!(o, "    bind {bind}");
    let _ = writeln!(
        o,
        "    http-request set-header X-Forwarded-Proto http if !{{ req.hdr(x-forwarded-proto) -m found }}"
    );
    let _ = writeln!(
        o,
        "    http-request set-header X-Request-Id %[uuid] if !{{ req.hdr(x-request-id) -m found }}"
    );
    let _ = writeln!(
        o,
        "    http-request deny deny_status 413 if {{ req.hdr_val(content-length) gt {} }}",
        a.max_body_bytes
    );
    let _ = writeln!(o, "    # Prometheus text: only from internal networks.");
    let _ = writeln!(
        o,
        "    http-request deny deny_status 403 if {{ path /metrics }} !{{ src {} }}",
        INTERNAL_NETS.join(" ")
    );
    let _ = writeln!(o, "    # Login attempts per client IP per minute.");
    let _ = writeln!(
        o,
        "    stick-table type ip size 100k expire 60s store http_req_rate(60s)"
    );
    let _ = writeln!(o, "    acl till_login path /api/v1/auth/login");
    let _ = writeln!(o, "    http-request track-sc0 src if till_login");
    let body = error_json(
        "rate_limited",
        "Too many requests; try again later.",
        "%[req.hdr(x-request-id),json(utf8s)]",
    )
    .replace('"', "\\\"");
    let _ = writeln!(
        o,
        "    http-request return status 429 content-type application/json hdr Retry-After 60 lf-string \"{body}\" if till_login {{ sc_http_req_rate(0) gt {} }}",
        a.login_per_min.max(1)
    );
    let _ = writeln!(
        o,
        "    # Never repeat a request that may have had an effect."
    );
    let _ = writeln!(
        o,
        "    acl till_idempotent method GET HEAD OPTIONS PUT DELETE"
    );
    let _ = writeln!(o, "    http-request disable-l7-retry if !till_idempotent");
    let _ = writeln!(o, "    default_backend till_web");
    let _ = writeln!(o);
    let _ = writeln!(o, "backend till_web");
    let _ = writeln!(o, "    balance leastconn");
    let _ = writeln!(o, "    option httpchk GET /health/readiness");
    let _ = writeln!(o, "    http-check expect status 200");
    let _ = writeln!(o, "    default-server check inter 2s fall 2 rise 2");
    for (i, u) in a.upstream.iter().enumerate() {
        if a.resolver.is_some() && !u.is_ip() {
            // One slot per possible instance; empty slots stay in maintenance until DNS fills them.
            let _ = writeln!(
                o,
                "    server-template web{}_ 1-20 {u} resolvers till_dns init-addr none resolve-prefer ipv4",
                i + 1
            );
        } else {
            let _ = writeln!(o, "    server web{} {u}", i + 1);
        }
    }
    out
}

// ----------------------------------------------------------------------------------------- Apache

fn apache(a: &LbArgs) -> String {
    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(
        o,
        "# Till behind Apache httpd 2.4 (mod_proxy_balancer). Generated by:"
    );
    let _ = writeln!(o, "#   {}", command_line(a));
    let _ = writeln!(o, "#");
    let _ = writeln!(
        o,
        "# A site configuration: put it in conf.d/ or sites-enabled/. It needs these modules"
    );
    let _ = writeln!(o, "# (Debian: a2enmod proxy proxy_http proxy_wstunnel proxy_balancer lbmethod_bybusyness slotmem_shm headers):");
    let _ = writeln!(o, "#   mod_proxy mod_proxy_http mod_proxy_wstunnel mod_proxy_balancer mod_lbmethod_bybusyness");
    let _ = writeln!(o, "#   mod_slotmem_shm mod_headers");
    let _ = writeln!(o, "# - A member whose connection fails is put in error for `retry` seconds and the request goes to");
    let _ = writeln!(
        o,
        "#   another one; Apache does not re-send a request that already reached an instance."
    );
    let _ = writeln!(
        o,
        "# - Login attempts are limited by Till itself (RATE_LIMIT_LOGIN_PER_MIN); add mod_qos or"
    );
    let _ = writeln!(o, "#   mod_evasive for a limit at the balancer.");
    if a.resolver.is_some() {
        let _ = writeln!(o, "# - Apache resolves member names when it starts (and on graceful restart); --resolver has no");
        let _ = writeln!(
            o,
            "#   equivalent here: run `apachectl graceful` after scaling."
        );
    }
    let _ = writeln!(o);
    let vhost = match &a.listen.host {
        None => format!("*:{}", a.listen.port),
        Some(_) => a.listen.addr(),
    };
    if a.listen.port == 80 && a.listen.host.is_none() {
        let _ = writeln!(
            o,
            "# Listen 80 is usually declared already (ports.conf / httpd.conf)."
        );
    } else {
        let _ = writeln!(o, "Listen {}", a.listen.addr());
    }
    if let Some(d) = &a.runtime_dir {
        let _ = writeln!(o, "PidFile {}", join(d, "httpd.pid"));
        let _ = writeln!(o, "ErrorLog {}", join(d, "error.log"));
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "<Proxy \"balancer://till\">");
    for u in &a.upstream {
        let _ = writeln!(
            o,
            "    BalancerMember \"http://{u}\" connectiontimeout=2 timeout=35 retry=5 keepalive=On"
        );
    }
    let _ = writeln!(o, "    ProxySet lbmethod=bybusyness failonstatus=502");
    let _ = writeln!(o, "</Proxy>");
    let _ = writeln!(o, "<Proxy \"balancer://till-ws\">");
    for u in &a.upstream {
        let _ = writeln!(
            o,
            "    BalancerMember \"ws://{u}\" connectiontimeout=2 retry=5"
        );
    }
    let _ = writeln!(o, "    ProxySet lbmethod=bybusyness");
    let _ = writeln!(o, "</Proxy>");
    let _ = writeln!(o);
    let _ = writeln!(o, "<VirtualHost {vhost}>");
    let _ = writeln!(o, "    ServerName till");
    if let Some(d) = &a.runtime_dir {
        let _ = writeln!(o, "    CustomLog {} combined", join(d, "access.log"));
    }
    let _ = writeln!(o, "    ProxyRequests Off");
    let _ = writeln!(o, "    ProxyPreserveHost On");
    let _ = writeln!(o, "    ProxyTimeout 35");
    let _ = writeln!(o, "    LimitRequestBody {}", a.max_body_bytes);
    let _ = writeln!(
        o,
        "    # X-Forwarded-For is appended by mod_proxy_http; X-Request-Id passes through."
    );
    let _ = writeln!(
        o,
        "    RequestHeader set X-Forwarded-Proto \"http\" \"expr=-z %{{req:X-Forwarded-Proto}}\""
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "    # Most specific first: the WebSocket, then the API and health."
    );
    let _ = writeln!(
        o,
        "    ProxyPass \"/api/v1/ws\" \"balancer://till-ws/api/v1/ws\""
    );
    let _ = writeln!(o, "    <Location \"/metrics\">");
    let _ = writeln!(o, "        Require ip {}", INTERNAL_NETS.join(" "));
    let _ = writeln!(o, "    </Location>");
    match &a.static_dir {
        Some(dir) => {
            for p in ["/api/", "/health", "/metrics"] {
                let _ = writeln!(o, "    ProxyPass \"{p}\" \"balancer://till{p}\"");
                let _ = writeln!(o, "    ProxyPassReverse \"{p}\" \"balancer://till{p}\"");
            }
            let _ = writeln!(o);
            let _ = writeln!(o, "    # The static UI, straight from disk.");
            let _ = writeln!(o, "    DocumentRoot {}", quoted_path(dir));
            let _ = writeln!(o, "    <Directory {}>", quoted_path(dir));
            let _ = writeln!(o, "        Options -Indexes");
            let _ = writeln!(o, "        Require all granted");
            let _ = writeln!(
                o,
                "        Header always set X-Content-Type-Options nosniff"
            );
            let _ = writeln!(o, "        Header always set X-Frame-Options DENY");
            let _ = writeln!(
                o,
                "        Header always set Content-Security-Policy \"{CSP}\""
            );
            let _ = writeln!(o, "    </Directory>");
        }
        None => {
            let _ = writeln!(o, "    ProxyPass \"/\" \"balancer://till/\"");
            let _ = writeln!(o, "    ProxyPassReverse \"/\" \"balancer://till/\"");
        }
    }
    let _ = writeln!(o, "</VirtualHost>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The command line used to regenerate `nginx/nginx.conf`.
    const COMPOSE_NGINX_ARGS: &[&str] = &[
        "nginx",
        "--upstream",
        "web:8080",
        "--resolver",
        "127.0.0.11",
        "--static-dir",
        "/srv/till/web",
    ];

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: LbArgs,
    }

    fn args(argv: &[&str]) -> LbArgs {
        let mut full = vec!["lb-config"];
        full.extend_from_slice(argv);
        T::try_parse_from(full).unwrap().args
    }

    fn count(hay: &str, needle: &str) -> usize {
        hay.matches(needle).count()
    }

    fn balanced(text: &str) {
        let stripped: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(
            count(&stripped, "{"),
            count(&stripped, "}"),
            "unbalanced braces:\n{text}"
        );
    }

    #[test]
    fn upstreams_parse() {
        assert_eq!(
            Upstream::parse("127.0.0.1:8081").unwrap(),
            Upstream {
                host: "127.0.0.1".into(),
                port: 8081
            }
        );
        assert_eq!(Upstream::parse("web:8080").unwrap().to_string(), "web:8080");
        assert_eq!(
            Upstream::parse("[::1]:9000").unwrap().to_string(),
            "[::1]:9000"
        );
        for bad in [
            "web",
            "web:0",
            "web:70000",
            ":80",
            "a b:80",
            "web;x:80",
            "[zz]:1",
            "80",
        ] {
            assert!(Upstream::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(Listen::parse("80").unwrap().addr(), "80");
        assert_eq!(
            Listen::parse("127.0.0.1:18080").unwrap().addr(),
            "127.0.0.1:18080"
        );
        assert!(Listen::parse("0").is_err());
    }

    #[test]
    fn nginx_has_every_server_and_safe_retries() {
        let a = args(&[
            "nginx",
            "--upstream",
            "127.0.0.1:18081",
            "127.0.0.1:18082",
            "--upstream",
            "127.0.0.1:18083",
            "--listen",
            "127.0.0.1:18080",
        ]);
        let c = render(&a);
        balanced(&c);
        for port in 18081..=18083 {
            assert!(
                c.contains(&format!(
                    "server 127.0.0.1:{port} max_fails=2 fail_timeout=3s;"
                )),
                "{c}"
            );
        }
        assert!(c.contains("listen 127.0.0.1:18080 default_server;"));
        assert!(c.contains("proxy_next_upstream error timeout http_502 http_503;"));
        assert!(!c
            .lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains("non_idempotent")));
        assert!(c.contains("keepalive 64;"));
        assert!(c.contains("proxy_set_header Connection \"\";"));
        assert!(c.contains("map $http_upgrade $connection_upgrade"));
        assert!(c.contains("proxy_set_header Connection $connection_upgrade;"));
        assert!(c.contains("client_max_body_size 1m;"));
        assert!(c.contains("limit_req zone=till_login burst=10 nodelay;"));
        assert!(c.contains("rate=30r/m;"));
        assert!(c.contains("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"));
        assert!(c.contains("proxy_set_header X-Request-Id $till_request_id;"));
        assert!(c.contains("gzip on;"));
        // No resolver: nothing that needs nginx 1.27.3.
        assert!(!c.contains("resolve"));
        // Without a static dir everything goes to Till; logs go to the standard streams.
        assert!(!c.contains("root "));
        assert!(c.contains("access_log /dev/stdout till;"));
        // Every proxied location carries the full header set (no silent loss of inheritance).
        assert_eq!(
            count(&c, "proxy_pass http://till;"),
            count(&c, "proxy_set_header X-Request-Id")
        );
        assert_eq!(count(&c, "proxy_pass http://till;"), 6);
    }

    #[test]
    fn nginx_resolver_static_and_runtime_dir() {
        let a = args(&[
            "nginx",
            "--upstream",
            "web:8080",
            "10.0.0.5:8080",
            "--resolver",
            "127.0.0.11",
            "--static-dir",
            "/srv/till/web",
            "--runtime-dir",
            "/tmp/run dir",
            "--max-body-bytes",
            "2048",
            "--login-per-min",
            "6",
        ]);
        let c = render(&a);
        balanced(&c);
        assert!(c.contains("resolver 127.0.0.11 valid=5s ipv6=off;"));
        assert!(c.contains("server web:8080 max_fails=2 fail_timeout=3s resolve;"));
        assert!(c.contains("server 10.0.0.5:8080 max_fails=2 fail_timeout=3s;"));
        assert!(c.contains("        root /srv/till/web;"));
        assert!(c.contains("try_files /index.html @till;"));
        assert!(c.contains("try_files $uri $uri/ @till;"));
        assert!(c.contains("pid \"/tmp/run dir/nginx.pid\";"));
        assert!(c.contains("client_body_temp_path \"/tmp/run dir/client_body_temp\";"));
        assert!(c.contains("client_max_body_size 2k;"));
        assert!(c.contains("limit_req zone=till_login burst=2 nodelay;"));
        assert!(c.contains("--login-per-min 6"));
    }

    /// `nginx/nginx.conf` is generated; if this fails, regenerate it with
    /// `cargo run -q --bin till -- lb-config nginx --upstream web:8080 --resolver 127.0.0.11 --static-dir /srv/till/web -o nginx/nginx.conf`.
    #[test]
    fn repository_nginx_conf_is_the_generated_one() {
        let committed = include_str!("../../../nginx/nginx.conf");
        let a = args(COMPOSE_NGINX_ARGS);
        assert!(
            committed == render(&a),
            "nginx/nginx.conf differs from `till lb-config {}`; regenerate it (see this test's doc)",
            COMPOSE_NGINX_ARGS.join(" ")
        );
    }

    #[test]
    fn haproxy_checks_readiness_and_retries_idempotent_only() {
        let a = args(&[
            "haproxy",
            "--upstream",
            "127.0.0.1:18081",
            "127.0.0.1:18082",
            "--listen",
            "127.0.0.1:18090",
        ]);
        let c = render(&a);
        assert!(c.contains("bind 127.0.0.1:18090"));
        assert!(c.contains("server web1 127.0.0.1:18081"));
        assert!(c.contains("server web2 127.0.0.1:18082"));
        assert!(c.contains("option httpchk GET /health/readiness"));
        assert!(c.contains("http-request disable-l7-retry if !till_idempotent"));
        assert!(c.contains("option forwardfor"));
        assert!(c.contains("timeout tunnel 1h"));
        assert!(c.contains("gt 1048576"));
        assert!(!c.contains("resolvers"));
        let dns = render(&args(&[
            "haproxy",
            "--upstream",
            "web:8080",
            "--resolver",
            "127.0.0.11",
        ]));
        assert!(dns.contains("bind :80"));
        assert!(dns.contains("nameserver dns1 127.0.0.11:53"));
        assert!(dns.contains("server-template web1_ 1-20 web:8080 resolvers till_dns"));
    }

    #[test]
    fn apache_balances_http_and_websocket() {
        let a = args(&[
            "apache",
            "--upstream",
            "127.0.0.1:18081",
            "127.0.0.1:18082",
            "--listen",
            "18095",
        ]);
        let c = render(&a);
        assert!(c.contains("Listen 18095"));
        assert!(c.contains("<VirtualHost *:18095>"));
        assert!(c.contains("BalancerMember \"http://127.0.0.1:18081\""));
        assert!(c.contains("BalancerMember \"ws://127.0.0.1:18082\""));
        assert!(c.contains("ProxyPass \"/api/v1/ws\" \"balancer://till-ws/api/v1/ws\""));
        assert!(c.contains("LimitRequestBody 1048576"));
        assert_eq!(count(&c, "<Proxy "), count(&c, "</Proxy>"));
        assert_eq!(count(&c, "<VirtualHost "), count(&c, "</VirtualHost>"));
        let at80 = render(&args(&["apache", "--upstream", "web:8080"]));
        assert!(!at80.contains("\nListen "));
        assert!(at80.contains("ProxyPass \"/\" \"balancer://till/\""));
    }

    #[test]
    fn command_line_round_trips() {
        let a = args(&[
            "haproxy",
            "--upstream",
            "a:1",
            "b:2",
            "--listen",
            "127.0.0.1:9",
        ]);
        let line = command_line(&a);
        assert_eq!(
            line,
            "till lb-config haproxy --upstream a:1 b:2 --listen 127.0.0.1:9"
        );
        let argv: Vec<&str> = line.split(' ').skip(2).collect();
        assert_eq!(render(&args(&argv)), render(&a));
    }
}
